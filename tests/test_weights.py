"""Weights files: everything needed to use them in one file, and a one-line error for every bad one."""

from __future__ import annotations

import io
import json
import pickle

import numpy as np
import pytest
import torch
from conftest import draw_bird_photo
from PIL import Image

from fph_desktop.model import FPHConfig, build_model
from fph_desktop.model.encoder import Encoder
from fph_desktop.model.weights import FORMAT_VERSION, WeightsError, load_weights, read_weights, save_weights


def _photo() -> Image.Image:
    return draw_bird_photo(0, seed=0)


def test_roundtrip_keeps_metadata_and_gives_identical_codes(tmp_path):
    torch.manual_seed(1)
    model = build_model(FPHConfig(backbone="resnet18", code_bits=32, image_size=64, fusion="max"), None).eval()
    info = save_weights(tmp_path / "m.fph", model, ["albatross", "auklet"], {"epochs": 3, "best_val_map": 0.5})
    loaded, loaded_info = load_weights(tmp_path / "m.fph")
    assert loaded_info.config == model.config and loaded_info.class_names == ["albatross", "auklet"]
    assert loaded_info.training["best_val_map"] == 0.5 and loaded_info.fingerprint == info.fingerprint
    assert loaded_info.preprocessing.crop == 64 and loaded_info.preprocessing.name == "imagenet"
    photo = _photo()
    direct = Encoder(model, info, "cpu").encode_images([photo])[0]
    assert np.array_equal(Encoder.load(tmp_path / "m.fph", "cpu").encode_images([photo])[0], direct)


def test_fingerprint_changes_exactly_when_codes_could_change(tmp_path):
    model = build_model(FPHConfig(backbone="resnet18", code_bits=16, image_size=64), None)
    first = save_weights(tmp_path / "a.fph", model).fingerprint
    assert save_weights(tmp_path / "b.fph", model, ["x"], {"note": "other summary"}).fingerprint == first
    with torch.no_grad():
        model.head.net[-1].bias[0] += 0.5
    assert save_weights(tmp_path / "c.fph", model).fingerprint != first


def test_truncated_file_is_refused_with_its_name(tmp_path, tiny_model_file):
    broken = tmp_path / "broken.fph"
    broken.write_bytes(tiny_model_file.read_bytes()[:5000])
    with pytest.raises(WeightsError, match=r"broken\.fph.*truncated"):
        load_weights(broken)
    empty = tmp_path / "empty.fph"
    empty.write_bytes(b"")
    with pytest.raises(WeightsError, match="empty file"):
        load_weights(empty)


def test_file_of_another_kind_is_refused(tmp_path):
    text = tmp_path / "notes.fph"
    text.write_text("hello")
    with pytest.raises(WeightsError, match="notes.fph"):
        load_weights(text)
    plain = tmp_path / "resnet.pth"
    torch.save({"conv1.weight": torch.zeros(1)}, plain)
    with pytest.raises(WeightsError, match="plain state dict"):
        load_weights(plain)


def test_loading_never_unpickles_objects(tmp_path):
    class Boom:
        def __reduce__(self):
            return (exec, ("import pathlib; pathlib.Path('" + str(tmp_path / "pwned") + "').write_text('x')",))

    evil = tmp_path / "evil.fph"
    torch.save({"format": "fph-desktop-weights", "payload": Boom()}, evil)
    with pytest.raises(WeightsError):
        load_weights(evil)
    assert not (tmp_path / "pwned").exists()
    raw = tmp_path / "raw.fph"
    raw.write_bytes(pickle.dumps(Boom()))
    with pytest.raises(WeightsError):
        load_weights(raw)
    assert not (tmp_path / "pwned").exists()


def _rewrite(path, out, edit):
    payload = torch.load(path, weights_only=True)
    edit(payload)
    torch.save(payload, out)
    return out


def test_newer_format_version_asks_for_an_update(tmp_path, tiny_model_file):
    newer = _rewrite(tiny_model_file, tmp_path / "newer.fph", lambda p: p.update(format_version=FORMAT_VERSION + 1))
    with pytest.raises(WeightsError, match="newer.*update fph-desktop"):
        load_weights(newer)


def test_config_that_does_not_match_the_tensors_is_refused(tmp_path, tiny_model_file):
    def change_bits(payload):
        meta = json.loads(payload["metadata"])
        meta["config"]["code_bits"] = 32
        from fph_desktop.model.config import FPHConfig as Config
        from fph_desktop.model.preprocessing import Preprocessing
        from fph_desktop.model.weights import compute_fingerprint

        # A consistent fingerprint, so that the shape check is what catches it.
        meta["fingerprint"] = compute_fingerprint(
            Config.from_dict(meta["config"]), Preprocessing.from_dict(meta["preprocessing"]), payload["state_dict"]
        )
        payload["metadata"] = json.dumps(meta)

    mismatched = _rewrite(tiny_model_file, tmp_path / "mismatch.fph", change_bits)
    with pytest.raises(WeightsError, match=r"mismatch\.fph: config does not match the tensors"):
        load_weights(mismatched)


def test_altered_tensor_is_caught_by_the_fingerprint(tmp_path, tiny_model_file):
    def nudge(payload):
        payload["state_dict"]["head.net.1.bias"] = payload["state_dict"]["head.net.1.bias"] + 1

    altered = _rewrite(tiny_model_file, tmp_path / "altered.fph", nudge)
    with pytest.raises(WeightsError, match="fingerprint"):
        read_weights(altered)


def test_full_disk_while_saving_leaves_no_half_file(tmp_path, monkeypatch):
    from contextlib import contextmanager

    from fph_desktop.errors import DiskFullError
    from fph_desktop.model import weights as weights_module

    model = build_model(FPHConfig(backbone="resnet18", code_bits=16, image_size=64), None)
    target = tmp_path / "models" / "m.fph"
    real_atomic_write = weights_module.atomic_write

    @contextmanager
    def filling_the_disk(path):
        with real_atomic_write(path) as handle:

            class Full:
                def write(self, data):
                    handle.write(bytes(data[:100]))
                    raise OSError(28, "No space left on device")

            yield Full()

    monkeypatch.setattr(weights_module, "atomic_write", filling_the_disk)
    with pytest.raises(DiskFullError, match=r"m.fph: the disk is full while saving the model; free some space"):
        save_weights(target, model)
    assert list(target.parent.iterdir()) == []
