"""The FPH model as the reading describes it: shapes, variants, the exact pooled smoothing, codes."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from fph_desktop.model import BackboneWeightsError, FPHConfig, build_backbone, build_model
from fph_desktop.model.encoder import pack_codes, unpack_codes
from fph_desktop.model.fph import conv_then_global_mean


def test_pooled_smoothing_equals_conv_then_global_average():
    torch.manual_seed(0)
    conv = nn.Conv2d(6, 5, 3, padding=1)
    for shape in [(2, 6, 7, 9), (1, 6, 1, 1), (3, 6, 28, 28)]:
        x = torch.randn(shape, requires_grad=True)
        reference = conv(x).mean(dim=(2, 3))
        fast = conv_then_global_mean(x, conv)
        torch.testing.assert_close(fast, reference, rtol=1e-5, atol=1e-5)
        grad_ref = torch.autograd.grad(reference.sum(), x)[0]
        grad_fast = torch.autograd.grad(conv_then_global_mean(x, conv).sum(), x)[0]
        torch.testing.assert_close(grad_fast, grad_ref, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize(
    "overrides",
    [
        {},
        {"fusion": "max"},
        {"fusion": "learned", "structure": "grid", "grid_size": 3},
        {"structure": "global"},
        {"use_horizontal": False},
        {"use_vertical": False},
        {"head_hidden": 32, "horizontal_levels": ("C2", "C3")},
    ],
)
def test_fph_variants_give_codes_and_overlay_maps(overrides):
    config = FPHConfig(backbone="resnet18", code_bits=24, **{"use_horizontal": True, **overrides})
    model = build_model(config, backbone_weights=None).train()
    out = model(torch.randn(4, 3, 64, 64), return_maps=True)
    assert out.u.shape == (4, 24) and out.u.abs().max() <= 1
    both = config.use_vertical and config.use_horizontal
    assert set(out.aux) == ({"vertical", "horizontal"} if both else set())
    # Each low layer at its own resolution, the fused map on the grid stage's (C3: stride 8); a model
    # without the horizontal pyramid shows the raw low stages' consensus instead.
    assert out.layer_maps["C2"].shape[-2:] == (16, 16)
    assert out.fused_map.shape[-2:] == (8, 8)
    out.u.sum().backward()
    model.eval()
    assert model(torch.randn(2, 3, 64, 64)).aux == {}


def test_learned_fusion_weights_are_trained():
    model = build_model(FPHConfig(backbone="resnet18", code_bits=16, fusion="learned", use_horizontal=True), None).train()
    model(torch.randn(4, 3, 64, 64)).u.pow(2).sum().backward()
    assert model.horizontal.fusion.logits.grad is not None


def test_stage_maps_input_gives_the_same_codes_as_images():
    model = build_model(FPHConfig(backbone="resnet18", code_bits=16), None).eval()
    images = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(model(images).u, model(model.backbone(images)).u)


def test_sign_maps_zero_to_plus_one_and_packs_eight_bits_a_byte():
    u = np.array([[0.0, -0.0, -1e-9, 0.3, -0.7, 1, -1, 0.0, 0.2, -0.2, 0, 0, 0, 0, 0, 0]], dtype=np.float32)
    packed = pack_codes(u)
    assert packed.shape == (1, 2) and packed.dtype == np.uint8
    assert list(unpack_codes(packed, 16)[0][:10]) == [1, 1, -1, 1, -1, 1, -1, 1, 1, -1]


def test_code_length_must_be_a_multiple_of_eight_within_range():
    for bits in (8, 16, 48, 64, 256):
        FPHConfig(code_bits=bits)
    for bits in (0, 12, 264):
        with pytest.raises(ValueError, match="multiples of 8"):
            FPHConfig(code_bits=bits)


def test_resnet_imagenet_weights_offline_error_names_both_remedies(monkeypatch):
    def no_network(*args, **kwargs):
        raise OSError("network is unreachable")

    monkeypatch.setattr(torch.hub, "download_url_to_file", no_network)
    with pytest.raises(BackboneWeightsError) as info:
        build_backbone("resnet18", "imagenet")
    message = str(info.value)
    assert "resnet18-f37072fd.pth" in message and "efficientnet_lite0" in message and "checkpoints" in message


def test_resnet_local_weights_file_is_loaded_strictly(tmp_path):
    import torchvision

    reference = torchvision.models.resnet18(weights=None)
    torch.save(reference.state_dict(), tmp_path / "r18.pth")
    backbone = build_backbone("resnet18", tmp_path / "r18.pth")
    torch.testing.assert_close(backbone.layer1[0].conv1.weight, reference.layer1[0].conv1.weight)
    torch.save({"something": torch.zeros(3)}, tmp_path / "wrong.pth")
    with pytest.raises(BackboneWeightsError, match="does not fit"):
        build_backbone("resnet18", tmp_path / "wrong.pth")


def test_efficientnet_lite0_ships_its_weights_and_its_own_normalisation():
    first = build_backbone("efficientnet_lite0", "imagenet")
    second = build_backbone("efficientnet_lite0", "imagenet")
    random_init = build_backbone("efficientnet_lite0", None)
    torch.testing.assert_close(first.head[0].weight, second.head[0].weight)
    assert not torch.equal(first.head[0].weight, random_init.head[0].weight)
    assert first.channels == {"C2": 24, "C3": 40, "C4": 112, "C5": 1280}
    # TF-style (x - 127) / 128 on 0..255 pixels, not ImageNet mean/std.
    grey = Image.new("RGB", (300, 260), (127, 127, 127))
    assert first.preprocessing.to_tensor(grey).abs().max() < 1e-6
    assert build_backbone("resnet18", None).preprocessing.name == "imagenet"


@pytest.mark.parametrize("fusion", ["mean", "learned", "max"])
def test_pooled_first_model_codes_photos_from_pooled_statistics_alone(fusion):
    """The fast mode trains on cached statistics and the app encodes photos: both must be one model."""
    from fph_desktop.model.fph import pooled_statistics

    torch.manual_seed(0)
    config = FPHConfig(
        backbone="resnet18",
        code_bits=16,
        fusion=fusion,
        horizontal_width=8,
        use_horizontal=True,
        vertical_levels=("C3", "C4", "C5"),
    )
    model = build_model(config, backbone_weights=None).train()
    images = torch.randn(6, 3, 64, 64)
    model(images)  # batch-norm statistics away from their initial values
    model.eval()
    with torch.no_grad():
        stages = model.backbone(images)
        stats = pooled_statistics(config, stages)
        assert stats["cells:C2"].shape == (6, model.backbone.channels["C2"], 21, 1)
        torch.testing.assert_close(model(images).u, model(stats).u)
        # The overlay's fused map, pooled into the structure's cells, is the feature the code came from
        # (exactly so for linear fusions: the ReLU comes after the pooling).
        out = model(images, return_maps=True)
        if fusion != "max":
            fused_before_relu = model.horizontal.fusion(
                [model.horizontal.reduce[lvl](stats[f"cells:{lvl}"]) for lvl in config.horizontal_levels]
            )
            from_map = model.horizontal.pool.bin_means(
                model.horizontal.fusion(
                    [
                        torch.nn.functional.interpolate(model.horizontal.reduce[lvl](stages[lvl]), size=(8, 8), mode="bilinear")
                        if stages[lvl].shape[-1] < 8
                        else torch.nn.functional.adaptive_avg_pool2d(model.horizontal.reduce[lvl](stages[lvl]), 8)
                        for lvl in config.horizontal_levels
                    ]
                )
            )
            torch.testing.assert_close(from_map, fused_before_relu, rtol=1e-4, atol=1e-5)
        assert out.fused_map.shape == (6, 8, 8, 8) and out.fused_map.min() >= 0


def test_weights_configs_saved_before_pool_first_load_with_the_old_reading():
    saved = FPHConfig(
        pool_first=False, vertical_smoothing=True, use_horizontal=True, vertical_levels=("C3", "C4", "C5")
    ).to_dict()
    del saved["pool_first"]  # a file written before the field existed
    legacy = FPHConfig.from_dict(saved)
    assert legacy.pool_first is False and legacy.vertical_smoothing is True
    model = build_model(FPHConfig.from_dict({**saved, "backbone": "resnet18", "code_bits": 16}), None).eval()
    out = model(torch.randn(2, 3, 64, 64), return_maps=True)
    assert out.u.shape == (2, 16) and out.fused_map.shape[-2:] == (8, 8)
    with pytest.raises(ValueError, match="no 3x3 smoothing"):
        FPHConfig(vertical_smoothing=True)


@pytest.mark.parametrize(
    "kind",
    ["full", "vertical-only", "horizontal-only", "itq"],
)
def test_every_model_kind_the_app_loads_explains_a_photo_with_low_layer_maps(kind, tmp_path):
    """The comparison view crashed on a vertical-only model (no fused map): every kind gives maps."""
    from PIL import Image

    from fph_desktop.model.encoder import Encoder
    from fph_desktop.model.weights import save_weights

    settings = {
        "full": {"use_horizontal": True},
        "vertical-only": {},
        "horizontal-only": {"use_horizontal": True, "use_vertical": False},
        "itq": {"method": "itq"},
    }[kind]
    torch.manual_seed(0)
    model = build_model(FPHConfig(backbone="resnet18", code_bits=16, image_size=64, **settings), backbone_weights=None)
    if kind == "itq":  # a fitted projection (the first 16 descriptor dimensions)
        dim = model.mean.numel()
        model.set_fit(np.zeros(dim, np.float32), np.eye(dim, 16, dtype=np.float32), np.ones(16, np.float32))
    save_weights(tmp_path / "m.fph", model)
    explanation = Encoder.load(tmp_path / "m.fph", "cpu").explain(Image.new("RGB", (90, 60), (120, 140, 30)))
    assert explanation.fused_heatmap.shape == (64, 64) and np.isfinite(explanation.fused_heatmap).all()
    assert sorted(explanation.layer_heatmaps) == ["C2", "C3", "C4"] and explanation.packed.shape == (2,)
