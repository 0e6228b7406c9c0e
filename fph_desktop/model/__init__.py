"""Hashing models: backbones, FPH, ITQ, their config and weights files, and the engines that run
them. Knows nothing of Qt.

Names are imported lazily, so the torch-free parts (``config``, ``info``, ``preprocessing``,
``graph``: searching with an exported graph) can be used without loading PyTorch.
"""

from __future__ import annotations

from pathlib import Path

from ..lazy import lazy_exports

_EXPORTS = {
    "backbones": ("BACKBONES", "Backbone", "BackboneWeightsError", "build_backbone"),
    "config": ("FPHConfig",),
    "fph": ("FPH", "HashOutput"),
    "itq": ("ITQHash",),
    "itq_fit": ("fit_itq",),
}
__getattr__, __dir__, _names = lazy_exports(__name__, _EXPORTS, globals())
__all__ = sorted([*_names, "build_model"])


def build_model(config, backbone_weights: str | Path | None = "imagenet"):
    """A fresh model (an ``nn.Module``) for ``config``. ``backbone_weights`` as in
    :func:`build_backbone`; loading a weights file passes ``None`` because the file already holds
    the backbone."""
    from .backbones import build_backbone
    from .fph import FPH
    from .itq import ITQHash

    backbone = build_backbone(config.backbone, backbone_weights)
    if config.method == "itq":
        return ITQHash(config, backbone)
    return FPH(config, backbone)
