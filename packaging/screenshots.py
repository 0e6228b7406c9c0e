"""Render the app with real results from birds-dev into PNGs for the README (docs/screenshots/).

Runs the real window offscreen (or under Xvfb) and drives it the way a person would: choose the
pretrained backbone, index birds-dev's train photos (the unsupervised codes are fitted on them
first, as in the app), drop a test photo of a species, select a result of the same species, and
grab the window. The model and index are kept in ``--work`` so a second run takes seconds.

The training wizard is shot on a real run over birds-dev (EfficientNet-Lite0, fast CPU mode, the
wizard's defaults): each page, the plot mid-run, and the finished run with its test mAP.

The look-alike groups window is shot on a copy of the train photos with one byte-identical copy of a
photo of the largest group (the exact-copy badge), indexed with the codes fitted on the train photos.

    QT_QPA_PLATFORM=offscreen python packaging/screenshots.py [--data DIR] [--out docs/screenshots] [--only main|groups|wizard]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def wait_for(app, condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {what}")
        app.processEvents()
        time.sleep(0.02)


def save(widget, path: Path, max_colors: int | None = None) -> None:
    """Grab ``widget`` into a PNG; photos make big PNGs, so the palette is reduced when asked."""
    from PIL import Image

    image = widget.grab().toImage()
    tmp = path.with_suffix(".raw.png")
    image.save(str(tmp), "PNG")
    with Image.open(tmp) as png:
        png = png.convert("RGB")
        if max_colors:
            png = png.quantize(colors=max_colors, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.FLOYDSTEINBERG)
        png.save(path, optimize=True)
    tmp.unlink()
    print(f"wrote {path} ({path.stat().st_size // 1024} KB, {image.width()}x{image.height()})")


def run_query(app, args, width: int, height: int, query: Path):
    """A window with the pretrained choice, the index of ``--data``/train, the results of ``query``,
    and the comparison with the best result of the query's own species."""
    from fph_desktop.gui.main_window import MainWindow
    from fph_desktop.gui.settings import CHOICE_PRETRAINED, AppSettings

    settings = AppSettings()
    settings.model_choice = CHOICE_PRETRAINED
    settings.top_k = 18
    settings.hide_duplicates = True
    settings.overlay_opacity = 50
    window = MainWindow(settings, start_background=False)
    window.resize(width, height)
    window.show()
    states, failures, outcomes, shown = [], [], [], []
    window.indexReady.connect(states.append)
    window.jobFailed.connect(lambda kind, message: failures.append(f"{kind}: {message}"))
    window.searchFinished.connect(outcomes.append)
    window.comparisonShown.connect(shown.append)
    started = time.monotonic()
    window.index_folder(str(args.data / "train"))
    wait_for(app, lambda: (states and states[-1].complete) or failures, 3600, "the index")
    if failures:
        raise SystemExit("; ".join(failures))
    print(f"indexed: {states[-1].summary} ({time.monotonic() - started:.0f} s)")
    window.set_queries([str(query)])
    wait_for(app, lambda: outcomes or failures, 600, "the search")
    grid = window.results
    grid.view.grab()  # the view asks for thumbnails as it paints (lazy: only the visible ones)

    def visible_thumbnails_loaded() -> bool:
        rows = [
            r
            for r in range(grid.model.rowCount())
            if grid.view.visualRect(grid.model.index(r)).intersects(grid.view.viewport().rect())
        ]
        return bool(rows) and all(grid.loader.cached(grid.model.items[r].path) is not None for r in rows)

    wait_for(app, visible_thumbnails_loaded, 120, "thumbnails")
    species = query.parent.name
    same = [i for i, item in enumerate(grid.model.items) if f"/{species}/" in item.path.replace(os.sep, "/")]
    grid.select_row(same[0] if same else 0)
    wait_for(app, lambda: shown or failures, 600, "the comparison")
    wait_for(app, lambda: window.drop_area.query_thumb.isVisible(), 60, "the query thumbnail")
    app.processEvents()
    return window, outcomes, shown


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data" / "birds-dev")
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "screenshots")
    parser.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "fph-desktop-screenshots")
    parser.add_argument("--query", default="test/017.Cardinal", help="class folder of the query photo, relative to --data")
    parser.add_argument("--size", default="1360x860")
    parser.add_argument(
        "--only",
        choices=["main", "groups", "library", "wizard"],
        help="only the main window's shots, the groups window's, the library's, or the wizard's",
    )
    parser.add_argument("--epochs", type=int, default=0, help="wizard run length (0: the wizard's default)")
    args = parser.parse_args()
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    os.environ["FPH_DESKTOP_DATA_DIR"] = str(args.work / "data")
    os.environ["FPH_DESKTOP_CACHE_DIR"] = str(args.work / "cache")
    args.out.mkdir(parents=True, exist_ok=True)
    width, height = (int(v) for v in args.size.split("x"))

    from fph_desktop.gui.app import apply_theme, create_app
    from fph_desktop.gui.main_window import MainWindow
    from fph_desktop.gui.settings import AppSettings

    app = create_app()
    fresh = Path(os.environ["FPH_DESKTOP_DATA_DIR"]) / "settings.ini"
    fresh.unlink(missing_ok=True)
    if args.only == "wizard":
        return wizard_shots(app, args)
    if args.only == "groups":
        return groups_shot(app, args, width, height)
    if args.only == "library":
        return library_shot(app, args, width, height)

    # 1. First run: the three ways forward.
    window = MainWindow(AppSettings(), start_background=False)
    window.resize(width, height)
    window.show()
    app.processEvents()
    save(window, args.out / "first-run.png", 256)
    window.shutdown()
    window.deleteLater()

    # 2. Pretrained backbone, index the train photos (fitting the codes first), query with a test photo.
    query = sorted((args.data / args.query).glob("*.jpg"))[0]
    window, outcomes, shown = run_query(app, args, width, height, query)
    grid = window.results
    species = args.query.split("/")[-1]
    same = [item for item in grid.model.items if f"/{species}/" in item.path.replace(os.sep, "/")]
    print(f"query {query.name}: {len(same)} of the top {len(grid.model.items)} are {species}")
    save(window, args.out / "main-window.png")
    save_comparison(window.comparison, args.out / "comparison.png")

    # 3. One low layer's own map.
    window.comparison.layer.setCurrentIndex(window.comparison.layer.findData("C3"))
    app.processEvents()
    save_comparison(window.comparison, args.out / "comparison-c3.png")
    window.shutdown()
    window.deleteLater()

    # 4. The dark theme (offscreen has no system scheme to follow, so it is forced), same search.
    from fph_desktop.gui import resources

    resources.set_theme("dark")
    apply_theme(app)
    window, outcomes, shown = run_query(app, args, width, height, query)
    save(window, args.out / "main-window-dark.png")
    window.shutdown()
    resources.set_theme(None)
    apply_theme(app)
    if args.only == "main":
        return 0
    groups_shot(app, args, width, height)
    library_shot(app, args, width, height)
    return wizard_shots(app, args)


