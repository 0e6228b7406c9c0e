"""The model used when the user has not chosen one: the shipped backbone (EfficientNet-Lite0, whose
weights come with the app, so it works offline) with unsupervised ITQ codes fitted on the folder.

One place for both front ends: the app's "Use the pretrained backbone" and ``fph-desktop index
FOLDER`` without ``--model`` fit and reuse the same file.

Without PyTorch (the search-only bundle) the same codes are fitted over the backbone's descriptor
graph and kept as a code graph (``….onnx`` instead of ``….fph``; :mod:`~fph_desktop.model.itq_graph`).
"""

from __future__ import annotations

from pathlib import Path

from ..errors import BadFolderError
from ..progress import Progress, silent

DEFAULT_BACKBONE = "efficientnet_lite0"
DEFAULT_BITS = 48


def unsupervised_model_path(folder: str | Path, bits: int = DEFAULT_BITS) -> Path:
    """Where the unsupervised codes fitted on ``folder`` are kept (one file per folder and length)."""
    from .. import paths
    from .store import folder_label

    return paths.data_dir() / "models" / "unsupervised" / f"{folder_label(folder)}-itq-{DEFAULT_BACKBONE}-{bits}bit.fph"


def existing_unsupervised_model(folder: str | Path, bits: int = DEFAULT_BITS) -> Path | None:
    """The folder's default model when it was fitted before: the weights file, or the code graph an
    install without PyTorch fitted."""
    path = unsupervised_model_path(folder, bits)
    for candidate in (path, path.with_suffix(".onnx")):
        if candidate.is_file():
            return candidate
    return None


def ensure_unsupervised_model(
    progress: Progress | None, folder: str | Path, bits: int = DEFAULT_BITS, device: str | None = None
) -> str:
    """The default model for ``folder``: reused when it was fitted before (and is intact), else fitted
    now (as ``fph-desktop train --method itq`` does) and saved. ITQ needs more photos than bits: a small
    folder gets the longest code it can fit (40 photos: 32 bits) under the same file name, so the
    folder keeps one default model."""
    progress = progress or silent()
    from ..model.graph import GraphEncoder, pytorch_available

    if not pytorch_available():
        return _ensure_graph_model(progress, folder, bits)
    path = unsupervised_model_path(folder, bits)
    from ..errors import UserError
    from ..model.weights import read_weights, save_weights

    if path.is_file():
        try:
            read_weights(path)
            return str(path)
        except UserError:
            path.unlink(missing_ok=True)  # ours and damaged (a crash, a full disk): fitted again below
    graph_model = path.with_suffix(".onnx")
    if graph_model.is_file():  # fitted by an install without PyTorch: as good, and its index is there
        try:
            GraphEncoder.from_graph(graph_model)
            return str(graph_model)
        except UserError:
            graph_model.unlink(missing_ok=True)
    from ..device import select_device
    from ..train.unsupervised import fit_itq_model

    photos, bits = _photos_and_bits(progress, folder, bits)
    model = fit_itq_model(photos, DEFAULT_BACKBONE, bits, device=select_device(device), progress=progress)
    save_weights(path, model, [], {"method": "itq", "data": str(folder)})
    return str(path)


def _ensure_graph_model(progress: Progress, folder: str | Path, bits: int) -> str:
    """:func:`ensure_unsupervised_model` without PyTorch: the weights file when its exported graph is
    there, else the code graph, fitted over the shipped backbone's descriptor graph when needed."""
    from ..errors import MissingDependencyError, UserError
    from ..fileio import atomic_write
    from ..model.graph import GraphEncoder
    from ..model.itq_graph import DescriptorGraph, find_descriptor_graph, fit_itq_graph

    path = unsupervised_model_path(folder, bits)
    if path.is_file() and GraphEncoder.for_weights(path) is not None:
        return str(path)
    graph_model = path.with_suffix(".onnx")
    if graph_model.is_file():
        try:
            GraphEncoder.from_graph(graph_model)
            return str(graph_model)
        except UserError:
            graph_model.unlink(missing_ok=True)  # ours and damaged: fitted again below
    descriptor = find_descriptor_graph(DEFAULT_BACKBONE)
    if descriptor is None:
        raise MissingDependencyError(
            "PyTorch", "fitting codes on a folder (this install has no shipped backbone graph)", "torch torchvision",
            "load a model exported by a full install (a .fph file with its .fph.onnx beside it)",
        )  # fmt: skip
    photos, bits = _photos_and_bits(progress, folder, bits)
    data = fit_itq_graph(DescriptorGraph(descriptor), photos, bits, progress, training={"data": str(folder)})
    graph_model.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(graph_model) as handle:
        handle.write(data)
    return str(graph_model)


def _photos_and_bits(progress: Progress, folder: str | Path, bits: int) -> tuple[list[Path], int]:
    """The folder's photos, and the longest code up to ``bits`` that they can fit."""
    from .scanner import scan_folder

    progress.set_status(f"Looking for photos in {folder}…")
    try:
        scan = scan_folder(folder, progress)
    except OSError as exc:
        raise BadFolderError(
            f"cannot be read ({exc.strerror or exc})", folder, "check that the folder exists and its drive is connected"
        ) from None
    photos = [Path(folder) / item.relpath for item in scan.files]
    if not photos:
        raise BadFolderError("no photos found", folder, "pick a folder with photos")
    if len(photos) <= bits:
        bits = 8 * ((len(photos) - 1) // 8)
        if bits < 8:
            raise BadFolderError(
                f"has only {len(photos)} photos; codes fitted on a folder need at least 9", folder,
                "add photos, or load a trained model (Model menu, or --model FILE)",
            )  # fmt: skip
    return photos, bits
