"""Training end to end on a tiny collection of drawn bird photos: fast CPU mode, full fine-tuning,
cancel and resume, errors a user can meet, DDP on two CPU processes, and the unsupervised ITQ start."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from fph_desktop.cli import main as cli_main
from fph_desktop.errors import DiskFullError
from fph_desktop.model import FPHConfig
from fph_desktop.model.encoder import Encoder
from fph_desktop.model.weights import load_weights, save_weights
from fph_desktop.progress import Cancelled, Progress
from fph_desktop.train.config import TrainConfig
from fph_desktop.train.runs import interrupted_runs
from fph_desktop.train.trainer import TrainingError, train
from fph_desktop.train.unsupervised import fit_itq_model

TINY_MODEL = dict(backbone="resnet18", code_bits=16, image_size=64, vertical_width=32, horizontal_width=16)


# A small random-init model for command-line runs: resnet18 without downloads, 16 bits, 64 px.
TINY_MODEL_FLAGS = ["--backbone", "resnet18", "--backbone-weights", "none", "--bits", "16", "--image-size", "64"]


def tiny_config(data: Path, **overrides) -> TrainConfig:
    settings = dict(
        data=str(data),
        model=FPHConfig(**TINY_MODEL),
        mode="fast",
        backbone_weights=None,
        epochs=2,
        classes_per_batch=3,
        images_per_class=2,
        val_fraction=0.34,
        workers=0,
        lr=0.05,
    )
    settings.update(overrides)
    return TrainConfig(**settings)


def test_fast_mode_trains_saves_and_reports(tiny_birds, tmp_path):
    reports = []
    progress = Progress(on_partial=reports.append)
    result = train(tiny_config(tiny_birds), tmp_path / "birds.fph", tmp_path / "run", progress)
    epochs_seen = [r for r in reports if r["kind"] == "epoch"]
    assert [r["epoch"] for r in epochs_seen] == [1, 2] and all(0 <= r["val_map"] <= 1 for r in epochs_seen)
    steps = [r for r in reports if r["kind"] == "step"]
    assert steps and steps[0]["step"] == 1 and all(np.isfinite(r["loss"]) for r in steps)  # the live loss curve's points
    model, info = load_weights(tmp_path / "birds.fph")
    summary = info.training
    assert summary["mode"] == "fast" and summary["epochs"] == 2 and summary["train_images"] + summary["validation_images"] == 18
    assert summary["best_epoch"] in (1, 2) and summary["best_val_map"] == max(r["val_map"] for r in epochs_seen)
    assert 0 <= summary["test_map_all"] <= 1 and info.class_names == sorted(p.name for p in (tiny_birds / "train").iterdir())
    # The frozen backbone is exactly the initial one: fast mode trains pyramids and heads only.
    torch.manual_seed(0)
    assert len(result.history) == 2 and info.config == FPHConfig(**TINY_MODEL)


def test_cancel_keeps_the_last_epoch_and_resume_finishes_the_run(tiny_birds, tmp_path):
    config = tiny_config(tiny_birds, epochs=3)
    progress = Progress()
    progress_partial = []

    def cancel_after_first_epoch(record):
        if record["kind"] == "epoch":
            progress_partial.append(record)
            progress.cancel()

    progress._on_partial = cancel_after_first_epoch
    with pytest.raises(Cancelled):
        train(config, tmp_path / "m.fph", tmp_path / "run", progress)
    assert (tmp_path / "run" / "last.pt").is_file() and not (tmp_path / "m.fph").exists()
    # An app started later finds the run and can offer to resume it.
    [record] = interrupted_runs(tmp_path)
    assert (record.run_dir, record.epoch, record.epochs, record.config) == (tmp_path / "run", 1, 3, config)
    assert "stopped after epoch 1 of 3" in record.describe()
    with pytest.raises(TrainingError, match="different run"):
        train(tiny_config(tiny_birds, epochs=3, lr=0.2), tmp_path / "m.fph", tmp_path / "run")
    result = train(config, tmp_path / "m.fph", tmp_path / "run", Progress())
    assert result.resumed_from_epoch == 1 and [r["epoch"] for r in result.history] == [1, 2, 3]
    assert result.history[0] == progress_partial[0]
    assert interrupted_runs(tmp_path) == []
    again = train(config, tmp_path / "m2.fph", tmp_path / "run", Progress())  # a finished run is not "resumed"
    assert again.resumed_from_epoch == 0 and len(again.history) == 3


def test_full_fine_tuning_updates_the_backbone(tiny_birds, tmp_path):
    torch.manual_seed(0)
    config = tiny_config(tiny_birds, mode="full", epochs=1, steps_per_epoch=2, val_fraction=0.0)
    train(config, tmp_path / "full.fph", tmp_path / "run")
    _, info = load_weights(tmp_path / "full.fph")
    assert info.training["mode"] == "full" and info.training["validation_images"] == 0
    from fph_desktop.model import build_model

    torch.manual_seed(config.seed)
    initial = build_model(config.model, None)
    trained, _ = load_weights(tmp_path / "full.fph")
    assert not torch.equal(initial.backbone.stem[0].weight, trained.backbone.stem[0].weight)


def test_errors_a_user_can_meet_say_what_to_do(tiny_birds, tmp_path):
    one_class = tmp_path / "one"
    shutil.copytree(sorted((tiny_birds / "train").iterdir())[0], one_class / "only-class")
    with pytest.raises(TrainingError, match="only one class.*at least two classes"):
        train(tiny_config(one_class), tmp_path / "x.fph", tmp_path / "r1")
    thin = tmp_path / "thin"
    shutil.copytree(tiny_birds, thin)
    lonely = sorted((thin / "train").iterdir())[1]
    for extra in sorted(lonely.iterdir())[1:]:
        extra.unlink()
    with pytest.raises(TrainingError, match=rf"too few training images in {lonely.name} \(1\).*at least 2"):
        train(tiny_config(thin), tmp_path / "x.fph", tmp_path / "r2")


def test_gpu_out_of_memory_and_a_full_disk_end_in_a_next_step_and_lose_no_training(tiny_birds, tmp_path, monkeypatch):
    from fph_desktop.train import trainer as trainer_module
    from fph_desktop.train.losses import HashLoss

    config = tiny_config(tiny_birds, epochs=1)
    real_forward, save_weights = HashLoss.forward, trainer_module.save_weights

    def out_of_memory(self, *args, **kwargs):
        raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr(HashLoss, "forward", out_of_memory)
    with pytest.raises(TrainingError, match="GPU ran out of memory; start a new run with a smaller image size.*fast mode"):
        train(config, tmp_path / "m.fph", tmp_path / "run")
    monkeypatch.setattr(HashLoss, "forward", real_forward)

    def disk_full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(trainer_module, "save_weights", disk_full)
    with pytest.raises(DiskFullError, match="disk is full while saving the model; free some space.*only needs saving"):
        train(config, tmp_path / "m.fph", tmp_path / "run")
    assert [r.epoch for r in interrupted_runs(tmp_path)] == [1]
    monkeypatch.setattr(trainer_module, "save_weights", save_weights)  # space freed
    result = train(config, tmp_path / "m.fph", tmp_path / "run")  # only saves: the epoch is not trained again
    assert result.resumed_from_epoch == 1 and load_weights(tmp_path / "m.fph")[1].training["epochs"] == 1


def test_two_ranks_under_torchrun_end_with_identical_weights(tiny_birds, tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node=2",
        "-m",
        "fph_desktop.train",
        "--data",
        str(tiny_birds),
        "--out",
        str(tmp_path / "ddp.fph"),
        "--run-dir",
        str(tmp_path / "run"),
        *TINY_MODEL_FLAGS,
        "--mode",
        "full",
        "--epochs",
        "1",
        "--steps-per-epoch",
        "2",
        "--classes-per-batch",
        "3",
        "--images-per-class",
        "2",
        "--device",
        "cpu",
        "--workers",
        "0",
        "--val-fraction",
        "0",
        "--quiet",
    ]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    _, info = load_weights(tmp_path / "ddp.fph")
    digests = info.training["rank_parameter_digests"]
    assert info.training["world_size"] == 2 and len(digests) == 2 and digests[0] == digests[1]


def test_itq_start_needs_no_labels_and_makes_a_normal_weights_file(tiny_birds, tmp_path):
    photos = sorted(tiny_birds.glob("*/*/*.jpg"))
    (tmp_path / "broken.jpg").write_bytes(b"\xff\xd8 not really")
    model = fit_itq_model(photos + [tmp_path / "broken.jpg"], backbone="resnet18", code_bits=16, backbone_weights=None)
    assert model.config.extra["itq_fit_images"] == len(photos)
    save_weights(tmp_path / "itq.fph", model, [], {"method": "itq"})
    encoder = Encoder.load(tmp_path / "itq.fph", "cpu")
    from PIL import Image

    packed, real = encoder.encode_images([Image.open(p) for p in photos[:4]])
    assert packed.shape == (4, 2) and np.all(np.abs(real) <= 1)
    assert encoder.explain(Image.open(photos[0])).fused_heatmap.shape == (224, 224)


def test_cli_train_then_eval_prints_a_table_and_writes_json(tiny_birds, tmp_path, capsys):
    out = tmp_path / "cli.fph"
    code = cli_main(
        [
            "train",
            "--data",
            str(tiny_birds),
            "--out",
            str(out),
            *TINY_MODEL_FLAGS,
            "--epochs",
            "1",
            "--mode",
            "fast",
            "--classes-per-batch",
            "3",
            "--images-per-class",
            "2",
            "--workers",
            "0",
            "--run-dir",
            str(tmp_path / "run"),
            "--quiet",
        ]
    )
    assert code == 0 and f"wrote {out}" in capsys.readouterr().out
    code = cli_main(
        [
            "eval",
            "--model",
            str(out),
            "--data",
            str(tiny_birds),
            "--k",
            "5",
            "--json",
            str(tmp_path / "r.json"),
            "--workers",
            "0",
            "--quiet",
        ]
    )
    printed = capsys.readouterr().out
    assert code == 0 and "map_all" in printed and "map@5" in printed
    results = json.loads((tmp_path / "r.json").read_text())
    assert results["queries"] == 9 and results["database"] == 18 and len(results["pr_curve"]) == 17
    assert results["engine"].startswith("ONNX Runtime")  # the CPU's default engine; PyTorch gives the same numbers:
    eval_torch = ["eval", "--model", str(out), "--data", str(tiny_birds), "--k", "5", "--workers", "0", "--quiet"]
    assert cli_main([*eval_torch, "--engine", "torch", "--json", str(tmp_path / "t.json")]) == 0
    by_torch = json.loads((tmp_path / "t.json").read_text())
    assert by_torch["engine"] == "PyTorch" and by_torch["map_all"] == pytest.approx(results["map_all"], abs=1e-9)
    capsys.readouterr()
    assert cli_main(["encode", "--model", str(out), str(next(tiny_birds.glob("test/*/*.jpg")))]) == 0
    assert len(capsys.readouterr().out.split()[0]) == 4  # 16 bits = 4 hex digits


def test_duration_estimate_is_measured_here_and_counts_the_one_off_feature_pass(tiny_birds):
    from fph_desktop.train.estimate import estimate_training, format_duration

    photos = sorted(tiny_birds.glob("train/*/*.jpg"))[:3]
    estimate = estimate_training(
        tiny_config(tiny_birds, epochs=4), train_images=1200, test_images=600, classes=2, sample_photos=photos
    )
    assert estimate.mode == "fast" and estimate.epochs == 4 and estimate.device.startswith("CPU")
    # Four passes over the 792 photos trained on, in batches of P x K = 2 x 2 (P is capped by the classes).
    assert estimate.steps_per_epoch == 4 * round(1200 * (1 - 0.34)) // (2 * 2)
    assert 0 < estimate.epoch_seconds and 0 < estimate.features_seconds and 0 < estimate.test_seconds
    assert estimate.total_seconds == pytest.approx(estimate.features_seconds + 4 * estimate.epoch_seconds + estimate.test_seconds)
    assert "for the backbone's features (once), then 4 epochs in" in estimate.describe()
    assert [format_duration(s) for s in (0.4, 59, 61, 600, 3725)] == ["0 s", "59 s", "1 min 01 s", "10 min", "1 h 02 min"]


def test_fast_mode_caches_several_views_of_each_training_photo_and_a_run_resumes_with_other_workers(tiny_birds, tmp_path):
    from fph_desktop import paths
    from fph_desktop.train.stats_cache import ViewStatsCache

    config = tiny_config(tiny_birds, epochs=2, views=3)
    progress = Progress()
    progress._on_partial = lambda record: record["kind"] == "epoch" and progress.cancel()
    with pytest.raises(Cancelled):
        train(config, tmp_path / "m.fph", tmp_path / "run", progress)
    [folder] = [p for p in (paths.cache_dir() / "stats").iterdir() if p.is_dir()]
    meta = json.loads((folder / "meta.json").read_text())
    # 18 train photos: 12 trained on (3 views each), 6 validation + 9 test photos (the centre crop alone).
    assert meta["rows"] == meta["done"] == 12 * 3 + 6 + 9
    from fph_desktop.data.layouts import load_labelled_folder, split_validation
    from fph_desktop.train.trainer import training_views

    items = load_labelled_folder(tiny_birds).split("train")
    fit_idx, _ = split_validation(items, config.val_fraction, config.seed)
    cache = ViewStatsCache(folder, {k: tuple(v) for k, v in meta["shapes"].items()}, training_views(config, 18, fit_idx, 9))
    first = int(cache.offsets[fit_idx[0]])
    views = cache.tensors["mean:C5"][first : first + 3].float()
    assert not torch.allclose(views[0], views[1]) and not torch.allclose(views[1], views[2])  # different crops
    # Workers and the evaluation batch are how a run executes, not what it computes: it resumes.
    result = train(tiny_config(tiny_birds, epochs=2, views=3, workers=1, batch_size_eval=7), tmp_path / "m.fph", tmp_path / "run")
    assert result.resumed_from_epoch == 1 and len(result.history) == 2


def test_the_fast_modes_feature_pass_on_onnx_runtime_stores_what_pytorch_computes(tiny_birds, tmp_path, monkeypatch):
    import sys

    from fph_desktop.model import FPHConfig, build_backbone
    from fph_desktop.train.stats_cache import ViewStatsCache

    config = FPHConfig(backbone="resnet18", code_bits=16, image_size=64)
    torch.manual_seed(0)
    backbone = build_backbone("resnet18", None)
    preprocessing = backbone.preprocessing.with_size(64)
    photos = sorted(tiny_birds.rglob("*.jpg"))[:8]
    cpu = torch.device("cpu")
    by_onnx = ViewStatsCache.build(backbone, preprocessing, config, photos, [2] * 8, tmp_path / "a", cpu, workers=0)
    assert (by_onnx.directory / "statistics.onnx").is_file()
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # as if not installed: PyTorch runs the pass
    by_torch = ViewStatsCache.build(backbone, preprocessing, config, photos, [2] * 8, tmp_path / "b", cpu, workers=0)
    assert not (by_torch.directory / "statistics.onnx").exists()
    assert set(by_onnx.tensors) == set(by_torch.tensors) and len(by_torch.tensors["mean:C5"]) == 16
    for key, expected in by_torch.tensors.items():
        torch.testing.assert_close(by_onnx.tensors[key].float(), expected.float(), rtol=2e-3, atol=2e-3)