def index_with_window(app, settings, folder: Path, width: int, height: int):
    """A main window with ``settings`` that has indexed ``folder`` (up to date in seconds when it was before)."""
    from fph_desktop.gui.main_window import MainWindow

    window = MainWindow(settings, start_background=False)
    window.resize(width, height)
    window.show()
    states, failures = [], []
    window.indexReady.connect(states.append)
    window.jobFailed.connect(lambda kind, message: failures.append(f"{kind}: {message}"))
    started = time.monotonic()
    window.index_folder(str(folder))
    wait_for(app, lambda: (states and states[-1].complete) or failures, 3600, f"the index of {folder}")
    if failures:
        raise SystemExit("; ".join(failures))
    print(f"indexed: {states[-1].summary} ({time.monotonic() - started:.0f} s)")
    return window


def library_shot(app, args, width: int, height: int) -> int:
    """Two folders searched together: the train photos and the test photos copied into a folder of
    their own ("Spring trip"), the library panel open, a query's results from both."""
    import shutil

    from fph_desktop.gui.settings import CHOICE_PRETRAINED, AppSettings

    trip = args.work / "library" / "Spring trip"
    if not trip.is_dir():
        shutil.copytree(args.data / "test", trip)
    settings = AppSettings()
    settings.model_choice = CHOICE_PRETRAINED
    settings.top_k = 18
    window = index_with_window(app, settings, args.data / "train", width, height)
    states, outcomes = [], []
    window.indexReady.connect(states.append)
    window.searchFinished.connect(outcomes.append)
    window.index_folder(str(trip))
    wait_for(app, lambda: states and states[-1].folder == str(trip) and states[-1].complete, 3600, "the second folder")
    window.library_dock.show()
    query = sorted((args.data / "test" / "014.Indigo_Bunting").glob("*.jpg"))[1]
    viewers = []
    window.photoViewerOpened.connect(viewers.append)
    window.set_queries([str(query)])
    wait_for(app, lambda: outcomes, 600, "the search")
    grid = window.results
    grid.view.grab()
    wait_for(app, lambda: all(grid.loader.cached(item.path) is not None for item in grid.model.items[:9]), 120, "thumbnails")
    app.processEvents()
    save(window, args.out / "library.png")

    # The viewer, on the first result: a copy of it with the EXIF a camera writes (CUB's photos have none).
    from PIL import Image

    shown = args.work / "viewer" / Path(grid.model.items[0].path).name
    shown.parent.mkdir(parents=True, exist_ok=True)
    exif = Image.Exif()
    exif[0x010F], exif[0x0110] = "Canon", "Canon EOS 7D"
    sub = exif.get_ifd(0x8769)
    sub[0x9003], sub[0x829A], sub[0x829D], sub[0x8827], sub[0x920A] = "2019:05:04 07:31:22", 0.004, 5.6, 400, 300.0
    sub[0xA434] = "EF100-400mm f/4.5-5.6L IS II USM"
    Image.open(grid.model.items[0].path).save(shown, exif=exif, quality=95)
    window.view_photo(str(shown))
    viewer = viewers[-1]
    viewer.resize(1000, 620)
    wait_for(app, viewer.is_loaded, 60, "the viewer's photo")
    app.processEvents()
    save(viewer, args.out / "viewer.png")
    viewer.close()
    window.shutdown()
    window.deleteLater()
    return 0


