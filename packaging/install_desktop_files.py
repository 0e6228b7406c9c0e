"""Put fph-desktop in the Linux application menu: install its .desktop file, AppStream metainfo and
icons under a prefix (default ``~/.local``, for the current user).

    python packaging/install_desktop_files.py [--prefix ~/.local] [--exec PATH] [--uninstall]

Writes ``PREFIX/share/applications/<APP_ID>.desktop``, ``PREFIX/share/metainfo/<APP_ID>.metainfo.xml`` and
``PREFIX/share/icons/hicolor/*/apps/<APP_ID>.{png,svg}``. The launcher's ``Exec`` becomes the absolute
path of the ``fph-desktop`` program (found on PATH, or ``--exec``), so the menu finds it even when it
lives in a virtual environment the desktop session does not have on its PATH.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from pathlib import Path

PACKAGING = Path(__file__).resolve().parent
APP_ID = "io.github.fph_desktop.FphDesktop"
DESKTOP_FILE = PACKAGING / "linux" / f"{APP_ID}.desktop"
METAINFO_FILE = PACKAGING / "linux" / f"{APP_ID}.metainfo.xml"
HICOLOR = PACKAGING / "icons" / "hicolor"


def desktop_exec_value(program: str) -> str:
    """``program`` as the Exec key's command: quoted where the desktop-entry spec asks, a literal ``%``
    doubled (it starts field codes), then escaped as a string value (a backslash is written twice over)."""
    if any(c in program for c in " \t\n\"'\\><~|&;$*?#()`"):
        program = '"' + "".join("\\" + c if c in '"`$\\' else c for c in program) + '"'
    return program.replace("%", "%%").replace("\\", "\\\\")


def desktop_entry(program: str) -> str:
    """The packaged .desktop file with Exec and TryExec pointing at ``program``."""
    lines = []
    for line in DESKTOP_FILE.read_text(encoding="utf-8").splitlines():
        if line.startswith("Exec="):
            field_codes = line[len("Exec=") :].split()[1:]  # e.g. %F: the files an "Open with" hands over
            line = "Exec=" + " ".join([desktop_exec_value(program), *field_codes])
        elif line.startswith("TryExec="):
            line = "TryExec=" + program.replace("\\", "\\\\")
        lines.append(line)
    return "\n".join(lines) + "\n"


def targets(prefix: Path) -> dict[Path, Path | None]:
    """Where each file goes under ``prefix`` (the .desktop file is written, hence no source)."""
    share = prefix / "share"
    placed: dict[Path, Path | None] = {
        share / "applications" / DESKTOP_FILE.name: None,
        share / "metainfo" / METAINFO_FILE.name: METAINFO_FILE,
    }
    for icon in sorted(HICOLOR.glob(f"*/apps/{APP_ID}.*")):
        placed[share / "icons" / "hicolor" / icon.relative_to(HICOLOR)] = icon
    return placed


def refresh_caches(prefix: Path) -> None:
    """The menu and icon caches, where those tools are installed (desktops also notice on their own)."""
    share = prefix / "share"
    for command in (
        ["update-desktop-database", "-q", str(share / "applications")],
        ["gtk-update-icon-cache", "-q", "-f", "-t", str(share / "icons" / "hicolor")],
    ):
        if shutil.which(command[0]):
            subprocess.run(command, check=False)


def install(prefix: Path, program: str) -> list[Path]:
    written = []
    for target, source in targets(prefix).items():
        target.parent.mkdir(parents=True, exist_ok=True)
        if source is None:
            target.write_text(desktop_entry(program), encoding="utf-8")
        else:
            shutil.copyfile(source, target)
        written.append(target)
    refresh_caches(prefix)
    return written


def uninstall(prefix: Path) -> list[Path]:
    removed = [target for target in targets(prefix) if target.exists()]
    for target in removed:
        target.unlink()
    refresh_caches(prefix)
    return removed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prefix", type=Path, default=Path.home() / ".local", help="default: ~/.local")
    parser.add_argument("--exec", dest="program", help="the fph-desktop program (default: the one on PATH)")
    parser.add_argument("--uninstall", action="store_true", help="remove the files an install wrote")
    args = parser.parse_args(argv)
    prefix = args.prefix.expanduser().resolve()
    if args.uninstall:
        for path in uninstall(prefix):
            print(f"removed {path}")
        return 0
    program = args.program or shutil.which("fph-desktop")
    if not program:
        print("fph-desktop is not on PATH: pip install it first, or name the program with --exec PATH", file=sys.stderr)
        return 1
    program = str(Path(program).expanduser().resolve())
    for path in install(prefix, program):
        print(f"installed {path}")
    print(f"the launcher runs {program}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
