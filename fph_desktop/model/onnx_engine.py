"""Exporting the ONNX Runtime engine's graph: the same trained network, run on the CPU about twice
as fast as eager PyTorch (benchmarks/engines.py). Running a graph needs no PyTorch (:mod:`.graph`).

The graph is never written by hand: it is exported from the model loaded from the weights file
(which stays the single source of truth), on first use, and cached beside it (``NAME.fph.onnx``; in
the app's cache folder when that folder is not writable). Its metadata holds the model's info and
fingerprint and the weights file's digest; a graph whose fingerprint is not the model's (the
weights file was retrained or replaced) is refused and exported again. A fresh export is verified
against PyTorch on a fixed batch before it is written; when it disagrees, or ONNX Runtime is not
installed, encoding stays on PyTorch and the encoder says why.
"""

from __future__ import annotations

import io
import os
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..fileio import atomic_write
from .graph import (
    FINGERPRINT_KEY,
    FORMAT_KEY,
    GAP_KEY,
    GRAPH_FORMAT,
    INFO_KEY,
    OPSET,
    SOURCE_KEY,
    OnnxSession,
    StaleGraphError,
    file_digest,
    graph_path,
)
from .info import WeightsInfo

# Largest |u_onnx - u_torch| accepted on the verification batch (float32 round-off is ~1e-6).
VERIFY_TOLERANCE = 1e-4


def _trace(module: nn.Module, image_size: int, outputs: list[str]) -> bytes:
    """``module`` (pixels (N, 3, S, S) in) traced to ONNX bytes with a dynamic batch: the one export
    every graph of the project goes through."""
    buffer = io.BytesIO()
    with torch.inference_mode(False), torch.no_grad(), warnings.catch_warnings():
        # The tracer notes that shapes become constants: they are (the input size is fixed per model).
        warnings.simplefilter("ignore")
        torch.onnx.export(
            module, (torch.zeros(2, 3, image_size, image_size),), buffer, input_names=["pixels"], output_names=outputs,
            dynamic_axes={"pixels": {0: "batch"}, **{k: {0: "batch"} for k in outputs}}, opset_version=OPSET, dynamo=False,
        )  # fmt: skip
    return buffer.getvalue()


