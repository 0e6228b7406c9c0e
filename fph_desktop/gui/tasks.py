"""The jobs the app's workers run: thin, Qt-free calls into the core, returning plain data for the
views. Each takes a :class:`~fph_desktop.progress.Progress` first. torch and the index are imported
inside the functions, so importing this module stays cheap.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from ..index.ranking import Hit, QueryHits, SearchOutcome, search_many
from ..progress import Progress

__all__ = ["Hit", "QueryHits", "SearchOutcome"]  # result types the views use, from the core

HEATMAP_LAYERS = ("fused", "C2", "C3", "C4")


# -- model ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ModelSummary:
    path: str
    description: str  # e.g. "FPH, resnet18, 48 bits"
    code_bits: int
    fingerprint: str
    device: str


def warm_up(progress: Progress) -> str:
    """Import torch (seconds on a cold start) so the first real job does not pay for it."""
    progress.set_status("Loading PyTorch…")
    import torch  # noqa: F401

    from ..model import encoder  # noqa: F401

    return "PyTorch loaded"


def load_model(progress: Progress, path: str, device: str | None = None) -> ModelSummary:
    """Load (and cache, for the index jobs) the weights file at ``path``."""
    from ..index import load_encoder

    progress.set_status(f"Loading PyTorch and the model {Path(path).name}…")
    encoder, model_path = load_encoder(path, None, None if device in (None, "auto") else device)
    progress.set_status(f"Model ready: {encoder.info.describe()}")
    return ModelSummary(str(model_path), encoder.info.describe(), encoder.code_bits, encoder.fingerprint, str(encoder.device))


def unsupervised_model_path(folder: str | Path, bits: int) -> Path:
    """Where the unsupervised codes fitted on ``folder`` are kept (one file per folder and length)."""
    from .. import paths
    from ..index.store import folder_label

    return paths.data_dir() / "models" / "unsupervised" / f"{folder_label(folder)}-itq-efficientnet_lite0-{bits}bit.fph"


def ensure_unsupervised_model(progress: Progress, folder: str, bits: int = 48, device: str | None = None) -> str:
    """The offline pretrained backbone with ITQ codes fitted on the photos of ``folder``: reused when
    it was fitted before, else fitted now (as ``fph-desktop train --method itq`` does) and saved."""
    path = unsupervised_model_path(folder, bits)
    if path.is_file():
        return str(path)
    from ..device import select_device
    from ..index.scanner import scan_folder
    from ..model.weights import save_weights
    from ..train.unsupervised import fit_itq_model

    progress.set_status(f"Looking for photos in {folder}…")
    scan = scan_folder(folder, progress)
    photos = [Path(folder) / item.relpath for item in scan.files]
    if not photos:
        raise ValueError(f"{folder}: no photos found to fit unsupervised codes on; pick a folder with photos")
    progress.set_status(f"Fitting {bits}-bit unsupervised codes on {len(photos)} photos (pretrained EfficientNet-Lite0)…")
    model = fit_itq_model(photos, "efficientnet_lite0", bits, device=select_device(device), progress=progress)
    save_weights(path, model, [], {"method": "itq", "data": str(folder)})
    return str(path)


# -- index ---------------------------------------------------------------------------------------------
@dataclass
class IndexState:
    """What the status bar shows, plus the library the search jobs use (never touched by widgets)."""

    library: Any
    folder: str
    photos: int
    skipped: int
    model_path: str
    model_description: str
    code_bits: int
    summary: str = ""
    complete: bool = True
    offline: bool = False


def _state(library, summary: str = "", complete: bool = True) -> IndexState:
    info = library.info()
    return IndexState(
        library=library, folder=str(library.folder), photos=len(library), skipped=info.skipped,
        model_path=str(library.model_path or ""), model_description=info.model_description or library.encoder.info.describe(),
        code_bits=library.encoder.code_bits, summary=summary, complete=complete, offline=library.offline,
    )


def open_index(progress: Progress, folder: str, model_path: str, device: str | None = None) -> IndexState:
    """Open an existing index without rescanning (the last folder at start-up)."""
    from ..index import Library

    progress.set_status(f"Opening the index of {folder}…")
    library = Library.open(folder, model_path, device=None if device in (None, "auto") else device, create=False)
    library.reload()
    return _state(library, f"{library.folder}: {len(library)} photos indexed", library.info().complete)


def index_folder(
    progress: Progress, folder: str, model_path: str | None, device: str | None = None, *,
    unsupervised_bits: int | None = None, batch_size: int = 32,
) -> IndexState:
    """Bring the index of ``folder`` up to date. ``model_path`` None with ``unsupervised_bits``: use
    (or first fit) the unsupervised model of this folder. A cancel keeps the batches already committed,
    and the partial index is reported through ``progress.partial`` before ``Cancelled`` propagates."""
    from ..index import Library
    from ..progress import Cancelled

    if model_path is None:
        if unsupervised_bits is None:
            raise ValueError("no model chosen: load a weights file, or choose the pretrained backbone")
        model_path = ensure_unsupervised_model(progress, folder, unsupervised_bits, device)
    progress.check()
    progress.set_status("Loading the model…")
    library = Library.open(folder, model_path, device=None if device in (None, "auto") else device)
    try:
        report = library.update(progress, batch_size=batch_size)
    except Cancelled:
        if library.db_path.is_file():
            library.reload()  # the batches committed before the cancel are searchable
            progress.partial(_state(library, f"Indexing cancelled; {len(library)} photos are indexed so far", False))
        raise
    return _state(library, report.summary(), not report.offline)


@dataclass(frozen=True)
class Skipped:
    relpath: str
    reason: str


def skipped_files(progress: Progress, library) -> list[Skipped]:
    items = [Skipped(s.relpath, s.reason) for s in library.skipped_files()]
    items += [Skipped(relpath.rstrip("/") + "/", f"folder could not be read: {reason}") for relpath, reason in library.unreadable_dirs()]
    return items


# -- search --------------------------------------------------------------------------------------------
def search(
    progress: Progress, library, queries: Sequence[str], k: int = 24, hide_duplicates: bool = True,
    combined: bool = False,
) -> SearchOutcome:
    return search_many(library, queries, k, hide_duplicates, combined, progress)


# -- comparison ----------------------------------------------------------------------------------------
@dataclass
class Side:
    """One photo of the comparison: pixels for display and the heat maps over its crop."""

    path: str
    photo: Any  # (H, W, 3) uint8, as displayed
    crop_box: tuple[float, float, float, float]  # in ``photo`` pixel coordinates
    heatmaps: dict[str, Any]  # layer name ("fused", "C2", ...) -> (h, w, 4) uint8 RGBA colour map
    packed: Any  # (q/8,) uint8


@dataclass
class Comparison:
    query: Side
    match: Side
    code_bits: int
    differing_bits: list[int] = field(default_factory=list)

    @property
    def distance(self) -> int:
        return len(self.differing_bits)


# The usual heat-map ramp (blue, cyan, green, yellow, red) at stops 0, .25, .5, .75, 1: low responses
# read as cool, high ones as hot, and the view's opacity slider blends it with the photo.
_RAMP = ((30, 60, 200), (20, 190, 230), (60, 200, 90), (250, 220, 40), (230, 40, 30))


def colorize(heat) -> Any:
    """(H, W) 0..1 to (H, W, 4) uint8 RGBA (opaque; the view sets the opacity)."""
    import numpy as np

    heat = np.clip(np.asarray(heat, dtype=np.float32), 0, 1)
    stops = np.linspace(0, 1, len(_RAMP))
    rgb = np.stack([np.interp(heat, stops, [c[i] for c in _RAMP]) for i in range(3)], axis=-1)
    alpha = np.full(heat.shape + (1,), 255, dtype=np.float32)
    return np.concatenate([rgb, alpha], axis=-1).astype(np.uint8)


def _side(encoder, path: str, display_side: int = 900) -> Side:
    import numpy as np

    from ..imaging import open_image

    image = open_image(path, encoder.decode_side)
    explanation = encoder.explain(image)
    shown = open_image(path, display_side)
    scale_x, scale_y = shown.width / image.width, shown.height / image.height
    left, top, right, bottom = explanation.crop_box
    maps = {"fused": explanation.fused_heatmap, **explanation.layer_heatmaps}
    return Side(
        path=str(path),
        photo=np.asarray(shown, dtype=np.uint8).copy(),
        crop_box=(left * scale_x, top * scale_y, right * scale_x, bottom * scale_y),
        heatmaps={name: colorize(m) for name, m in maps.items()},
        packed=explanation.packed,
    )


def compare(progress: Progress, library, query_path: str, match_path: str) -> Comparison:
    """Both photos' codes and low-layer activation maps (one forward pass each) and the bits that differ."""
    import numpy as np

    encoder = library.encoder
    progress.set_status(f"Explaining the match {Path(match_path).name}…")
    query = _side(encoder, query_path)
    progress.check()
    match = _side(encoder, match_path)
    bits = encoder.code_bits
    a = np.unpackbits(query.packed, count=bits)
    b = np.unpackbits(match.packed, count=bits)
    return Comparison(query, match, bits, [int(i) for i in np.flatnonzero(a != b)])
