"""Build the one-folder PyInstaller bundle (``dist/fph-desktop/``), check that it starts, and on Linux
optionally install it under a prefix with its menu entry and icons.

    python -m pip install ".[bundle]"                       # PyInstaller, in the environment with fph-desktop
    python packaging/build_bundle.py                        # -> dist/fph-desktop/fph-desktop (and fph)
    python packaging/build_bundle.py --prefix ~/.local      # ... then install it there (Linux)

``--prefix P`` copies the bundle to ``P/lib/fph-desktop/``, links ``P/bin/fph-desktop`` and ``P/bin/fph`` to
it and installs the .desktop file, metainfo and icons under ``P/share`` (install_desktop_files.py).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from pathlib import Path

PACKAGING = Path(__file__).resolve().parent
REPO = PACKAGING.parent
SPEC = PACKAGING / "fph-desktop.spec"
BUNDLE = REPO / "dist" / "fph-desktop"
PROGRAMS = ("fph-desktop", "fph")


def build() -> None:
    command = [
        sys.executable,
        "-m",
        "PyInstaller",
        "--noconfirm",
        "--clean",
        "--distpath",
        str(REPO / "dist"),
        "--workpath",
        str(REPO / "build" / "pyinstaller"),
        str(SPEC),
    ]
    print("+", " ".join(command), flush=True)
    subprocess.run(command, check=True, cwd=REPO)


def program_path(bundle: Path, name: str) -> Path:
    return bundle / (f"{name}.exe" if sys.platform == "win32" else name)


def smoke_test(bundle: Path) -> None:
    """The console program answers ``--version`` with the package's version, as the pip install does."""
    sys.path.insert(0, str(REPO))
    from fph_desktop import __version__

    done = subprocess.run(
        [str(program_path(bundle, "fph")), "--version"],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "QT_QPA_PLATFORM": os.environ.get("QT_QPA_PLATFORM", "offscreen")},
    )
    if done.returncode != 0 or done.stdout.strip() != f"fph-desktop {__version__}":
        raise SystemExit(f"the bundle does not start: {done.stdout}{done.stderr}")
    print(f"{program_path(bundle, 'fph')} --version: {done.stdout.strip()}")


def install(bundle: Path, prefix: Path) -> None:
    if not sys.platform.startswith("linux"):
        raise SystemExit("--prefix lays out a Linux tree (bin/, lib/, share/); on this system use the dist folder as it is")
    sys.path.insert(0, str(PACKAGING))
    import install_desktop_files

    target = prefix / "lib" / "fph-desktop"
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(bundle, target, symlinks=True)
    (prefix / "bin").mkdir(parents=True, exist_ok=True)
    for name in PROGRAMS:
        link = prefix / "bin" / name
        if link.is_symlink() or link.exists():
            link.unlink()
        link.symlink_to(target / name)
        print(f"linked {link} -> {target / name}")
    for path in install_desktop_files.install(prefix, str(prefix / "bin" / "fph-desktop")):
        print(f"installed {path}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prefix", type=Path, help="Linux: install the bundle, menu entry and icons under this prefix")
    parser.add_argument("--no-build", action="store_true", help="use the bundle already in dist/")
    args = parser.parse_args(argv)
    if not args.no_build:
        build()
    smoke_test(BUNDLE)
    if args.prefix:
        install(BUNDLE, args.prefix.expanduser().resolve())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