class _CodeGraph(nn.Module):
    """What the graph computes: normalised pixels (N, 3, H, W) to tanh outputs u (N, q)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.model(pixels).u


def export_graph(
    model: nn.Module, info: WeightsInfo, image_size: int, path: Path, source_digest: str | None = None, threads: int | None = None
) -> OnnxSession:
    """Export ``model`` (eval mode, CPU) with a dynamic batch, verify it against PyTorch, and only then
    write it to ``path`` with its metadata; returns the session. Raises when the graph disagrees."""
    import onnx

    proto = onnx.load_from_string(_trace(_CodeGraph(model).eval().cpu(), image_size, ["u"]))
    metadata = {FORMAT_KEY: GRAPH_FORMAT, FINGERPRINT_KEY: info.fingerprint, INFO_KEY: info.to_json()}
    if source_digest:
        metadata[SOURCE_KEY] = source_digest
    for key, value in metadata.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    gap = verify(OnnxSession(proto.SerializeToString(), info.fingerprint, threads), model, image_size)
    if gap > VERIFY_TOLERANCE:
        raise RuntimeError(f"the exported graph differs from PyTorch by {gap:.2g}")
    entry = proto.metadata_props.add()
    entry.key, entry.value = GAP_KEY, f"{gap:.3g}"
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(path) as handle:
        handle.write(proto.SerializeToString())
    return OnnxSession(path, info.fingerprint, threads)


def verify(session: OnnxSession, model: nn.Module, image_size: int) -> float:
    """Largest difference between the graph's and PyTorch's outputs on a fixed batch."""
    generator = torch.Generator().manual_seed(0)
    batch = torch.randn(3, 3, image_size, image_size, generator=generator)
    with torch.inference_mode():
        reference = model.eval().cpu()(batch).u.float().numpy()
    return float(np.abs(session.run(batch.numpy()) - reference).max())


def load_or_export(
    model: nn.Module, info: WeightsInfo, weights_path: str | Path | None = None, threads: int | None = None
) -> OnnxSession:
    """The verified session for this model: the cached graph, or a fresh export (also when the cached
    one is stale, damaged, of an older format, or from another weights file). Raises when ONNX
    Runtime is missing or the export does not agree with PyTorch."""
    image_size = info.config.image_size
    digest = file_digest(weights_path) if weights_path is not None else None
    path = graph_path(info.fingerprint, weights_path, digest)
    if path.is_file():
        try:
            session = OnnxSession(path, info.fingerprint, threads)
            fresh = session.current_format and session.metadata.get(SOURCE_KEY) == digest
            if fresh and verify(session, model, image_size) <= VERIFY_TOLERANCE:
                return session
        except StaleGraphError:
            pass
        try:
            os.remove(path)
        except OSError:
            pass
    return export_graph(model, info, image_size, path, digest, threads)


class _DescriptorModule(nn.Module):
    """Pixels to the pooled, normalised C5 that ITQ codes (:func:`~.itq.itq_descriptor`)."""

    def __init__(self, backbone: nn.Module) -> None:
        super().__init__()
        self.backbone = backbone

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        from .itq import itq_descriptor

        return itq_descriptor(self.backbone(pixels)["C5"])


def export_descriptor_graph(
    backbone_name: str, path: str | Path, image_size: int = 224, weights: str | Path | None = "imagenet"
) -> Path:
    """The descriptor graph of ``backbone_name`` with its ImageNet (shipped) weights, verified against
    PyTorch, for fitting the default model where PyTorch is not installed (:mod:`.itq_graph`)."""
    import hashlib
    import json

    import onnx

    from .backbones import build_backbone
    from .itq_graph import BACKBONE_DIGEST_KEY, BACKBONE_KEY, DESCRIPTOR_FORMAT, OUTPUT, PREPROCESSING_KEY

    backbone = build_backbone(backbone_name, weights).eval().cpu()
    module = _DescriptorModule(backbone).eval()
    digest = hashlib.sha256()
    for key, tensor in sorted(backbone.state_dict().items()):
        digest.update(key.encode())
        digest.update(tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    proto = onnx.load_from_string(_trace(module, image_size, [OUTPUT]))
    metadata = {
        FORMAT_KEY: DESCRIPTOR_FORMAT,
        BACKBONE_KEY: backbone_name,
        PREPROCESSING_KEY: json.dumps(backbone.preprocessing.with_size(image_size).to_dict()),
        BACKBONE_DIGEST_KEY: digest.hexdigest()[:32],
    }
    for key, value in metadata.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    batch = torch.randn(3, 3, image_size, image_size, generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        reference = module(batch).numpy()
    gap = float(np.abs(OnnxSession(proto.SerializeToString(), None).run(batch.numpy()) - reference).max())
    if gap > VERIFY_TOLERANCE:
        raise RuntimeError(f"the exported descriptor graph differs from PyTorch by {gap:.2g}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(path) as handle:
        handle.write(proto.SerializeToString())
    return path


class _StatisticsModule(nn.Module):
    """Pixels to the fast mode's pooled statistics (:func:`~.fph.pooled_statistics`), in ``keys`` order."""

    def __init__(self, backbone: nn.Module, config, keys: list[str]) -> None:
        super().__init__()
        self.backbone, self.config, self.keys = backbone, config, keys

    def forward(self, pixels: torch.Tensor) -> tuple[torch.Tensor, ...]:
        from .fph import pooled_statistics

        stats = pooled_statistics(self.config, self.backbone(pixels))
        return tuple(stats[key] for key in self.keys)


class StatisticsGraph:
    """The fast mode's one-off feature pass on ONNX Runtime: the backbone and the pooled statistics
    as one graph, verified against PyTorch (relative error 1e-4; they are stored as fp16)."""

    def __init__(self, backbone: nn.Module, config, keys: list[str], image_size: int, path: Path) -> None:
        module = _StatisticsModule(backbone.eval().cpu(), config, list(keys)).eval()
        self.keys = list(keys)
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_write(path) as handle:
            handle.write(_trace(module, image_size, self.keys))
        self.session = OnnxSession(path, None)
        batch = torch.randn(3, 3, image_size, image_size, generator=torch.Generator().manual_seed(0))
        with torch.inference_mode():
            reference = module(batch)
        for key, ours, theirs in zip(self.keys, self.run(batch.numpy()), reference, strict=True):
            scale = max(1.0, float(theirs.abs().max()))
            if float(np.abs(ours - theirs.numpy()).max()) > 1e-4 * scale:
                raise RuntimeError(f"the exported statistics graph differs from PyTorch at {key}")

    def run(self, pixels: np.ndarray) -> list[np.ndarray]:
        return self.session.session.run(self.keys, {"pixels": np.ascontiguousarray(pixels, dtype=np.float32)})