def groups_shot(app, args, width: int, height: int) -> int:
    """The look-alike groups window at its default radius, on the train photos plus one exact copy."""
    import shutil

    from PySide6.QtWidgets import QAbstractItemView

    from fph_desktop.gui import tasks
    from fph_desktop.gui.groups_view import GroupsWindow, PathRole
    from fph_desktop.gui.settings import CHOICE_FILE, CHOICE_PRETRAINED, AppSettings
    from fph_desktop.index.groups import groups_in_index

    # 1. The codes fitted on the train photos (as the main shots make them), and a small group to copy a
    # photo of: the shot shows that group whole, and the next one.
    settings = AppSettings()
    settings.model_choice = CHOICE_PRETRAINED
    window = index_with_window(app, settings, args.data / "train", width, height)
    model = tasks.existing_unsupervised_model(str(args.data / "train"), settings.unsupervised_bits)
    found = groups_in_index(window.index_state.library.db_path, 4).groups
    chosen = next((g for g in found if len(g) == 4), found[0]).representative.relpath
    window.shutdown()
    window.deleteLater()

    # 2. The same photos and a byte copy of that group's first photo, as a camera import leaves one.
    folder = args.work / "groups" / "birds"
    if not folder.is_dir():
        shutil.copytree(args.data / "train", folder)
    original = folder / chosen
    copy = original.with_name(f"{original.stem}_copy{original.suffix}")
    for stale in folder.rglob("*_copy.*"):  # the copy of an earlier run's choice
        if stale != copy:
            stale.unlink()
    if not copy.is_file():
        shutil.copyfile(original, copy)
    settings = AppSettings()
    settings.model_choice, settings.model_path = CHOICE_FILE, str(model)
    window = index_with_window(app, settings, folder, width, height)

    # 3. The groups window, opened by its action, with the copy selected and its thumbnails drawn.
    window.groups_action.trigger()
    groups = window.findChild(GroupsWindow)
    groups.resize(1080, 720)
    wait_for(app, lambda: groups.result is not None, 600, "the groups")
    row = next(item for item in groups.photo_items() if item.data(0, PathRole) == str(copy))
    groups.tree.setCurrentItem(row)
    groups.tree.scrollToItem(row.parent(), QAbstractItemView.ScrollHint.PositionAtTop)  # its group, then the next
    app.processEvents()
    groups.tree.viewport().grab()  # the view asks for thumbnails as it paints its rows

    def visible_thumbnails_loaded() -> bool:
        viewport = groups.tree.viewport().rect()
        paths = [item.data(0, PathRole) for item in groups.photo_items() if groups.tree.visualItemRect(item).intersects(viewport)]
        return bool(paths) and all(groups.loader.cached(p) is not None for p in paths)

    wait_for(app, visible_thumbnails_loaded, 120, "the thumbnails")
    app.processEvents()
    print(f"groups: {groups.summary.text()}")
    save(groups, args.out / "groups.png")
    window.shutdown()
    groups.deleteLater()
    window.deleteLater()
    return 0


