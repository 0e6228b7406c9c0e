"""The install ships every subpackage and the GUI's resources."""
from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_every_subpackage_is_listed_for_the_wheel():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    found = {
        ".".join(p.parent.relative_to(ROOT).parts) for p in (ROOT / "fph_desktop").rglob("__init__.py")
    }
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
