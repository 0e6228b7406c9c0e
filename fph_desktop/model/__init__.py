"""Hashing models: backbones, FPH, ITQ, their config and weights files. Knows nothing of Qt."""

from __future__ import annotations

from pathlib import Path

from torch import nn

from .backbones import BACKBONES, Backbone, BackboneWeightsError, build_backbone
from .config import FPHConfig
from .fph import FPH, HashOutput
from .itq import ITQHash, fit_itq


def build_model(config: FPHConfig, backbone_weights: str | Path | None = "imagenet") -> nn.Module:
    """A fresh model for ``config``. ``backbone_weights`` as in :func:`build_backbone`; loading a
    weights file passes ``None`` because the file already holds the backbone."""
    backbone = build_backbone(config.backbone, backbone_weights)
    if config.method == "itq":
        return ITQHash(config, backbone)
    return FPH(config, backbone)


__all__ = [
    "BACKBONES",
    "Backbone",
    "BackboneWeightsError",
    "FPH",
    "FPHConfig",
    "HashOutput",
    "ITQHash",
    "build_backbone",
    "build_model",
    "fit_itq",
]
