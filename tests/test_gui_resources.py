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
