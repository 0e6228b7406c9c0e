"""Encoding with a graph exported from a weights file, through ONNX Runtime, without PyTorch.

A graph file (``NAME.fph.onnx`` beside the weights, or in the cache folder) is self-describing: its
metadata holds the model's :class:`~.info.WeightsInfo` (config, preprocessing, fingerprint), the
SHA-256 of the weights file it was exported from, and how far it was from PyTorch on the
verification batch. A graph is written only after that verification passed
(:mod:`.onnx_engine`), so a graph whose source digest matches the weights file on disk can be used
as it is: the app searches with it at launch before ``import torch`` (seconds on a cold start) has
run, and an install without PyTorch can index and search with it.
"""

from __future__ import annotations

import hashlib
import os
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from ..codes import pack_codes
from ..errors import BadFileError
from .info import WeightsInfo

OPSET = 17
GRAPH_FORMAT = "2"  # 1: fingerprint only (re-exported when met); 2: + info, source digest, verified gap
FORMAT_KEY = "fph_desktop.graph_format"
FINGERPRINT_KEY = "fph_desktop.fingerprint"
INFO_KEY = "fph_desktop.info"
SOURCE_KEY = "fph_desktop.source_sha256"
GAP_KEY = "fph_desktop.verified_gap"
SUFFIX = ".onnx"


class StaleGraphError(BadFileError):
    """A graph exported from another model or weights file (or damaged): never used, exported again."""


def pytorch_available() -> bool:
    """Whether PyTorch is installed (without importing it: that takes seconds). The search-only
    bundle has none: it indexes and searches with exported graphs alone."""
    import importlib.util

    if "torch" in sys.modules:
        return True
    try:
        return importlib.util.find_spec("torch") is not None
    except (ImportError, ValueError):
        return False


def onnxruntime_version() -> str | None:
    try:
        import onnxruntime
    except ImportError:
        return None
    return onnxruntime.__version__


def file_digest(path: str | Path) -> str:
    """SHA-256 of a weights file's bytes: ties a graph to the exact file it came from (15 ms for 20 MB)."""
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def graph_path(fingerprint: str, weights_path: str | Path | None = None, digest: str | None = None) -> Path:
    """Beside the weights file when its folder is writable; else in the cache folder, named by the
    weights file's digest (found again without PyTorch) or, for a model not from a file, its fingerprint."""
    if weights_path is not None:
        weights_path = Path(weights_path)
        if os.access(weights_path.parent, os.W_OK):
            return weights_path.with_name(weights_path.name + SUFFIX)
    from .. import paths

    key = digest or fingerprint
    safe = "".join(c for c in key if c.isalnum())[:40]
    return paths.cache_dir() / "onnx" / f"{safe}-opset{OPSET}{SUFFIX}"


def default_threads() -> int:
    """PyTorch's thread count when it is loaded (benchmarks set it), else one per core, at most 8."""
    torch = sys.modules.get("torch")
    if torch is not None:
        return torch.get_num_threads()
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        cores = os.cpu_count() or 1
    return max(1, min(8, cores))


class OnnxSession:
    """An ONNX Runtime session over one graph (a file, or bytes not yet written), refused unless it
    was exported from the model with ``fingerprint`` (any model when ``None``)."""

    def __init__(self, source: str | Path | bytes, fingerprint: str | None, threads: int | None = None) -> None:
        import onnxruntime as ort

        self.path = None if isinstance(source, bytes) else Path(source)
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads or default_threads()
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        # No busy-waiting between runs: spinning threads starved PyTorch (an overlay's forward pass
        # took 0.5 s instead of 0.02 s once a session existed) and the photo-decoding threads.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.add_session_config_entry("session.inter_op.allow_spinning", "0")
        try:
            model = source if isinstance(source, bytes) else str(source)
            self.session = ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # noqa: BLE001 - ONNX Runtime raises its own types for a damaged file
            raise StaleGraphError(f"cannot be loaded by ONNX Runtime ({exc.__class__.__name__})", self.path) from None
        self.metadata = dict(self.session.get_modelmeta().custom_metadata_map)
        found = self.metadata.get(FINGERPRINT_KEY)
        if fingerprint is not None and found != fingerprint:
            raise StaleGraphError(f"was exported from model {found}, not {fingerprint}", self.path, "it is exported again")

    @property
    def current_format(self) -> bool:
        return self.metadata.get(FORMAT_KEY) == GRAPH_FORMAT

    def run(self, pixels: np.ndarray) -> np.ndarray:
        return self.session.run(None, {"pixels": np.ascontiguousarray(pixels, dtype=np.float32)})[0]


