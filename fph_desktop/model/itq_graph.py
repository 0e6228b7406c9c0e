"""The app's default model without PyTorch: the shipped backbone's *descriptor graph* (pixels to the
pooled, normalised C5 that ITQ codes, exported from the same network by a full install or when the
bundle is built) plus ITQ fitted in numpy on the folder's photos, composed into one code graph.

The code graph is self-describing like any exported graph (:mod:`.graph`), so indexing and
searching use it through :class:`~.graph.GraphEncoder`. It computes exactly what
:class:`~.itq.ITQHash` computes: ``tanh((descriptor - mean) @ projection * scale)``. Its fingerprint
covers the config, the preprocessing, the backbone's tensors (by their digest) and the fitted
arrays, so it changes whenever the codes would.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import sys
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from ..errors import BadFileError, BadFolderError
from ..imaging import ImageError, open_image
from ..progress import Progress, silent
from .config import FPHConfig
from .graph import FINGERPRINT_KEY, FORMAT_KEY, GAP_KEY, GRAPH_FORMAT, INFO_KEY, OPSET, OnnxSession, default_threads
from .info import WeightsInfo
from .itq_fit import fit_itq
from .preprocessing import Preprocessing

DESCRIPTOR_FORMAT = "descriptor-1"
BACKBONE_KEY = "fph_desktop.backbone"
PREPROCESSING_KEY = "fph_desktop.preprocessing"
BACKBONE_DIGEST_KEY = "fph_desktop.backbone_digest"
OUTPUT = "descriptor"


def descriptor_graph_name(backbone: str) -> str:
    return f"descriptor-{backbone}-opset{OPSET}.onnx"


def bundled_graphs_dir() -> Path:
    """Where a bundle carries the graphs it was built with (``graphs/`` beside the program's files)."""
    return Path(getattr(sys, "_MEIPASS", Path(__file__).resolve().parents[2])) / "graphs"


def cached_descriptor_path(backbone: str) -> Path:
    """Where a full install exports the descriptor graph of its shipped backbone."""
    from .. import paths

    return paths.cache_dir() / "onnx" / descriptor_graph_name(backbone)


def find_descriptor_graph(backbone: str) -> Path | None:
    for path in (bundled_graphs_dir() / descriptor_graph_name(backbone), cached_descriptor_path(backbone)):
        if path.is_file():
            return path
    return None


class DescriptorGraph:
    """Pixels (N, 3, H, W), normalised as :attr:`preprocessing` says, to descriptors (N, D)."""

    def __init__(self, path: str | Path, threads: int | None = None) -> None:
        self.session = OnnxSession(path, None, threads)
        meta = self.session.metadata
        if meta.get(FORMAT_KEY) != DESCRIPTOR_FORMAT:
            raise BadFileError("is not a descriptor graph exported by this fph-desktop", path)
        self.path = Path(path)
        self.backbone = meta[BACKBONE_KEY]
        self.backbone_digest = meta[BACKBONE_DIGEST_KEY]
        self.preprocessing = Preprocessing.from_dict(json.loads(meta[PREPROCESSING_KEY]))

    def run(self, pixels: np.ndarray) -> np.ndarray:
        return self.session.run(pixels)


def descriptors(
    graph: DescriptorGraph,
    paths: Sequence[str | Path],
    progress: Progress | None = None,
    batch_size: int = 32,
    workers: int | None = None,
) -> tuple[np.ndarray, list[int]]:
    """Descriptors of the photos that decode, and their positions in ``paths`` (decoding in a pool
    of threads while the graph runs, as the indexer does)."""
    progress = progress or silent()
    preprocessing = graph.preprocessing

    def load(path):
        try:
            return preprocessing.to_array(open_image(path, preprocessing.resize))
        except ImageError:
            return None

    features, used = [], []
    with ThreadPoolExecutor(max_workers=workers or default_threads(), thread_name_prefix="fph-decode") as pool:
        for start in range(0, len(paths), batch_size):
            progress.check()
            arrays = list(pool.map(load, paths[start : start + batch_size]))
            kept = [i for i, a in enumerate(arrays) if a is not None]
            if kept:
                features.append(graph.run(np.stack([arrays[i] for i in kept])))
                used += [start + i for i in kept]
            progress.set_progress(min(start + batch_size, len(paths)), len(paths))
    width = int(graph.session.session.get_outputs()[0].shape[-1])
    return (np.concatenate(features) if features else np.zeros((0, width), np.float32)), used


def itq_fingerprint(config: FPHConfig, preprocessing: Preprocessing, backbone_digest: str, arrays: Sequence[np.ndarray]) -> str:
    digest = hashlib.sha256()
    relevant = {k: v for k, v in config.to_dict().items() if k != "extra"}
    digest.update(json.dumps([relevant, preprocessing.to_dict(), backbone_digest], sort_keys=True).encode())
    for array in arrays:
        digest.update(np.ascontiguousarray(array, dtype=np.float32).tobytes())
    return digest.hexdigest()[:16]


def compose_code_graph(
    graph: DescriptorGraph, mean: np.ndarray, projection: np.ndarray, scale: np.ndarray, info: WeightsInfo
) -> bytes:
    """The descriptor graph with the ITQ head appended (Sub, MatMul, Mul, Tanh): one code graph, its
    metadata that of a model. Checked against the head computed in numpy before it is returned."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    proto = onnx.load(graph.path)
    body = proto.graph
    for name, array in (("itq_mean", mean), ("itq_projection", projection), ("itq_scale", scale)):
        body.initializer.append(numpy_helper.from_array(np.ascontiguousarray(array, dtype=np.float32), name))
    body.node.extend(
        [
            helper.make_node("Sub", [OUTPUT, "itq_mean"], ["itq_centred"]),
            helper.make_node("MatMul", ["itq_centred", "itq_projection"], ["itq_projected"]),
            helper.make_node("Mul", ["itq_projected", "itq_scale"], ["itq_scaled"]),
            helper.make_node("Tanh", ["itq_scaled"], ["u"]),
        ]
    )
    del body.output[:]
    body.output.append(helper.make_tensor_value_info("u", TensorProto.FLOAT, ["batch", int(projection.shape[1])]))
    del proto.metadata_props[:]
    metadata = {FORMAT_KEY: GRAPH_FORMAT, FINGERPRINT_KEY: info.fingerprint, INFO_KEY: info.to_json()}
    for key, value in metadata.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    rng = np.random.default_rng(0)
    probe = rng.standard_normal((3, 3, graph.preprocessing.crop, graph.preprocessing.crop)).astype(np.float32)
    expected = np.tanh((graph.run(probe) - mean) @ projection * scale)
    gap = float(np.abs(OnnxSession(proto.SerializeToString(), info.fingerprint).run(probe) - expected).max())
    if gap > 1e-4:
        raise RuntimeError(f"the composed code graph differs from its parts by {gap:.2g}")
    entry = proto.metadata_props.add()
    entry.key, entry.value = GAP_KEY, f"{gap:.3g}"
    return proto.SerializeToString()


def fit_itq_graph(
    graph: DescriptorGraph,
    paths: Sequence[str | Path],
    code_bits: int,
    progress: Progress | None = None,
    seed: int = 0,
    max_images: int = 5000,
    training: dict | None = None,
) -> bytes:
    """ITQ fitted on (a seeded sample of at most ``max_images`` of) ``paths``, as a code graph: what
    :func:`~fph_desktop.train.unsupervised.fit_itq_model` makes, without PyTorch."""
    progress = progress or silent()
    paths = [Path(p) for p in paths]
    if len(paths) > max_images:
        rng = np.random.default_rng(seed)
        paths = [paths[i] for i in sorted(rng.choice(len(paths), max_images, replace=False))]
    progress.set_status(f"Fitting unsupervised {code_bits}-bit codes on {len(paths)} photos")
    features, used = descriptors(graph, paths, progress)
    if len(used) <= code_bits:
        raise BadFolderError(
            f"unsupervised {code_bits}-bit codes need more than {code_bits} readable photos to fit on; found {len(used)}",
            hint="choose fewer bits or a folder with more photos",
        )
    mean, projection, scale = fit_itq(features, code_bits, seed=seed)
    config = FPHConfig(
        method="itq", backbone=graph.backbone, code_bits=code_bits, image_size=graph.preprocessing.crop,
        extra={"itq_fit_images": len(used), "itq_seed": seed},
    )  # fmt: skip
    info = WeightsInfo(
        config=config,
        preprocessing=graph.preprocessing,
        training={"method": "itq", "engine": "ONNX Runtime (no PyTorch)", **(training or {})},
        fingerprint=itq_fingerprint(config, graph.preprocessing, graph.backbone_digest, (mean, projection, scale)),
        created=_dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
    )
    return compose_code_graph(graph, mean, projection, scale, info)
