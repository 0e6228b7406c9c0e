"""The one typed config of a hashing model. Every reading of the paper we had to guess is a field
here, so a guess that turns out wrong, or an ablation, is a one-line change, never a copy of the model."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields

from ..errors import ConfigError

FUSIONS = ("mean", "max", "learned")
STRUCTURES = ("spp", "grid", "global")
METHODS = ("fph", "itq")
# The backbones :mod:`.backbones` builds (named here too, so listing them needs no PyTorch).
BACKBONE_NAMES = ("resnet18", "resnet50", "efficientnet_lite0")


STAGES = ("C2", "C3", "C4", "C5")


def _opt(default, help: str, **cli):
    """A field with its help and command-line details (``choices``, ``minimum``, ``maximum``, ``flag``,
    ``metavar``; ``cli=False`` hides it), from which ``fph-desktop train`` generates its flags."""
    if isinstance(default, (dict, list)):
        return field(default_factory=lambda: type(default)(default), metadata={"help": help, **cli})
    return field(default=default, metadata={"help": help, **cli})


@dataclass
class FPHConfig:
    method: str = _opt(
        "fph", "fph: train the pyramids and heads on labels; itq: pretrained backbone + unsupervised ITQ codes", choices=METHODS
    )
    # The best measured configuration that works offline (benchmarks/quality.py): Lite0's weights ship with the app.
    backbone: str = _opt(
        "efficientnet_lite0",
        "the backbone network (EfficientNet-Lite0's weights ship with the app; the others' download once)",
        choices=BACKBONE_NAMES,
    )
    code_bits: int = _opt(48, "code length in bits, 8..256 in multiples of 8", flag="bits", minimum=8, maximum=256)
    image_size: int = _opt(224, "input side in pixels", minimum=32, maximum=1024)
    # Vertical pyramid: FPN top-down path over high stages, each level globally pooled. On a frozen
    # backbone the lower levels' pooled means only overfit (CUB-200 validation protocol, 48 bits:
    # C3-C5 0.491 vs C5 alone 0.513), so by default the pyramid is its top level alone.
    use_vertical: bool = _opt(True, "the vertical pyramid (semantics)", flag="vertical")
    vertical_levels: tuple[str, ...] = _opt(("C5",), "stages of the vertical pyramid", choices=STAGES, metavar="Cn")
    vertical_width: int = _opt(256, "channels of the vertical pyramid's levels", minimum=1)
    vertical_smoothing: bool = _opt(False, "the 3x3 conv after each merge (legacy reading only: see pool_first)")
    # Horizontal pyramid: low stages aligned on one grid, merged by consensus fusion, pooled with structure.
    # Off by default: on a frozen backbone every reading we measured costs mAP (benchmarks/README.md's
    # ablation table); it is the paper's idea and one flag away (--horizontal / the wizard's variant).
    use_horizontal: bool = _opt(
        False,
        "the horizontal pyramid over the low layers (the paper's; off by default: on a "
        "frozen backbone it costs mAP, see benchmarks/README.md)",
        flag="horizontal",
    )
    horizontal_levels: tuple[str, ...] = _opt(
        ("C2", "C3", "C4"), "low stages merged by the horizontal pyramid", choices=STAGES, metavar="Cn"
    )
    horizontal_width: int = _opt(128, "channels of the horizontal pyramid", minimum=1)
    horizontal_grid: str = _opt("C3", "the stage whose resolution every low layer is resampled to", choices=STAGES)
    fusion: str = _opt("mean", "consensus fusion of the low layers", choices=FUSIONS)
    structure: str = _opt(
        "spp",
        "spatial structure of the horizontal pyramid: spatial pyramid pooling, a fixed grid, or global pooling (an ablation)",
        choices=STRUCTURES,
    )
    spp_bins: tuple[int, ...] = _opt((1, 2, 4), "bins per side of each spatial-pyramid level", minimum=1)
    grid_size: int = _opt(4, "cells per side for --structure grid", minimum=1)
    # Hash heads: final head over [vertical; horizontal], auxiliary heads on each alone (training only).
    aux_heads: bool = _opt(True, "auxiliary hash heads on each pyramid alone (training only)")
    head_hidden: int = _opt(1024, "hash head's hidden width (0: a linear head u = tanh(Wx))", minimum=0)
    head_dropout: float = _opt(0.3, "dropout before the hash head's last layer", minimum=0.0, maximum=0.9)
    # Pool first: everything linear between a stage map and its pooling (1x1 convs, BN at inference,
    # resampling, upsample-add, mean fusion) is applied to pooled statistics instead of full maps, and
    # the horizontal pyramid's ReLU sits after its structured pooling. The same numbers at a fraction
    # of the cost, and the fast mode caches a few KB per photo (several augmented views) instead of
    # full stage maps. Files written before this field existed load with False (the old reading).
    pool_first: bool = _opt(True, "apply the linear layers to pooled statistics (the fast reading; see docs/method.md)")
    extra: dict = _opt({}, "free-form notes (e.g. ITQ fit details); never read by the model", cli=False)

    def __post_init__(self) -> None:
        self.vertical_levels = tuple(self.vertical_levels)
        self.horizontal_levels = tuple(self.horizontal_levels)
        self.spp_bins = tuple(self.spp_bins)
        self.validate()

    def validate(self) -> None:
        if self.method not in METHODS:
            raise ConfigError(f"method must be one of {METHODS}, not {self.method!r}")
        if not (8 <= self.code_bits <= 256 and self.code_bits % 8 == 0):
            raise ConfigError(f"code length must be 8..256 bits in multiples of 8, not {self.code_bits}")
        if self.fusion not in FUSIONS:
            raise ConfigError(f"fusion must be one of {FUSIONS}, not {self.fusion!r}")
        if self.structure not in STRUCTURES:
            raise ConfigError(f"structure must be one of {STRUCTURES}, not {self.structure!r}")
        if self.method == "fph" and not (self.use_vertical or self.use_horizontal):
            raise ConfigError("FPH needs the vertical pyramid, the horizontal pyramid or both")
        if self.pool_first and self.vertical_smoothing:
            raise ConfigError("the pooled-first reading has no 3x3 smoothing in the vertical pyramid (pool_first=False has it)")
        if self.use_horizontal and self.horizontal_grid not in self.horizontal_levels:
            raise ConfigError(f"horizontal grid {self.horizontal_grid} must be one of {self.horizontal_levels}")
        for f in fields(self):
            low, high = f.metadata.get("minimum"), f.metadata.get("maximum")
            values = getattr(self, f.name)
            for value in values if isinstance(values, tuple) else (values,):
                if low is not None and value < low or high is not None and value > high:
                    bounds = f"at least {low}" if high is None else f"between {low} and {high}"
                    raise ConfigError(f"{f.metadata.get('flag', f.name).replace('_', '-')} must be {bounds}, not {value}")
            allowed = f.metadata.get("choices")
            if allowed and f.type.startswith("tuple") and not set(values) <= set(allowed):
                raise ConfigError(f"{f.name.replace('_', '-')} must be among {allowed}, not {values}")

    @property
    def code_bytes(self) -> int:
        return self.code_bits // 8

    def to_dict(self) -> dict:
        data = asdict(self)
        for key in ("vertical_levels", "horizontal_levels", "spp_bins"):
            data[key] = list(data[key])
        return data

    @classmethod
    def from_dict(cls, data: dict) -> FPHConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"unknown config fields {unknown}")
        data = dict(data)
        # Saved before these defaults changed: a saved config always held every field of its day,
        # so a missing one means the old reading's value, not today's default.
        for name, old in LEGACY_DEFAULTS.items():
            data.setdefault(name, old)
        return cls(**data)


# Fields added or whose defaults changed since format 1's first files, with the value those files meant.
LEGACY_DEFAULTS = {"pool_first": False}
