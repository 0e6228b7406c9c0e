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
