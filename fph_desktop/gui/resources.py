"""Finds the app's icons and stylesheet, from a source checkout or an installed wheel.

In a checkout they live in ``resources/`` at the repository top; a wheel ships the same files as the
package ``fph_desktop.gui.resources_data`` (mapped onto that folder in ``pyproject.toml``). Icons are
SVGs drawn in one colour (``#ICON``) that is replaced by the theme's icon colour when loaded.
"""

from __future__ import annotations

import json
import os
import re
from functools import cache
from pathlib import Path

from PySide6.QtCore import QByteArray, QSize, Qt
from PySide6.QtGui import QGuiApplication, QIcon, QPainter, QPalette, QPixmap
from PySide6.QtSvg import QSvgRenderer

_HERE = Path(__file__).resolve().parent


def resources_dir() -> Path:
    """The folder holding ``style.qss``, ``themes.json`` and ``icons/``; raises if none is found."""
    candidates = [_HERE / "resources_data", _HERE.parents[1] / "resources"]
    for candidate in candidates:
        if (candidate / "style.qss").is_file():
            return candidate
    raise FileNotFoundError(
        "fph-desktop's resources (style.qss, icons) were not found in "
        + " or ".join(str(c) for c in candidates)
        + "; reinstall fph-desktop"
    )


_override: str | None = None


def set_theme(name: str | None) -> None:
    """Force "light" or "dark" (``None`` or "system": follow the system). ``FPH_DESKTOP_THEME`` sets it too."""
    global _override
    _override = name if name in ("light", "dark") else None


def system_is_dark() -> bool:
    """Follow the system: Qt's colour-scheme hint where the platform gives one, else the palette."""
    forced = _override or os.environ.get("FPH_DESKTOP_THEME")
    if forced in ("light", "dark"):
        return forced == "dark"
    app = QGuiApplication.instance()
    if app is None:
        return False
    scheme = app.styleHints().colorScheme()
    if scheme == Qt.ColorScheme.Dark:
        return True
    if scheme == Qt.ColorScheme.Light:
        return False
    return app.palette().color(QPalette.ColorRole.Window).lightness() < 128


@cache
def _themes() -> dict[str, dict[str, str]]:
    return json.loads((resources_dir() / "themes.json").read_text(encoding="utf-8"))


def theme(dark: bool | None = None) -> dict[str, str]:
    """The colour tokens of the light or dark theme (``None``: the system's)."""
    return _themes()["dark" if (system_is_dark() if dark is None else dark) else "light"]


def stylesheet(dark: bool | None = None) -> str:
    """style.qss with the theme's colours filled in (``@accent``) and ``url(icon:NAME)`` pointing at
    the icon NAME drawn in the theme's icon colour (Qt style sheets take image files only)."""
    colours = theme(dark)
    text = (resources_dir() / "style.qss").read_text(encoding="utf-8")
    # Longest names first, so "@warning_bg" is not read as "@warning" + "_bg".
    names = sorted(colours, key=len, reverse=True)
    text = re.sub("@(" + "|".join(names) + r")\b", lambda m: colours[m.group(1)], text)
    return re.sub(r"url\(icon:([a-z0-9-]+)\)", lambda m: f"url({themed_icon_file(m.group(1), colours['icon'])})", text)


def themed_icon_file(name: str, colour: str) -> str:
    """The path of ``icons/<name>.svg`` drawn in ``colour``, written once into the cache (for style
    sheets, which cannot recolour an image). Where the cache cannot be written, the uncoloured
    icon's own path: still drawn, in the icon's fallback black."""
    source = resources_dir() / "icons" / f"{name}.svg"
    try:
        from .. import paths

        target = paths.cache_dir() / "themed-icons" / colour.lstrip("#").lower() / f"{name}.svg"
        svg = source.read_text(encoding="utf-8").replace("#ICON", colour)
        if not target.is_file() or target.read_text(encoding="utf-8") != svg:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(svg, encoding="utf-8")
        return target.as_posix()
    except OSError:
        return source.as_posix()


_icon_cache: dict[tuple[str, str], QIcon] = {}


def icon(name: str, dark: bool | None = None) -> QIcon:
    """The SVG icon ``icons/<name>.svg`` in the theme's icon colour (rendered sharp at any size)."""
    colour = theme(dark)["icon"]
    key = (name, colour)
    if key not in _icon_cache:
        svg = (resources_dir() / "icons" / f"{name}.svg").read_text(encoding="utf-8").replace("#ICON", colour)
        renderer = QSvgRenderer(QByteArray(svg.encode("utf-8")))
        result = QIcon()
        for side in (16, 20, 24, 32, 48, 64):
            pixmap = QPixmap(QSize(side, side))
            pixmap.fill(Qt.GlobalColor.transparent)
            painter = QPainter(pixmap)
            renderer.render(painter)
            painter.end()
            result.addPixmap(pixmap)
        _icon_cache[key] = result
    return _icon_cache[key]


def clear_icon_cache() -> None:
    """After a theme switch, so icons are re-rendered in the new colour."""
    _icon_cache.clear()


def faded_pixmap(name: str, side: int, mark: int) -> QPixmap:
    """The icon ``name`` drawn ``mark`` pixels wide, faded, centred in a transparent ``side`` square:
    what a thumbnail shows while it loads (or when it cannot be made)."""
    pixmap = QPixmap(side, side)
    pixmap.fill(Qt.GlobalColor.transparent)
    painter = QPainter(pixmap)
    painter.setOpacity(0.35)
    icon(name).paint(painter, (side - mark) // 2, (side - mark) // 2, mark, mark)
    painter.end()
    return pixmap
