"""The ONNX Runtime engine: the same trained network, run on the CPU about twice as fast as eager
PyTorch (benchmarks/engines.py).

The graph is never written by hand: it is exported from the model loaded from the weights file
(which stays the single source of truth), on first use, and cached beside it (``NAME.fph.onnx``; in
the app's cache folder, by fingerprint, when that folder is not writable). The weights' fingerprint
is written into the graph's metadata, and a graph whose fingerprint is not the model's (the weights
file was retrained or replaced) is refused and exported again. A fresh export is verified
against PyTorch on a fixed batch before it is used; when it disagrees, or ONNX Runtime is not
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

from ..errors import BadFileError
from ..fileio import atomic_write

OPSET = 17
# Largest |u_onnx - u_torch| accepted on the verification batch (float32 round-off is ~1e-6).
VERIFY_TOLERANCE = 1e-4
FINGERPRINT_KEY = "fph_desktop.fingerprint"


class StaleGraphError(BadFileError):
    """A cached graph exported from another model (or damaged): never used, exported again."""


def onnxruntime_version() -> str | None:
    try:
        import onnxruntime
    except ImportError:
        return None
    return onnxruntime.__version__


def graph_path(fingerprint: str, weights_path: str | Path | None = None) -> Path:
    """Beside the weights file when its folder is writable, else in the cache folder by fingerprint."""
    if weights_path is not None:
        weights_path = Path(weights_path)
        if os.access(weights_path.parent, os.W_OK):
            return weights_path.with_name(weights_path.name + ".onnx")
    from .. import paths

    safe = "".join(c for c in fingerprint if c.isalnum())[:40]
    return paths.cache_dir() / "onnx" / f"{safe}-opset{OPSET}.onnx"


class _CodeGraph(nn.Module):
    """What the graph computes: normalised pixels (N, 3, H, W) to tanh outputs u (N, q)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.model(pixels).u


def export_graph(model: nn.Module, fingerprint: str, image_size: int, path: Path) -> Path:
    """Export ``model`` (eval mode, CPU) to ``path`` with a dynamic batch, fingerprint in its metadata."""
    import onnx

    graph = _CodeGraph(model).eval().cpu()
    example = torch.zeros(2, 3, image_size, image_size)
    buffer = io.BytesIO()
    with torch.inference_mode(False), torch.no_grad(), warnings.catch_warnings():
        # The tracer notes that shapes become constants: they are (the input size is fixed per model).
        warnings.simplefilter("ignore")
        torch.onnx.export(
            graph, (example,), buffer, input_names=["pixels"], output_names=["u"],
            dynamic_axes={"pixels": {0: "batch"}, "u": {0: "batch"}}, opset_version=OPSET, dynamo=False,
        )  # fmt: skip
    proto = onnx.load_from_string(buffer.getvalue())
    entry = proto.metadata_props.add()
    entry.key, entry.value = FINGERPRINT_KEY, fingerprint
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(path) as handle:
        handle.write(proto.SerializeToString())
    return path


class OnnxSession:
    """An ONNX Runtime session over one exported graph, refused unless its fingerprint matches."""

    def __init__(self, path: str | Path, fingerprint: str, threads: int | None = None) -> None:
        import onnxruntime as ort

        self.path = Path(path)
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads or torch.get_num_threads()
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        # No busy-waiting between runs: spinning threads starved PyTorch (an overlay's forward pass
        # took 0.5 s instead of 0.02 s once a session existed) and the photo-decoding threads.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.add_session_config_entry("session.inter_op.allow_spinning", "0")
        try:
            self.session = ort.InferenceSession(str(self.path), options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # noqa: BLE001 - ONNX Runtime raises its own types for a damaged file
            raise StaleGraphError(f"cannot be loaded by ONNX Runtime ({exc.__class__.__name__})", self.path) from None
        found = self.session.get_modelmeta().custom_metadata_map.get(FINGERPRINT_KEY)
        if found != fingerprint:
            raise StaleGraphError(f"was exported from model {found}, not {fingerprint}", self.path, "it is exported again")

    def run(self, pixels: np.ndarray) -> np.ndarray:
        return self.session.run(None, {"pixels": np.ascontiguousarray(pixels, dtype=np.float32)})[0]


def verify(session: OnnxSession, model: nn.Module, image_size: int) -> float:
    """Largest difference between the graph's and PyTorch's outputs on a fixed batch."""
    generator = torch.Generator().manual_seed(0)
    batch = torch.randn(3, 3, image_size, image_size, generator=generator)
    with torch.inference_mode():
        reference = model.eval().cpu()(batch).u.float().numpy()
    return float(np.abs(session.run(batch.numpy()) - reference).max())


def load_or_export(
    model: nn.Module, fingerprint: str, image_size: int, weights_path: str | Path | None = None, threads: int | None = None
) -> OnnxSession:
    """The verified session for this model: the cached graph, or a fresh export (also when the cached
    one is stale or damaged). Raises when ONNX Runtime is missing or the export does not agree."""
    path = graph_path(fingerprint, weights_path)
    if path.is_file():
        try:
            session = OnnxSession(path, fingerprint, threads)
            if verify(session, model, image_size) <= VERIFY_TOLERANCE:
                return session
        except StaleGraphError:
            pass
        try:
            os.remove(path)
        except OSError:
            pass
    export_graph(model, fingerprint, image_size, path)
    session = OnnxSession(path, fingerprint, threads)
    gap = verify(session, model, image_size)
    if gap > VERIFY_TOLERANCE:
        raise RuntimeError(f"the exported graph differs from PyTorch by {gap:.2g}")
    return session
