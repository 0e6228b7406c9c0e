"""Build the one-folder PyInstaller bundle (``dist/fph-desktop/``), check that it starts, and on Linux
optionally install it under a prefix with its menu entry and icons.

    python -m pip install ".[bundle]"                       # PyInstaller, in the environment with fph-desktop
    python packaging/build_bundle.py                        # -> dist/fph-desktop/fph-desktop (and fph)
    python packaging/build_bundle.py --prefix ~/.local      # ... then install it there (Linux)
    python packaging/build_bundle.py --search-only          # -> dist/fph-desktop-search/: no PyTorch (about 0.4 GB)

``--search-only`` exports the default backbone's descriptor graph first (with the PyTorch of the build
environment), builds the edition without PyTorch around it, and checks that the result fits the
default codes on a folder of generated photos, indexes it and searches it.

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


def export_graphs() -> None:
    """What the search-only edition fits its default model over, exported here where PyTorch is."""
    sys.path.insert(0, str(REPO))
    from fph_desktop.index.default_model import DEFAULT_BACKBONE
    from fph_desktop.model.itq_graph import descriptor_graph_name
    from fph_desktop.model.onnx_engine import export_descriptor_graph

    target = REPO / "build" / "graphs" / descriptor_graph_name(DEFAULT_BACKBONE)
    export_descriptor_graph(DEFAULT_BACKBONE, target)
    print(f"exported {target} ({target.stat().st_size / 1e6:.1f} MB)", flush=True)


def build(search_only: bool = False) -> None:
    if search_only:
        export_graphs()
    os.environ["FPH_BUNDLE_VARIANT"] = "search" if search_only else "full"
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


def folder_size(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file() and not p.is_symlink())


def search_only_test(bundle: Path) -> None:
    """The edition without PyTorch does its whole job: fit the default codes on a folder, index it,
    search it, group it; and says in one line that training needs PyTorch."""
    import tempfile

    import numpy as np
    from PIL import Image

    program = str(program_path(bundle, "fph"))
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        env = {**os.environ, "FPH_DESKTOP_DATA_DIR": str(work / "data"), "FPH_DESKTOP_CACHE_DIR": str(work / "cache")}
        rng = np.random.default_rng(0)
        folder = work / "photos"
        folder.mkdir()
        for i in range(60):
            base = rng.uniform(0, 255, 3)
            y, x = np.mgrid[0:240, 0:320]
            pixels = np.stack(
                [base[c] + 60 * np.sin(0.03 * (c + 1) * x + i) + 40 * np.cos(0.05 * y + c * i) for c in range(3)], -1
            )
            Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).save(folder / f"photo_{i:02d}.jpg")

        def run(*args: str) -> subprocess.CompletedProcess:
            done = subprocess.run([program, *args], capture_output=True, text=True, timeout=600, env=env)
            print(f"$ fph {' '.join(args)}\n{done.stdout}{done.stderr}".rstrip(), flush=True)
            return done

        for args in (("index", str(folder)), ("search", str(folder / "photo_07.jpg"), "--index", str(folder), "-k", "3")):
            if run(*args).returncode != 0:
                raise SystemExit("the search-only bundle failed")
        done = run("train", "--data", str(folder), "--out", str(work / "m.fph"))
        if done.returncode != 2 or "needs PyTorch" not in done.stderr:
            raise SystemExit("the search-only bundle does not say that training needs PyTorch")


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
    parser.add_argument("--search-only", action="store_true", help="the edition without PyTorch (index and search)")
    args = parser.parse_args(argv)
    bundle = BUNDLE.with_name("fph-desktop-search") if args.search_only else BUNDLE
    if not args.no_build:
        build(args.search_only)
    smoke_test(bundle)
    if args.search_only:
        search_only_test(bundle)
    print(f"{bundle}: {folder_size(bundle) / 1e6:.0f} MB", flush=True)
    if args.prefix:
        install(bundle, args.prefix.expanduser().resolve())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
