"""Feature Pyramid Hashing (Yang et al., ICMR 2019) as plain ``nn.Module``s, in the reading of
``docs/method.md``: a vertical FPN pyramid over high stages for semantics, a horizontal pyramid that
aligns low stages on one grid, merges them by consensus fusion and pools with spatial structure for
subtle detail, and q-bit tanh hash heads (sign at retrieval)."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from .backbones import Backbone
from .config import FPHConfig


@dataclass
class HashOutput:
    """What one forward pass gives. ``u`` is the final head's tanh output; its sign is the code.

    ``layer_maps`` (each low layer at its own resolution) and ``fused_map`` (the consensus on the
    common grid) are filled only when asked for with ``return_maps=True``: they drive the GUI's overlays.
    """

    u: torch.Tensor
    aux: dict[str, torch.Tensor] = field(default_factory=dict)
    layer_maps: dict[str, torch.Tensor] | None = None
    fused_map: torch.Tensor | None = None


def resample_to(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Average-pool down (keeps every pixel's evidence) or bilinear up to ``size``."""
    height, width = x.shape[-2:]
    if (height, width) == tuple(size):
        return x
    if height >= size[0] and width >= size[1]:
        if height % size[0] == 0 and width % size[1] == 0 and height // size[0] == width // size[1]:
            return F.avg_pool2d(x, height // size[0])  # same result, a much faster kernel
        return F.adaptive_avg_pool2d(x, size)
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False)


