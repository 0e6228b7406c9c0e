"""A loaded hashing model ready to turn photos into packed binary codes, and to explain a match.

Codes are ``sign(u)`` with 0 mapped to +1, packed eight bits a byte (``np.packbits``, big-endian
within a byte): q/8 bytes a code, never floats. This is the single place that rule lives.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from ..codes import pack_codes as _pack_array
from ..codes import unpack_codes
from ..device import select_device
from ..errors import BadArgumentError, BadFileError, MissingDependencyError
from .fph import resample_to
from .graph import CodeMaker, onnxruntime_version
from .info import WeightsInfo
from .weights import load_weights

__all__ = ["ENGINES", "Encoder", "Explanation", "activation_heatmap", "pack_codes", "unpack_codes"]


def pack_codes(u: torch.Tensor | np.ndarray) -> np.ndarray:
    """:func:`fph_desktop.codes.pack_codes`, also for tensors on any device."""
    if isinstance(u, torch.Tensor):
        u = u.detach().float().cpu().numpy()
    return _pack_array(u)


@dataclass
class Explanation:
    """Why a photo got its code: heat maps in 0..1 over the centre crop the model saw."""

    packed: np.ndarray  # (q/8,) uint8
    real: np.ndarray  # (q,) float32 tanh outputs
    fused_heatmap: np.ndarray  # (H, W) float32, the consensus of the low layers
    layer_heatmaps: dict[str, np.ndarray]  # per low layer, same size
    crop_box: tuple[float, float, float, float]  # the crop in the photo's pixel coordinates
    # Per low layer, and "fused" where the model has a trained fused map: (C, h, w) float32 features on
    # the horizontal pyramid's common grid, for :mod:`~fph_desktop.model.correspondence`.
    grid_features: dict[str, np.ndarray] = field(default_factory=dict)


def activation_heatmap(feature_map: torch.Tensor, size: tuple[int, int]) -> np.ndarray:
    """Per-pixel L2 norm over channels of one (C, H, W) map, upsampled to ``size``, scaled to 0..1."""
    energy = feature_map.float().norm(dim=0, keepdim=True)[None]
    energy = F.interpolate(energy, size=size, mode="bilinear", align_corners=False)[0, 0]
    low, high = energy.min(), energy.max()
    return ((energy - low) / (high - low).clamp_min(1e-8)).cpu().numpy().astype(np.float32)


ENGINES = ("auto", "torch", "onnx")


class Encoder(CodeMaker):
    """A weights file made ready to encode: PyTorch (the reference; GPUs; the overlays) or, on the CPU,
    ONNX Runtime over a graph exported from the same model (``engine="auto"`` prefers it there)."""

    def __init__(
        self,
        model: nn.Module,
        info: WeightsInfo,
        device: str | torch.device | None = None,
        engine: str = "auto",
        source: str | Path | None = None,
    ) -> None:
        self.device = device if isinstance(device, torch.device) else select_device(device)
        self.info = info
        self._onnx = None
        self.engine, self.engine_note = "torch", ""
        self.source = Path(source) if source is not None else None
        self._choose_engine(model.eval().cpu(), engine, source)
        self.model = model.eval().to(self.device)
        # channels_last: faster convolutions on CUDA, and on x86 CPUs too (oneDNN; about 1.3x here).
        self.channels_last = self.device.type in ("cuda", "cpu")
        if self.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)

    @classmethod
    def load(cls, path: str | Path, device: str | torch.device | None = None, engine: str = "auto") -> Encoder:
        model, info = load_weights(path)
        return cls(model, info, device, engine, source=path)

    def _choose_engine(self, model: nn.Module, engine: str, source: str | Path | None) -> None:
        from . import onnx_engine

        if engine not in ENGINES:
            raise BadArgumentError(f"engine must be one of {ENGINES}, not {engine!r}")
        if engine == "torch":
            return
        if self.device.type != "cpu":
            if engine == "onnx":
                raise BadArgumentError(f"the onnx engine runs on the CPU, not {self.device}", hint="add --device cpu")
            self.engine_note = f"on {self.device}"
            return
        version = onnxruntime_version()
        if version is None:
            if engine == "onnx":
                raise MissingDependencyError("onnxruntime", "the onnx engine", "onnxruntime onnx", "use --engine torch")
            self.engine_note = "ONNX Runtime is not installed"
            return
        try:
            self._onnx = onnx_engine.load_or_export(model, self.info, source)
        except Exception as exc:  # noqa: BLE001 - an export can fail in many ways; PyTorch, the reference, still runs
            if engine == "onnx":
                raise BadFileError(f"could not be run by ONNX Runtime ({exc})", hint="use --engine torch") from None
            self.engine_note = f"the ONNX export failed ({exc.__class__.__name__}: {str(exc)[:120]})"
            return
        self.engine, self.engine_note = "onnx", f"ONNX Runtime {version}, verified against PyTorch"

    @property
    def graph_path(self) -> Path | None:
        """The exported graph the ONNX Runtime engine runs (``None`` on PyTorch)."""
        return self._onnx.path if self._onnx is not None else None

    def to_tensor(self, image: Image.Image) -> torch.Tensor:
        return self.preprocessing.to_tensor(image)

    def _prepare(self, batch: torch.Tensor) -> torch.Tensor:
        batch = batch.to(self.device, non_blocking=True)
        if self.channels_last:
            batch = batch.contiguous(memory_format=torch.channels_last)
        return batch

    @torch.inference_mode()
    def encode_batch(self, batch: torch.Tensor | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Normalised pixels (N, 3, H, W) to ``(packed codes (N, q/8) uint8, tanh outputs (N, q) float32)``."""
        if self._onnx is not None:
            u = self._onnx.run(batch.numpy() if isinstance(batch, torch.Tensor) else batch)
        else:
            batch = batch if isinstance(batch, torch.Tensor) else torch.from_numpy(np.asarray(batch, dtype=np.float32))
            u = self.model(self._prepare(batch)).u.float().cpu().numpy()
        return pack_codes(u), u

    @torch.inference_mode()
    def explain(self, image: Image.Image) -> Explanation:
        """One forward pass giving the code and the low-layer maps behind it (no second pass). Always
        PyTorch: the maps are intermediate tensors the exported graph does not return."""
        batch = self._prepare(self.to_tensor(image)[None])
        out = self.model(batch, return_maps=True)
        size = tuple(batch.shape[-2:])
        layers = {name: activation_heatmap(m[0], size) for name, m in (out.layer_maps or {}).items()}
        fused = activation_heatmap(out.fused_map[0], size)
        u = out.u.float().cpu().numpy()
        grid = tuple(out.fused_map.shape[-2:])
        features = {name: resample_to(m.float(), grid)[0].cpu().numpy() for name, m in (out.layer_maps or {}).items()}
        if out.fused_map.shape[1] > 1:  # a trained fusion (not only the layers' energy)
            features["fused"] = out.fused_map[0].float().cpu().numpy()
        crop_box = self.preprocessing.crop_box(*image.size)
        return Explanation(pack_codes(u)[0], u[0], fused, layers, crop_box, features)
