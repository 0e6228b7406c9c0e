"""Render the app icon (``resources/icons/app.svg``) into the files desktops and bundlers look for.

Writes, under ``packaging/icons/``:

- ``hicolor/<N>x<N>/apps/<APP_ID>.png`` for the freedesktop icon theme (16 … 512 px),
- ``hicolor/scalable/apps/<APP_ID>.svg`` (a copy of the SVG),
- ``fph-desktop.ico`` (Windows, 16 … 256 px) and ``fph-desktop.icns`` (macOS) for PyInstaller.

The generated files are committed; run this again only when ``app.svg`` changes:

    QT_QPA_PLATFORM=offscreen python packaging/render_icons.py
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
APP_ID = "io.github.fph_desktop.FphDesktop"
SOURCE = REPO / "resources" / "icons" / "app.svg"
OUT = REPO / "packaging" / "icons"
HICOLOR_SIZES = (16, 24, 32, 48, 64, 128, 256, 512)
ICO_SIZES = (16, 24, 32, 48, 64, 128, 256)


def render_png(svg: Path, side: int, target: Path) -> None:
    from PySide6.QtCore import Qt
    from PySide6.QtGui import QImage, QPainter
    from PySide6.QtSvg import QSvgRenderer

    renderer = QSvgRenderer(str(svg))
    if not renderer.isValid():
        raise SystemExit(f"{svg}: not a valid SVG")
    image = QImage(side, side, QImage.Format.Format_ARGB32)
    image.fill(Qt.GlobalColor.transparent)
    painter = QPainter(image)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
    renderer.render(painter)
    painter.end()
    target.parent.mkdir(parents=True, exist_ok=True)
    if not image.save(str(target), "PNG"):
        raise SystemExit(f"could not write {target}")


def main() -> int:
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PIL import Image
    from PySide6.QtGui import QGuiApplication

    app = QGuiApplication.instance() or QGuiApplication(sys.argv[:1])  # noqa: F841 (QPainter wants one)
    hicolor = OUT / "hicolor"
    for side in HICOLOR_SIZES:
        render_png(SOURCE, side, hicolor / f"{side}x{side}" / "apps" / f"{APP_ID}.png")
    scalable = hicolor / "scalable" / "apps" / f"{APP_ID}.svg"
    scalable.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(SOURCE, scalable)

    # Each ICO/ICNS size gets its own rendering of the SVG (sharper than Pillow scaling one down);
    # ICNS wants up to 1024 px (512 px @2x), which the hicolor set does not have.
    with tempfile.TemporaryDirectory() as tmp:
        icns_1024 = Path(tmp) / "1024.png"
        render_png(SOURCE, 1024, icns_1024)
        renderings = {side: hicolor / f"{side}x{side}" / "apps" / f"{APP_ID}.png" for side in HICOLOR_SIZES}
        renderings[1024] = icns_1024
        images = {side: Image.open(path).convert("RGBA") for side, path in renderings.items()}
        images[256].save(
            OUT / "fph-desktop.ico",
            format="ICO",
            sizes=[(s, s) for s in ICO_SIZES],
            append_images=[images[s] for s in ICO_SIZES if s != 256],
        )
        images[1024].save(
            OUT / "fph-desktop.icns",
            format="ICNS",
            append_images=[images[s] for s in (16, 32, 64, 128, 256, 512)],
        )
    for path in sorted(OUT.rglob("*")):
        if path.is_file():
            print(path.relative_to(REPO))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