def bin_means(x: torch.Tensor, bins: int) -> torch.Tensor:
    """``adaptive_avg_pool2d(x, bins)``; as a plain average pool when the bins tile the map exactly
    (the same numbers): that form also exports to ONNX, whose exporter cannot size adaptive pooling
    behind a backbone with input-dependent padding (sizes are plain ints: constants in a trace)."""
    height, width = int(x.shape[-2]), int(x.shape[-1])
    if height % bins == 0 and width % bins == 0:
        return F.avg_pool2d(x, (height // bins, width // bins))
    return F.adaptive_avg_pool2d(x, bins)


def conv_then_global_mean(x: torch.Tensor, conv: nn.Conv2d) -> torch.Tensor:
    """``conv(x).mean((2, 3))`` for a stride-1 conv with "same" padding, computed exactly without
    the full-resolution output.

    The mean of a linear filter's output is the filter applied to the means of the input windows
    each tap sees, so nine window sums replace a 3x3 conv over every pixel: for the vertical pyramid,
    whose smoothed levels are only ever pooled, this is 100x cheaper and gives the same numbers.
    """
    kh, kw = conv.kernel_size
    ph, pw = conv.padding
    height, width = x.shape[-2:]
    # rows[i, y] = 1 where tap row i reads input row y for some output pixel (likewise cols): the
    # window sums are then two small matmuls, cheap in both directions of autograd.
    y, xs = torch.arange(height, device=x.device), torch.arange(width, device=x.device)
    rows = torch.stack([((y >= i - ph) & (y < height + i - ph)) for i in range(kh)]).to(x.dtype)
    cols = torch.stack([((xs >= j - pw) & (xs < width + j - pw)) for j in range(kw)]).to(x.dtype)
    # One large matmul folds the columns (a 2-D right operand: no batched tiny matmuls); the rows
    # are then folded on the small (N, C, H, kw) result.
    col_sums = x @ cols.t()  # (N, C, H, kw)
    sums = torch.stack([(col_sums * rows[i].view(-1, 1)).sum(dim=2) for i in range(kh)], dim=2).flatten(2)
    out = torch.einsum("nck,ock->no", sums, conv.weight.flatten(2)) / (height * width)
    return out if conv.bias is None else out + conv.bias


class VerticalPyramid(nn.Module):
    """FPN top-down path: 1x1 laterals to ``width``, upsample-and-add from the top, 3x3 smoothing,
    then global average pooling of every level, concatenated."""

    def __init__(self, channels: dict[str, int], levels: tuple[str, ...], width: int, smoothing: bool) -> None:
        super().__init__()
        self.levels = levels
        self.lateral = nn.ModuleDict({lvl: nn.Conv2d(channels[lvl], width, 1) for lvl in levels})
        self.smooth = nn.ModuleDict({lvl: nn.Conv2d(width, width, 3, padding=1) for lvl in levels}) if smoothing else None
        self.out_dim = width * len(levels)

    def forward_pooled(self, stage_means: dict[str, torch.Tensor]) -> torch.Tensor:
        """The same pyramid from the stages' global means (pooled-first reading, no smoothing):
        nearest upsampling by whole factors keeps a map's mean, so each level's mean is the sum of
        the laterals of its own and every higher stage's mean."""
        pooled = []
        top = None
        for lvl in reversed(self.levels):
            conv = self.lateral[lvl]
            lateral = F.linear(stage_means[lvl], conv.weight.flatten(1), conv.bias)
            top = lateral if top is None else lateral + top
            pooled.append(top)
        return torch.cat(pooled[::-1], dim=1)

    def forward(self, stages: dict[str, torch.Tensor]) -> torch.Tensor:
        pooled = []
        top = None
        for lvl in reversed(self.levels):
            lateral = self.lateral[lvl](stages[lvl])
            top = lateral if top is None else lateral + F.interpolate(top, size=lateral.shape[-2:], mode="nearest")
            if self.smooth is None:
                pooled.append(top.mean(dim=(2, 3)))
            else:
                pooled.append(conv_then_global_mean(top, self.smooth[lvl]))
        return torch.cat(pooled[::-1], dim=1)


class ConsensusFusion(nn.Module):
    """Merge aligned low-layer maps: element-wise mean (default), max (any layer's strong response
    survives) or a learned softmax-weighted mean."""

    def __init__(self, mode: str, num_layers: int) -> None:
        super().__init__()
        self.mode = mode
        self.logits = nn.Parameter(torch.zeros(num_layers)) if mode == "learned" else None

    def forward(self, maps: list[torch.Tensor]) -> torch.Tensor:
        stacked = torch.stack(maps, dim=0)
        if self.mode == "mean":
            return stacked.mean(dim=0)
        if self.mode == "max":
            return stacked.amax(dim=0)
        weights = torch.softmax(self.logits, dim=0).to(stacked.dtype).view(-1, 1, 1, 1, 1)
        return (stacked * weights).sum(dim=0)


class StructuredPooling(nn.Module):
    """Keep spatial structure: spatial pyramid pooling (1x1 + 2x2 + 4x4 bins), a fixed SxS grid,
    or (ablation) plain global pooling."""

    def __init__(self, structure: str, bins: tuple[int, ...], grid_size: int) -> None:
        super().__init__()
        self.bins = {"spp": bins, "grid": (grid_size,), "global": (1,)}[structure]
        self.cells = sum(b * b for b in self.bins)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([bin_means(x, b).flatten(1) for b in self.bins], dim=1)

    def bin_means(self, x: torch.Tensor) -> torch.Tensor:
        """(N, C, H, W) -> (N, C, cells, 1): the bins' means, the layout :meth:`forward` flattens."""
        return torch.cat([bin_means(x, b).flatten(2) for b in self.bins], dim=2).unsqueeze(-1)


class HorizontalPyramid(nn.Module):
    """Low stages through 1x1 conv + BN (+ ReLU) to ``horizontal_width``, aligned on the grid of
    ``horizontal_grid``, merged by consensus fusion, pooled with structure.

    Pooled first (``config.pool_first``), the conv and BN act on each stage's cell means (the
    resampled map's structured-pooling bins, as a (N, C, cells, 1) map: BN's statistics are over
    photos and cells) and the ReLU follows the fusion of the cells, so that no full-resolution map is
    needed to train or to encode. The same layers applied per pixel give the maps the app overlays.
    """

    def __init__(self, channels: dict[str, int], config: FPHConfig) -> None:
        super().__init__()
        self.levels = config.horizontal_levels
        self.grid_level = config.horizontal_grid
        self.pool_first = config.pool_first
        width = config.horizontal_width

        def reduce(lvl: str) -> nn.Sequential:
            layers = [nn.Conv2d(channels[lvl], width, 1, bias=False), nn.BatchNorm2d(width)]
            return nn.Sequential(*layers) if self.pool_first else nn.Sequential(*layers, nn.ReLU(inplace=True))

        self.reduce = nn.ModuleDict({lvl: reduce(lvl) for lvl in self.levels})
        self.fusion = ConsensusFusion(config.fusion, len(self.levels))
        self.pool = StructuredPooling(config.structure, config.spp_bins, config.grid_size)
        self.out_dim = width * self.pool.cells

    def forward_pooled(self, cells: dict[str, torch.Tensor]) -> torch.Tensor:
        fused = self.fusion([self.reduce[lvl](cells[lvl]) for lvl in self.levels])
        return F.relu(fused).flatten(1)

    def maps(self, stages: dict[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        """The per-layer maps (each at its own resolution) and the fused map on the common grid."""
        layer_maps = {lvl: self.reduce[lvl](stages[lvl]) for lvl in self.levels}
        size = layer_maps[self.grid_level].shape[-2:]
        fused = self.fusion([resample_to(layer_maps[lvl], size) for lvl in self.levels])
        if self.pool_first:
            layer_maps = {lvl: F.relu(m) for lvl, m in layer_maps.items()}
            fused = F.relu(fused)
        return layer_maps, fused

    def forward(self, stages: dict[str, torch.Tensor], return_maps: bool = False):
        """The old reading (ReLU before the pooling): the structured feature, and (when asked) the
        per-layer and fused maps. Pooled first, :func:`pooled_statistics` and :meth:`forward_pooled`
        take its place."""
        if self.pool_first:
            raise RuntimeError("a pooled-first horizontal pyramid runs through forward_pooled(pooled_statistics(...))")
        layer_maps, fused = self.maps(stages)
        feature = self.pool(fused)
        return feature, (layer_maps if return_maps else None), (fused if return_maps else None)


class HashHead(nn.Module):
    """``u = tanh(W x)`` over batch-normalised features (the pyramids' scales differ a lot);
    optionally one hidden layer first."""

    def __init__(self, in_dim: int, bits: int, hidden: int = 0, dropout: float = 0.0) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.BatchNorm1d(in_dim)]
        if hidden > 0:
            layers += [nn.Linear(in_dim, hidden), nn.BatchNorm1d(hidden), nn.ReLU(inplace=True)]
            in_dim = hidden
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
        layers.append(nn.Linear(in_dim, bits))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.net(x))


def pooled_statistics(config: FPHConfig, stages: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """What a pooled-first FPH needs of a photo: every stage's global mean (``mean:Cn``, (N, C)) and
    each horizontal level's structured-pooling cells on the common grid (``cells:Cn``, (N, C, cells, 1)).

    Parameter-free, so the fast mode caches it once per photo view; it depends on the config only
    through the horizontal levels, grid and structure (:func:`statistics_spec`), so every variant of
    one backbone (full, vertical-only, any fusion) shares a cache.
    """
    out = {f"mean:{name}": x.mean(dim=(2, 3)) for name, x in stages.items()}
    pool = StructuredPooling(config.structure, config.spp_bins, config.grid_size)
    size = stages[config.horizontal_grid].shape[-2:]
    for lvl in _cell_levels(config):
        out[f"cells:{lvl}"] = pool.bin_means(resample_to(stages[lvl], size))
    return out


def _cell_levels(config: FPHConfig) -> tuple[str, ...]:
    """The low stages C2..C4 always (so that variants choosing among them share one cache), plus any
    other stage the config's horizontal pyramid reads."""
    return tuple(dict.fromkeys(("C2", "C3", "C4", *config.horizontal_levels)))


def raw_low_layer_maps(stages: dict[str, torch.Tensor], config: FPHConfig) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    """For a model without a trained horizontal pyramid (vertical-only FPH, ITQ): each low stage as
    it is, and the mean of their energies (each normalised by its own mean) on the common grid, so
    the overlays still show where the low layers respond."""
    levels = tuple(s for s in config.horizontal_levels if s != "C5")
    size = stages[config.horizontal_grid].shape[-2:]
    energies = []
    for lvl in levels:
        energy = stages[lvl].float().norm(dim=1, keepdim=True)
        energies.append(resample_to(energy / energy.mean(dim=(2, 3), keepdim=True).clamp_min(1e-6), size))
    return {lvl: stages[lvl] for lvl in levels}, torch.stack(energies).mean(dim=0)


def statistics_spec(config: FPHConfig) -> dict:
    """What :func:`pooled_statistics` depends on besides the backbone and the pixels."""
    return {
        "horizontal_levels": list(_cell_levels(config)),
        "grid": config.horizontal_grid,
        "structure": config.structure,
        "bins": list(StructuredPooling(config.structure, config.spp_bins, config.grid_size).bins),
    }


class FPH(nn.Module):
    def __init__(self, config: FPHConfig, backbone: Backbone) -> None:
        super().__init__()
        self.config = config
        self.backbone = backbone
        q = config.code_bits
        parts = []
        self.vertical = self.horizontal = None
        if config.use_vertical:
            self.vertical = VerticalPyramid(
                backbone.channels, config.vertical_levels, config.vertical_width, config.vertical_smoothing
            )
            parts.append(self.vertical.out_dim)
        if config.use_horizontal:
            self.horizontal = HorizontalPyramid(backbone.channels, config)
            parts.append(self.horizontal.out_dim)
        self.head = HashHead(sum(parts), q, config.head_hidden, config.head_dropout)
        self.aux_heads = nn.ModuleDict()
        if config.aux_heads and len(parts) == 2:
            self.aux_heads["vertical"] = HashHead(parts[0], q, config.head_hidden, config.head_dropout)
            self.aux_heads["horizontal"] = HashHead(parts[1], q, config.head_hidden, config.head_dropout)

    @property
    def stages_needed(self) -> tuple[str, ...]:
        needed = set()
        if self.vertical is not None:
            needed |= set(self.config.vertical_levels)
        if self.horizontal is not None:
            needed |= set(self.config.horizontal_levels)
        return tuple(s for s in ("C2", "C3", "C4", "C5") if s in needed)

    def forward(self, inputs: torch.Tensor | dict[str, torch.Tensor], return_maps: bool = False) -> HashOutput:
        """``inputs``: images (N, 3, H, W), backbone stage maps already computed, or (the fast
        mode's) :func:`pooled_statistics`."""
        if isinstance(inputs, dict) and any(key.startswith("mean:") for key in inputs):
            return self.forward_pooled(inputs)
        stages = inputs if isinstance(inputs, dict) else self.backbone(inputs)
        return self.forward_stages(stages, return_maps)

    def forward_stages(self, stages: dict[str, torch.Tensor], return_maps: bool = False) -> HashOutput:
        """From backbone stage maps on (the legacy fast mode trained this on cached stage maps)."""
        if self.config.pool_first:
            out = self.forward_pooled(pooled_statistics(self.config, stages))
            if return_maps:
                if self.horizontal is not None:
                    out.layer_maps, out.fused_map = self.horizontal.maps(stages)
                else:  # no trained low-layer branch: the raw low stages' consensus, as for ITQ
                    out.layer_maps, out.fused_map = raw_low_layer_maps(stages, self.config)
            return out
        features = {}
        layer_maps = fused = None
        if self.vertical is not None:
            features["vertical"] = self.vertical(stages)
        if self.horizontal is not None:
            features["horizontal"], layer_maps, fused = self.horizontal(stages, return_maps)
        elif return_maps:
            layer_maps, fused = raw_low_layer_maps(stages, self.config)
        return self._heads(features, layer_maps, fused)

    def forward_pooled(self, stats: dict[str, torch.Tensor]) -> HashOutput:
        """From :func:`pooled_statistics` on: what the fast mode trains, on cached statistics."""
        features = {}
        if self.vertical is not None:
            features["vertical"] = self.vertical.forward_pooled({lvl: stats[f"mean:{lvl}"] for lvl in self.vertical.levels})
        if self.horizontal is not None:
            features["horizontal"] = self.horizontal.forward_pooled(
                {lvl: stats[f"cells:{lvl}"] for lvl in self.horizontal.levels}
            )
        return self._heads(features, None, None)

    def _heads(self, features: dict[str, torch.Tensor], layer_maps, fused) -> HashOutput:
        u = self.head(torch.cat(list(features.values()), dim=1))
        aux = {}
        if self.training:
            aux = {name: head(features[name]) for name, head in self.aux_heads.items()}
        return HashOutput(u=u, aux=aux, layer_maps=layer_maps, fused_map=fused)

    def new_parameters(self) -> list[nn.Parameter]:
        """Everything but the backbone: trained at the full learning rate."""
        backbone_ids = {id(p) for p in self.backbone.parameters()}
        return [p for p in self.parameters() if id(p) not in backbone_ids]
