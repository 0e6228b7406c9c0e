"""The training wizard driven for real, end to end on a tiny folder of real bird photos: its pages
and their checks, a training run on the worker thread with the plot filling in, cancel and resume,
closing mid-run and resuming when it opens again, and the finished model searching in the window."""

from __future__ import annotations

import shutil
import threading
from pathlib import Path

import pytest

pytest.importorskip("pytestqt")

from PySide6.QtCore import Qt  # noqa: E402
from PySide6.QtWidgets import QWizard  # noqa: E402
from test_gui_window import WAIT_MS, _index, _make_window  # noqa: E402


def _click(qtbot, button):
    assert button.isVisible() and button.isEnabled(), button.text()
    qtbot.mouseClick(button, Qt.MouseButton.LeftButton)


def _next(wizard):
    return wizard.button(QWizard.WizardButton.NextButton)


def _choose_folder(qtbot, page, folder):
    page.folder_edit.setText(str(folder))
    with qtbot.waitSignal(page.inspected, timeout=WAIT_MS):
        qtbot.keyClick(page.folder_edit, Qt.Key.Key_Return)


@pytest.fixture
def labelled(tmp_path, tiny_birds) -> Path:
    """3 classes of real photos (6 train, 3 test each) and one corrupt file."""
    folder = tmp_path / "labelled"
    shutil.copytree(tiny_birds, folder)
    first_class = sorted((folder / "train").iterdir())[0]
    (first_class / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not a JPEG" + b"\0" * 64)
    return folder


class EpochGate:
    """Holds the training worker after each finished epoch (its checkpoint written) until the test
    lets it go, so a cancel or a close lands at a known epoch however fast this machine trains."""

    def __init__(self, monkeypatch):
        from fph_desktop.gui import training_tasks

        self.hold, self.epochs, self._go = True, [], threading.Event()
        original = training_tasks.train_model

        def gated(progress, *args, **kwargs):
            emit = progress._on_partial

            def partial(record):
                emit(record)
                if record["kind"] == "epoch":
                    self.epochs.append(record["epoch"])
                    if self.hold:
                        self._go.wait(30)
                        self._go.clear()

            progress._on_partial = partial
            return original(progress, *args, **kwargs)

        monkeypatch.setattr(training_tasks, "train_model", gated)

    def release(self, hold: bool = True) -> None:
        self.hold = hold
        self._go.set()


def _tiny_model(page, epochs):
    """The model page as a user would set it for a quick trial run (no download: random init)."""
    page.backbone.setCurrentIndex(page.backbone.findData("resnet18"))
    page.weights.setCurrentIndex(page.weights.findData("none"))
    page.bits.setValue(16)
    page.image_size.setValue(64)
    page.mode.setCurrentIndex(page.mode.findData("fast"))
    page.epochs.setValue(epochs)


def test_wizard_trains_with_cancel_and_resume_and_the_model_searches_in_the_window(
    qtbot, tmp_path, labelled, tiny_model_file, monkeypatch
):
    gate = EpochGate(monkeypatch)
    window = _make_window(qtbot, tiny_model_file)
    _index(qtbot, window, labelled)  # the folder the user already works in
    _click(qtbot, window.first_run.train_button) if window.first_run.isVisible() else window.train_action.trigger()
    wizard = window.wizard
    assert wizard.isVisible() and wizard.currentId() == 0
    data = wizard.data_page
    assert not _next(wizard).isEnabled()

    # Data page: folders that cannot be trained on say why, and Next stays off.
    empty = tmp_path / "empty"
    empty.mkdir()
    _choose_folder(qtbot, data, empty)
    assert data.error_label.isVisible() and "no labelled photos" in data.error_label.text().lower()
    assert not _next(wizard).isEnabled()
    one_class = tmp_path / "one-class"
    shutil.copytree(sorted((labelled / "train").iterdir())[1], one_class / "only-kind")
    _choose_folder(qtbot, data, one_class)
    assert "only one class" in data.error_label.text() and "at least two" in data.error_label.text()
    assert not _next(wizard).isEnabled()
    thin = tmp_path / "thin"
    for name, count in (("kind-a", 3), ("kind-b", 1)):
        (thin / name).mkdir(parents=True)
        for photo in sorted((labelled / "train").iterdir())[0].glob("*_*.jpg"):
            if len(list((thin / name).iterdir())) < count:
                shutil.copy(photo, thin / name)
    _choose_folder(qtbot, data, thin)
    assert "too few training images in kind-b (1)" in data.error_label.text() and not _next(wizard).isEnabled()

    _choose_folder(qtbot, data, labelled)
    assert not data.error_label.isVisible() and _next(wizard).isEnabled()
    assert "class folders with train/ and test/" in data.layout_label.text() and "3 classes" in data.layout_label.text()
    assert data.classes.topLevelItemCount() == 3
    assert [data.classes.topLevelItem(i).text(1) for i in range(3)] == ["6", "6", "6"]
    assert "fewer than 10 training photos" in data.warning_label.text()
    assert data.skipped_list.topLevelItemCount() == 1 and data.skipped_list.topLevelItem(0).text(0).endswith("broken.jpg")

    # Model page: the best measured defaults, the device, and a measured time estimate.
    _click(qtbot, _next(wizard))
    model = wizard.model_page
    qtbot.waitUntil(lambda: model.device.currentData() == "cpu", timeout=WAIT_MS)  # Next waits for the device list
    assert model.bits.value() == 48 and model.variant.currentIndex() == 0 and model.fusion.currentData() == "mean"
    assert not model.fusion.isEnabled()  # the default variant has no horizontal pyramid to fuse
    assert model.mode.currentData() == "fast" and model.epochs.value() == 150
    # The default backbone works offline; one whose weights are neither shipped nor cached says so.
    assert model.backbone.currentData() == "efficientnet_lite0"
    resnet = model.backbone.findData("resnet18")
    qtbot.waitUntil(lambda: "weights need a download" in model.backbone.itemText(resnet), timeout=WAIT_MS)
    assert "download" not in model.backbone.currentText()
    _tiny_model(model, epochs=4)
    qtbot.waitUntil(lambda: model.estimate_label.text().startswith("About"), timeout=WAIT_MS)
    assert "CPU" in model.estimate_label.text() and "4 epochs" in model.estimate_label.text()

    # Train page: the run starts, the plot fills in, cancel keeps the epoch, resume finishes.
    train = wizard.train_page
    _click(qtbot, _next(wizard))
    assert wizard.currentId() == 2 and train.running and train.cancel_button.isVisible()
    assert not wizard.button(QWizard.WizardButton.BackButton).isEnabled()
    qtbot.waitUntil(lambda: gate.epochs == [1] and train.kept_epoch == 1, timeout=WAIT_MS)
    with qtbot.waitSignal(train.runEnded, timeout=WAIT_MS) as ended:
        _click(qtbot, train.cancel_button)
        gate.release()
    assert ended.args == ["cancelled"]
    assert "stopped after epoch 1" in train.status.text() and train.resume_button.isVisible()
    assert train.discard_button.isVisible() and wizard.button(QWizard.WizardButton.BackButton).isEnabled()
    assert train.plot.loss_points and [p[2] for p in train.plot.map_points] == [1]
    assert train.times.text().startswith("Elapsed 0:")
    assert not _next(wizard).isEnabled()
    _click(qtbot, train.resume_button)
    qtbot.waitUntil(lambda: gate.epochs == [1, 2], timeout=WAIT_MS)

    # Closing the wizard mid-run stops it cleanly; opening it again offers to resume the run.
    run_dir = tmp_path / "app-data" / "runs"
    wizard.close()
    assert window.wizard is wizard and not wizard.isEnabled()  # stopping: it closes once the worker lets go
    gate.release(hold=False)
    qtbot.waitUntil(lambda: window.wizard is None, timeout=WAIT_MS)
    assert len(list(run_dir.glob("*/last.pt"))) == 1
    window.train_action.trigger()
    wizard = window.wizard
    data, train = wizard.data_page, wizard.train_page
    qtbot.waitUntil(lambda: data.resume_box.isVisible(), timeout=WAIT_MS)
    assert "stopped after epoch 2 of 4" in data.resume_label.text()
    with qtbot.waitSignal(wizard.modelTrained, timeout=WAIT_MS) as trained:
        _click(qtbot, data.resume_button)
        assert wizard.currentId() == 2
    result = trained.args[0]
    assert result.resumed_from_epoch == 2 and [r["epoch"] for r in result.history] == [1, 2, 3, 4]
    assert [p[2] for p in train.plot.map_points] == [3, 4] and train.plot.loss_points
    assert "Epoch 4 of 4" in train.epoch_label.text() and train.times.text().startswith("Elapsed")
    assert "Training finished: test mAP" in train.status.text() and _next(wizard).isEnabled()

    # Finish page: the test mAP table, the saved file, and "use this model now" with a re-index.
    _click(qtbot, _next(wizard))
    finish = wizard.finish_page
    cells = {finish.table.item(r, 0).text(): finish.table.item(r, 1).text() for r in range(finish.table.rowCount())}
    assert 0 <= float(cells["mAP@all (test)"]) <= 1 and cells["Code length"] == "16 bits"
    saved = Path(result.weights_path)
    assert saved.is_file() and saved.parent == tmp_path / "app-data" / "models" and str(saved) in finish.saved_label.text()
    copy = tmp_path / "shared" / "birds.fph"
    assert finish.save_copy(str(copy)) and copy.read_bytes() == saved.read_bytes()
    assert finish.use_now.isChecked() and finish.reindex.isVisible() and finish.reindex.isChecked()
    with qtbot.waitSignal(window.indexReady, timeout=WAIT_MS) as indexed:
        _click(qtbot, wizard.button(QWizard.WizardButton.FinishButton))
    assert window.settings.model_path == str(saved) and indexed.args[0].model_path == str(saved)
    assert not list(run_dir.iterdir())  # the finished run's checkpoints are gone; the model is saved

    query = sorted(labelled.glob("test/*/*.jpg"))[0]
    with qtbot.waitSignal(window.searchFinished, timeout=WAIT_MS) as searched:
        window.set_queries([str(query)])
    hits = searched.args[0].queries[0].hits
    assert hits and all(h.distance <= 16 for h in hits)
    window.close()


def test_a_full_disk_says_what_to_do_and_quitting_the_app_mid_run_keeps_the_checkpoint(qtbot, labelled, monkeypatch, tmp_path):
    from fph_desktop.train import trainer

    save_weights = trainer.save_weights
    gate = EpochGate(monkeypatch)
    gate.hold = False
    window = _make_window(qtbot)
    window.train_action.trigger()
    wizard = window.wizard
    _choose_folder(qtbot, wizard.data_page, labelled)
    _click(qtbot, _next(wizard))
    qtbot.waitUntil(lambda: _next(wizard).isEnabled(), timeout=WAIT_MS)
    _tiny_model(wizard.model_page, epochs=1)

    def disk_full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(trainer, "save_weights", disk_full)
    train = wizard.train_page
    with qtbot.waitSignal(train.runEnded, timeout=WAIT_MS) as ended:
        _click(qtbot, _next(wizard))
    assert ended.args == ["failed"]
    message = train.message.text()
    assert train.message.isVisible() and "disk is full" in message and "free some space" in message and "\n" not in message
    assert train.resume_button.isVisible() and not _next(wizard).isEnabled()
    monkeypatch.setattr(trainer, "save_weights", save_weights)  # space freed
    with qtbot.waitSignal(wizard.modelTrained, timeout=WAIT_MS) as trained:
        _click(qtbot, train.resume_button)
    assert trained.args[0].resumed_from_epoch == 1 and Path(trained.args[0].weights_path).is_file()

    # Back to the model page for a longer run, then quit the whole app while it trains.
    _click(qtbot, wizard.button(QWizard.WizardButton.BackButton))
    wizard.model_page.epochs.setValue(40)
    gate.hold = True
    _click(qtbot, _next(wizard))
    qtbot.waitUntil(lambda: len(gate.epochs) == 2, timeout=WAIT_MS)  # the first run's epoch, then this one's
    gate.release(hold=False)
    window.close()
    assert wizard.runner.thread.isFinished() and window.jobs.thread.isFinished()
    from fph_desktop.train.runs import interrupted_runs

    [record] = interrupted_runs()
    assert record.epochs == 40 and 1 <= record.epoch < 40 and (record.run_dir / "last.pt").is_file()


def test_opening_the_wizard_never_imports_torch_in_the_gui_thread(tmp_path):
    """Importing torch holds the GIL for seconds: the wizard's first page must paint without it.
    Its worker jobs (which do import torch) are stubbed here, so any import would be the GUI's."""
    import json
    import os
    import subprocess
    import sys

    probe = tmp_path / "probe.json"
    script = f"""
import json, sys
from PySide6.QtWidgets import QApplication
app = QApplication([])
from fph_desktop.gui import training_tasks
training_tasks.interrupted_runs = lambda progress: []
from fph_desktop.gui.training_wizard import TrainingWizard
wizard = TrainingWizard()
wizard.show()
for _ in range(20):
    app.processEvents()
wizard.data_page.folder_edit.setText("x")
loaded = "torch" in sys.modules
wizard.shutdown()
json.dump({{"torch_loaded": loaded, "offer_checked": not wizard.data_page.resume_box.isVisible()}}, open({str(probe)!r}, "w"))
"""
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    subprocess.run([sys.executable, "-c", script], check=True, env=env, timeout=300)
    assert json.loads(probe.read_text()) == {"torch_loaded": False, "offer_checked": True}


def _wizard(qtbot):
    from fph_desktop.gui.app import create_app
    from fph_desktop.gui.training_wizard import TrainingWizard

    create_app()
    wizard = TrainingWizard()
    qtbot.addWidget(wizard)
    wizard.show()
    qtbot.waitExposed(wizard)
    return wizard


def test_the_data_folder_is_read_without_pressing_enter(qtbot, labelled):
    wizard = _wizard(qtbot)
    data = wizard.data_page
    with qtbot.waitSignal(data.inspected, timeout=WAIT_MS) as inspected:
        qtbot.keyClicks(data.folder_edit, str(labelled))  # typed (or pasted), no Enter
    assert inspected.args[0].trainable and _next(wizard).isEnabled()
    assert "3 classes" in data.layout_label.text()
    wizard.shutdown()


def test_the_code_length_holds_multiples_of_8_and_the_estimate_never_raises(qtbot, labelled, monkeypatch):
    from fph_desktop.errors import ConfigError

    wizard = _wizard(qtbot)
    _choose_folder(qtbot, wizard.data_page, labelled)
    _click(qtbot, _next(wizard))
    model = wizard.model_page
    qtbot.waitUntil(lambda: _next(wizard).isEnabled(), timeout=WAIT_MS)
    seen = []
    model.bits.valueChanged.connect(seen.append)
    model.bits.setFocus()
    model.bits.selectAll()
    qtbot.keyClicks(model.bits, "50")
    qtbot.keyClick(model.bits, Qt.Key.Key_Return)
    assert model.bits.value() == 48 and all(v % 8 == 0 for v in seen)
    model.bits.setValue(61)
    assert model.bits.value() == 64
    model.bits.stepBy(1)
    assert model.bits.value() == 72

    # Settings the model cannot have are said where the estimate goes; the timer's slot never raises.
    def impossible():
        raise ConfigError("code length must be 8..256 bits in multiples of 8, not 50")

    monkeypatch.setattr(model, "config", impossible)
    model._estimate_timer.timeout.emit()
    assert "These settings cannot work" in model.estimate_label.text() and "not 50" in model.estimate_label.text()
    assert not model.validatePage()
    wizard.shutdown()


def test_a_cancel_before_the_first_epoch_offers_a_fresh_start_not_a_resume(qtbot, labelled, monkeypatch):
    """Nothing was checkpointed yet: the page must not promise a resume "from there" (it once said
    "nothing to keep yet" and "Resume continues from there" together); the plot names no step count."""
    import time

    from fph_desktop.gui import training_tasks

    running = threading.Event()

    def before_the_first_epoch(progress, *args, **kwargs):
        running.set()
        while True:
            progress.check()
            time.sleep(0.01)

    monkeypatch.setattr(training_tasks, "train_model", before_the_first_epoch)
    wizard = _wizard(qtbot)
    _choose_folder(qtbot, wizard.data_page, labelled)
    _click(qtbot, _next(wizard))
    qtbot.waitUntil(lambda: _next(wizard).isEnabled(), timeout=WAIT_MS)
    _tiny_model(wizard.model_page, epochs=2)
    _click(qtbot, _next(wizard))
    train = wizard.train_page
    assert running.wait(WAIT_MS / 1000)
    assert train.plot.axis_title() == "training steps"
    with qtbot.waitSignal(train.runEnded, timeout=WAIT_MS) as ended:
        _click(qtbot, train.cancel_button)
    status = train.status.text()
    assert ended.args == ["cancelled"] and "before its first epoch" in status
    assert "Resume continues" not in status and "nothing to keep" not in status
    assert train.resume_button.isVisible() and train.resume_button.text() == "&Start again"
    wizard.shutdown()


def test_the_plot_names_no_step_count_before_training_says_it(qtbot):
    from fph_desktop.gui.app import create_app
    from fph_desktop.gui.training_plot import TrainingPlot

    create_app()
    plot = TrainingPlot()
    qtbot.addWidget(plot)
    plot.resize(400, 240)
    assert plot.axis_title() == "training steps"
    plot.grab()
    plot.set_total_steps(4200)
    plot.add_loss(10, 2.5)
    assert plot.axis_title() == "training steps (of 4,200)"
    plot.grab()
    plot.clear()
    assert plot.axis_title() == "training steps"


def test_without_pytorch_the_wizard_says_how_to_get_training_and_offers_no_next_step(qtbot, monkeypatch):
    from fph_desktop.model import graph

    monkeypatch.setattr(graph, "pytorch_available", lambda: False)  # the search-only edition
    wizard = _wizard(qtbot)
    data = wizard.data_page
    assert data.no_pytorch_label.isVisible() and "export-graph" in data.no_pytorch_label.text()
    assert not data.folder_edit.isVisible() and not _next(wizard).isEnabled()
    wizard.shutdown()
