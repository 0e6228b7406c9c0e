"""Icons and stylesheet are found from the checkout, every icon the GUI names exists and renders,
and both themes fill every colour token of the stylesheet."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

pytest.importorskip("pytestqt")

from fph_desktop.gui import resources  # noqa: E402

GUI = Path(resources.__file__).parent


def test_every_icon_the_gui_names_exists_and_renders(qapp):
    names = set()
    for source in GUI.glob("*.py"):
        names |= set(re.findall(r'icon\("([a-z0-9-]+)"\)', source.read_text()))
        names |= set(re.findall(r'_action\([^)]*?"[^"]*", "([a-z0-9-]+)"', source.read_text()))
    assert {"folder-search", "image-open", "warning", "drop", "app"} <= names
    for name in names:
        assert (resources.resources_dir() / "icons" / f"{name}.svg").is_file(), name
        assert not resources.icon(name).pixmap(24, 24).toImage().isNull(), name


@pytest.mark.parametrize("dark", [False, True])
def test_both_themes_fill_every_stylesheet_token(qapp, dark):
    text = resources.stylesheet(dark)
    assert not re.search(r"@[a-z_]+", text.split("*/", 1)[1]), "a colour token was left unfilled"
    assert resources.theme(dark)["window"] in text


def test_qt_calls_keep_pythons_reference_to_none(qapp):
    """PySide6 6.12.0 dropped a reference to None on every void method call: on Python 3.11 the app
    aborted ("deallocating None") after a few thousand paint calls, e.g. mid-way through a training
    plot. pyproject.toml excludes that release; this catches any other that does the same."""
    import sys

    from PySide6.QtCore import QPointF
    from PySide6.QtGui import QImage, QPainter, QPainterPath

    image = QImage(16, 16, QImage.Format.Format_ARGB32)
    painter = QPainter(image)
    path = QPainterPath(QPointF(0, 0))
    before = sys.getrefcount(None)
    for _ in range(200):
        path.lineTo(1.0, 2.0)
        painter.drawLine(QPointF(0, 0), QPointF(1, 1))
    painter.end()
    assert sys.getrefcount(None) - before > -50  # other code may take or drop a few; 6.12.0 dropped 400


def _luminance(hex_colour: str) -> float:
    channels = [int(hex_colour[i : i + 2], 16) / 255 for i in (1, 3, 5)]
    linear = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def _contrast(a: str, b: str) -> float:
    high, low = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (high + 0.05) / (low + 0.05)


@pytest.mark.parametrize("dark", [False, True])
def test_the_progress_text_is_readable_on_the_fill_and_off_it(qapp, dark):
    """The percentage is drawn in the text colour across the whole bar: it must read on the fill
    (once dark text on the dark-teal accent) as well as on the empty part (WCAG AA, 4.5:1)."""
    colours = resources.theme(dark)
    sheet = resources.stylesheet(dark)
    assert f"QProgressBar::chunk {{ background: {colours['progress']};" in sheet
    assert _contrast(colours["text"], colours["progress"]) >= 4.5
    assert _contrast(colours["text"], colours["base"]) >= 4.5


@pytest.mark.parametrize("dark", [False, True])
def test_the_stylesheet_images_exist_in_the_theme_colour(qapp, dark):
    """Qt draws no spin-box or combo-box arrows once their frame is styled: the stylesheet names
    themed arrow images, which must exist and carry the theme's icon colour."""
    sheet = resources.stylesheet(dark)
    images = re.findall(r"url\(([^)]+)\)", sheet)
    assert len(images) >= 3 and not any(i.startswith("icon:") for i in images)
    for image in images:
        text = Path(image).read_text()
        assert resources.theme(dark)["icon"] in text and "#ICON" not in text, image
