"""The one typed config of a hashing model. Every reading of the paper we had to guess is a field
here, so a guess that turns out wrong, or an ablation, is a one-line change, never a copy of the model."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields

FUSIONS = ("mean", "max", "learned")
STRUCTURES = ("spp", "grid", "global")
METHODS = ("fph", "itq")


@dataclass
class FPHConfig:
    method: str = "fph"  # "fph" (trained pyramids and heads) or "itq" (pretrained backbone + ITQ)
    # The best measured configuration that works offline (benchmarks/quality.py): Lite0's weights ship with the app.
    backbone: str = "efficientnet_lite0"
    code_bits: int = 48
    image_size: int = 224
    # Vertical pyramid: FPN top-down path over high stages, each level globally pooled. On a frozen
    # backbone the lower levels' pooled means only overfit (CUB-200 validation protocol, 48 bits:
    # C3-C5 0.491 vs C5 alone 0.513), so by default the pyramid is its top level alone.
    use_vertical: bool = True
    vertical_levels: tuple[str, ...] = ("C5",)
    vertical_width: int = 256
    vertical_smoothing: bool = False  # the 3x3 conv after each merge (legacy reading only: see pool_first)
    # Horizontal pyramid: low stages aligned on one grid, merged by consensus fusion, pooled with structure.
    # Off by default: on a frozen backbone every reading we measured costs mAP (benchmarks/README.md's
    # ablation table); it is the paper's idea and one flag away (--horizontal / the wizard's variant).
    use_horizontal: bool = False
    horizontal_levels: tuple[str, ...] = ("C2", "C3", "C4")
    horizontal_width: int = 128
    horizontal_grid: str = "C3"  # the stage whose resolution every low layer is resampled to
    fusion: str = "mean"
    structure: str = "spp"  # spatial pyramid pooling; "grid" = fixed SxS; "global" = ablation without structure
    spp_bins: tuple[int, ...] = (1, 2, 4)
    grid_size: int = 4
    # Hash heads: final head over [vertical; horizontal], auxiliary heads on each alone (training only).
    aux_heads: bool = True
    head_hidden: int = 1024  # 0 = linear head u = tanh(Wx); >0 = one hidden layer of that width
    head_dropout: float = 0.3
    # Pool first: everything linear between a stage map and its pooling (1x1 convs, BN at inference,
    # resampling, upsample-add, mean fusion) is applied to pooled statistics instead of full maps, and
    # the horizontal pyramid's ReLU sits after its structured pooling. The same numbers at a fraction
    # of the cost, and the fast mode caches a few KB per photo (several augmented views) instead of
    # full stage maps. Files written before this field existed load with False (the old reading).
    pool_first: bool = True
    extra: dict = field(default_factory=dict)  # free-form notes (e.g. ITQ fit details); never read by the model

    def __post_init__(self) -> None:
        self.vertical_levels = tuple(self.vertical_levels)
        self.horizontal_levels = tuple(self.horizontal_levels)
        self.spp_bins = tuple(self.spp_bins)
        self.validate()

    def validate(self) -> None:
        if self.method not in METHODS:
            raise ValueError(f"method must be one of {METHODS}, not {self.method!r}")
        if not (8 <= self.code_bits <= 256 and self.code_bits % 8 == 0):
            raise ValueError(f"code length must be 8..256 bits in multiples of 8, not {self.code_bits}")
        if self.fusion not in FUSIONS:
            raise ValueError(f"fusion must be one of {FUSIONS}, not {self.fusion!r}")
        if self.structure not in STRUCTURES:
            raise ValueError(f"structure must be one of {STRUCTURES}, not {self.structure!r}")
        if self.method == "fph" and not (self.use_vertical or self.use_horizontal):
            raise ValueError("FPH needs the vertical pyramid, the horizontal pyramid or both")
        if self.pool_first and self.vertical_smoothing:
            raise ValueError("the pooled-first reading has no 3x3 smoothing in the vertical pyramid (pool_first=False has it)")
        if self.use_horizontal and self.horizontal_grid not in self.horizontal_levels:
            raise ValueError(f"horizontal grid {self.horizontal_grid} must be one of {self.horizontal_levels}")

    @property
    def code_bytes(self) -> int:
        return self.code_bits // 8

    def to_dict(self) -> dict:
        data = asdict(self)
        for key in ("vertical_levels", "horizontal_levels", "spp_bins"):
            data[key] = list(data[key])
        return data

    @classmethod
    def from_dict(cls, data: dict) -> "FPHConfig":
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown config fields {unknown}")
        data = dict(data)
        # Saved before these defaults changed: a saved config always held every field of its day,
        # so a missing one means the old reading's value, not today's default.
        for name, old in LEGACY_DEFAULTS.items():
            data.setdefault(name, old)
        return cls(**data)


# Fields added or whose defaults changed since format 1's first files, with the value those files meant.
LEGACY_DEFAULTS = {"pool_first": False}