class CodeMaker:
    """What indexing and searching need of an encoder, whichever engine runs it."""

    info: WeightsInfo
    engine: str
    engine_note: str = ""

    @property
    def code_bits(self) -> int:
        return self.info.config.code_bits

    @property
    def code_bytes(self) -> int:
        return self.code_bits // 8

    @property
    def fingerprint(self) -> str:
        return self.info.fingerprint

    @property
    def preprocessing(self):
        return self.info.preprocessing

    @property
    def decode_side(self) -> int:
        """The shorter side a photo needs after decoding (JPEG draft target)."""
        return self.preprocessing.resize

    def to_array(self, image: Image.Image) -> np.ndarray:
        return self.preprocessing.to_array(image)

    def describe_engine(self) -> str:
        """Which engine encodes, in words (the CLI prints it; benchmarks record it)."""
        name = "ONNX Runtime" if self.engine == "onnx" else "PyTorch"
        return f"{name} ({self.engine_note})" if self.engine_note else name

    def encode_batch(self, batch) -> tuple[np.ndarray, np.ndarray]:
        raise NotImplementedError

    def encode_images(self, images: list[Image.Image]) -> tuple[np.ndarray, np.ndarray]:
        return self.encode_batch(np.stack([self.to_array(img) for img in images]))


class GraphEncoder(CodeMaker):
    """Encodes with an exported graph alone: no PyTorch, CPU only, no overlays (``explain`` needs
    the network's intermediate maps; :class:`~.encoder.Encoder` gives them)."""

    engine = "onnx"
    device = "cpu"

    def __init__(self, session: OnnxSession, info: WeightsInfo) -> None:
        self.session, self.info = session, info
        self.engine_note = f"ONNX Runtime {onnxruntime_version()}, graph {session.path.name if session.path else ''}".strip()

    @classmethod
    def for_weights(cls, weights_path: str | Path, threads: int | None = None) -> GraphEncoder | None:
        """The encoder of the graph exported from this very weights file, or ``None`` when there is
        none yet (or ONNX Runtime is missing, or the file changed since): then PyTorch loads it."""
        if onnxruntime_version() is None:
            return None
        try:
            digest = file_digest(weights_path)
        except OSError:
            return None
        for path in (graph_path("", weights_path, digest), graph_path("", None, digest)):
            if not path.is_file():
                continue
            try:
                session = OnnxSession(path, None, threads)
            except StaleGraphError:
                continue
            if session.current_format and session.metadata.get(SOURCE_KEY) == digest:
                return cls._from_session(session)
        return None

    @classmethod
    def from_graph(cls, path: str | Path, threads: int | None = None) -> GraphEncoder:
        """A graph file given on its own (an install without PyTorch): its metadata says what it is."""
        if not Path(path).is_file():
            raise BadFileError("no such model file", path)
        session = OnnxSession(path, None, threads)
        if not session.current_format:
            raise StaleGraphError(
                "is not a graph exported by this fph-desktop", path, "export it again from its weights file with PyTorch"
            )
        return cls._from_session(session)

    @classmethod
    def _from_session(cls, session: OnnxSession) -> GraphEncoder:
        try:
            info = WeightsInfo.from_json(session.metadata[INFO_KEY])
        except (KeyError, TypeError, ValueError) as exc:
            raise StaleGraphError(f"has damaged metadata ({exc.__class__.__name__})", session.path) from None
        if info.fingerprint != session.metadata.get(FINGERPRINT_KEY):
            raise StaleGraphError("has metadata of another model", session.path)
        return cls(session, info)

    def encode_batch(self, batch) -> tuple[np.ndarray, np.ndarray]:
        """Normalised pixels (N, 3, H, W) to ``(packed codes (N, q/8) uint8, tanh outputs (N, q) float32)``."""
        u = self.session.run(np.asarray(batch, dtype=np.float32))
        return pack_codes(u), u