def wizard_shots(app, args) -> int:
    """Each wizard page on a real training run over ``--data``, as a user would click through it."""
    from PySide6.QtWidgets import QWizard

    from fph_desktop.gui.training_wizard import TrainingWizard
    from fph_desktop.train.runs import discard_run, interrupted_runs

    for record in interrupted_runs():
        discard_run(record.run_dir)  # a fresh run every time, so the plot shows all of it
    wizard = TrainingWizard()
    wizard.resize(900, 700)
    wizard.show()
    failures = []
    wizard.runner.submitted.connect(
        lambda job: job.failed.connect(lambda message, kind=job.kind: failures.append(f"{kind}: {message}"))
    )
    page = wizard.data_page
    page.folder_edit.setText(str(args.data))
    page.inspect(str(args.data))
    wait_for(app, lambda: page.summary is not None or failures, 600, "the data check")
    if failures or not page.summary.trainable:
        raise SystemExit(f"cannot train on {args.data}: {failures or page.summary.error}")
    save(wizard, args.out / "wizard-1-data.png", 256)

    wizard.next()
    model = wizard.model_page
    model.backbone.setCurrentIndex(model.backbone.findData("efficientnet_lite0"))  # offline ImageNet weights
    wait_for(app, lambda: model.devices, 120, "the device list")
    if args.epochs:
        model.epochs.setValue(args.epochs)
    wait_for(
        app, lambda: model.last_estimate is not None and model.estimate_label.text().startswith("About"), 300, "the estimate"
    )
    save(wizard, args.out / "wizard-2-model.png", 256)
    print(f"estimate: {model.estimate_label.text()}")

    epochs = []
    wizard.runner.submitted.connect(
        lambda job: job.partial.connect(
            lambda record: epochs.append(record) if isinstance(record, dict) and record.get("kind") == "epoch" else None
        )
    )
    started = time.monotonic()
    wizard.next()
    total = model.epochs.value()
    wait_for(app, lambda: len(epochs) >= max(1, total // 3) or failures, 7200, "a third of the epochs")
    wizard.train_page._tick()
    save(wizard, args.out / "wizard-3-training.png", 256)
    train = wizard.train_page
    wait_for(app, lambda: train.result is not None or failures, 7200, "the end of training")
    if failures:
        raise SystemExit("; ".join(failures))
    print(f"trained in {time.monotonic() - started:.0f} s; test metrics {train.result.test_metrics.get('map_all')}")
    save(wizard, args.out / "wizard-4-finished-run.png", 256)
    wizard.next()
    assert wizard.currentId() == 3 and wizard.button(QWizard.WizardButton.FinishButton).isVisible()
    save(wizard, args.out / "wizard-5-finish.png", 256)
    wizard.shutdown()
    return 0


def save_comparison(view, path: Path) -> None:
    """The comparison view down to its bit strip (the empty space below is left out)."""
    from PySide6.QtCore import QRect

    bottom = view.bit_strip.geometry().bottom() + 10
    grabbed = view.grab(QRect(0, 0, view.width(), bottom))
    tmp = path.with_suffix(".raw.png")
    grabbed.save(str(tmp), "PNG")
    from PIL import Image

    with Image.open(tmp) as png:
        png.convert("RGB").save(path, optimize=True)
    tmp.unlink()
    print(f"wrote {path} ({path.stat().st_size // 1024} KB)")


if __name__ == "__main__":
    sys.exit(main())
