"""The jobs the app's workers run: thin, Qt-free calls into the core, returning plain data for the
views. Each takes a :class:`~fph_desktop.progress.Progress` first. torch and the index are imported
inside the functions, so importing this module stays cheap.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

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
    from ..model.graph import pytorch_available

    if not pytorch_available():  # the search-only install: exported graphs do all its work
        return "search-only install (no PyTorch)"
    progress.set_status("Getting the model library ready…")
    import torch  # noqa: F401

    from ..model import encoder  # noqa: F401

    return "PyTorch loaded"


def load_model(progress: Progress, path: str, device: str | None = None) -> ModelSummary:
    """Load (and cache, for the index jobs) the weights file at ``path``."""
    from ..index import load_encoder

    progress.set_status(f"Loading the model {Path(path).name}…")
    encoder, model_path = load_encoder(path, None, None if device in (None, "auto") else device)
    return ModelSummary(str(model_path), encoder.info.describe(), encoder.code_bits, encoder.fingerprint, str(encoder.device))


# The default model lives in the core, beside the command line's use of it.
from ..index.default_model import ensure_unsupervised_model, existing_unsupervised_model  # noqa: E402


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
    seconds: float = 0.0  # wall time of the whole job (fitting the codes included), 0 when only opened
    changes: int = 0  # photos added, changed, moved, copied, removed or failed by this update


@dataclass(frozen=True)
class Step:
    """A numbered step of a long job, sent through ``progress.partial``: the window shows its text
    and restarts the progress bar (busy until the step counts something)."""

    number: int
    count: int
    text: str

    def describe(self) -> str:
        return f"Step {self.number} of {self.count}: {self.text}…" if self.count > 1 else f"{self.text}…"


class _Steps:
    def __init__(self, progress: Progress, texts: list[str]) -> None:
        self.progress, self.texts, self.current = progress, texts, 0

    def begin(self, number: int) -> None:
        if number > self.current:
            self.current = number
            self.progress.partial(Step(number, len(self.texts), self.texts[number - 1]))


class _Stage(Progress):
    """The job's Progress as the core sees it during some steps. Counts, partial results and cancels
    pass through; the core's status lines are kept in ``details`` but not shown (the step's text says
    it in the user's words, and the core's closing line times only its own part of the job).
    ``starting(done, total)`` runs before a count is passed on, ``counted`` after it, so the job can
    announce the step a count begins or ends."""

    def __init__(self, outer: Progress, starting=None, counted=None) -> None:
        super().__init__()
        self.outer, self.starting, self.counted = outer, starting, counted
        self.details: list[str] = []

    def set_status(self, text: str) -> None:
        self.status = text
        self.details.append(text)

    def set_progress(self, done: int, total: int) -> None:
        if self.starting is not None:
            self.starting(done, total)
        self.outer.set_progress(done, total)
        if self.counted is not None:
            self.counted(done, total)

    def partial(self, result: Any) -> None:
        self.outer.partial(result)

    def cancel(self) -> None:
        self.outer.cancel()

    @property
    def cancelled(self) -> bool:
        return self.outer.cancelled

    def check(self) -> None:
        self.outer.check()


def duration(seconds: float) -> str:
    """``12.6 s``, ``1 min 12 s``, ``1 h 5 min``: how long something took, as a person says it."""
    if seconds < 60:
        return f"{seconds:.1f} s"
    whole = int(round(seconds))
    if whole < 3600:
        return f"{whole // 60} min {whole % 60} s"
    return f"{whole // 3600} h {whole // 60 % 60} min"


def folder_name(folder: str | Path) -> str:
    path = Path(folder)
    return path.name or str(path)


def index_summary(report, photos: int, seconds: float, fitted: bool = False) -> str:
    """The one line the status bar shows when indexing ends: what changed, in the user's words, and
    the wall time of the whole job (``seconds``: fitting the codes included)."""
    name, took = folder_name(report.folder), duration(seconds)
    if report.offline:
        return f"{name} could not be reached ({report.offline_reason}); its index was kept as it was."
    changes = []
    for count, one, many in (
        (report.encoded, "new or changed photo analysed", "new or changed photos analysed"),
        (report.moved, "moved or renamed", "moved or renamed"),
        (report.reused, "copy of an indexed photo", "copies of indexed photos"),
        (report.deleted, "removed", "removed"),
        (report.failed, "could not be read", "could not be read"),
    ):
        if count:
            changes.append(f"{count:,} {one if count == 1 else many}")
    if not changes:
        return f"{name} is up to date: {photos:,} photos, nothing changed ({took})."
    fit = "; the codes were fitted on its photos first" if fitted else ""
    if not (report.unchanged or report.deleted or report.still_skipped):  # a first index: every photo is new
        unread = f", {report.failed:,} could not be read" if report.failed else ""
        return f"Indexed {name} in {took}: {photos:,} photos{unread}{fit}."
    return f"Updated {name} in {took}: {photos:,} photos ({', '.join(changes)}){fit}."


def _state(library, summary: str = "", complete: bool = True, seconds: float = 0.0) -> IndexState:
    info = library.info()
    return IndexState(
        library=library,
        folder=str(library.folder),
        photos=len(library),
        skipped=info.skipped,
        model_path=str(library.model_path or ""),
        model_description=info.model_description or library.encoder.info.describe(),
        code_bits=library.encoder.code_bits,
        summary=summary,
        complete=complete,
        offline=library.offline,
        seconds=seconds,
    )


def open_index(progress: Progress, folder: str, model_path: str, device: str | None = None) -> IndexState:
    """Open an existing index without rescanning (the last folder at start-up). Searching it needs
    no PyTorch when the model's exported graph is there (the first search after launch does not
    wait for ``import torch``)."""
    from ..index import Library

    progress.set_status(f"Opening the index of {folder_name(folder)}…")
    device = None if device in (None, "auto") else device
    library = Library.open(folder, model_path, device=device, create=False, search_only=True)
    library.reload()
    return _state(library, f"{folder_name(library.folder)}: {len(library):,} photos indexed", library.info().complete)


def index_folder(
    progress: Progress,
    folder: str,
    model_path: str | None,
    device: str | None = None,
    *,
    unsupervised_bits: int | None = None,
    batch_size: int = 32,
) -> IndexState:
    """Bring the index of ``folder`` up to date. ``model_path`` None with ``unsupervised_bits``: use
    (or first fit) the unsupervised model of this folder. The steps are announced as :class:`Step`
    partial results. A cancel keeps the batches already committed, and the partial index is reported
    through ``progress.partial`` before ``Cancelled`` propagates. A folder with no photo is refused
    (:class:`~fph_desktop.errors.BadFolderError`), so it never replaces the index the user works in."""
    import time

    from ..errors import BadFolderError, NoModelError
    from ..index import Library
    from ..progress import Cancelled

    started = time.monotonic()
    name = folder_name(folder)
    if model_path is None and unsupervised_bits is None:
        raise NoModelError("no model chosen", hint="load a weights file, or choose the pretrained backbone (Model menu)")
    fitting = model_path is None and existing_unsupervised_model(folder, unsupervised_bits) is None
    if fitting:
        texts = [
            f"Looking for photos in {name}",
            "Reading the photos to fit the codes on them",
            "Fitting the codes",
            "Analysing the photos with the fitted codes",
        ]
    else:
        texts = [f"Looking for new and changed photos in {name}", "Analysing the new and changed photos"]
    steps = _Steps(progress, texts)
    steps.begin(1)
    if model_path is None:
        fit_stage = _Stage(
            progress,
            starting=lambda done, total: steps.begin(2),
            counted=lambda done, total: steps.begin(3) if total and done >= total else None,
        )
        model_path = ensure_unsupervised_model(fit_stage, folder, unsupervised_bits, device)
        if fitting:
            steps.begin(len(texts))  # loading the fitted model and the rescan belong to the last step
    progress.check()
    library = Library.open(folder, model_path, device=None if device in (None, "auto") else device)
    stage = _Stage(progress, starting=lambda done, total: steps.begin(len(texts)))
    try:
        report = library.update(stage, batch_size=batch_size)
    except Cancelled:
        if library.db_path.is_file():
            library.reload()  # the batches committed before the cancel are searchable
            seconds = time.monotonic() - started
            summary = f"Indexing of {name} cancelled after {duration(seconds)}; {len(library):,} photos are indexed so far"
            progress.partial(_state(library, summary, False, seconds))
        raise
    if not report.offline and len(library) == 0:
        unreadable = report.failed + report.still_skipped
        problem = f"none of its {unreadable} photos could be read" if unreadable else "no photos found"
        raise BadFolderError(problem, folder, "choose a folder with photos (JPEG, PNG, …); the index you work in stays as it was")
    seconds = time.monotonic() - started
    state = _state(library, index_summary(report, len(library), seconds, fitting), not report.offline, seconds)
    state.changes = report.encoded + report.moved + report.reused + report.deleted + report.failed
    return state


@dataclass(frozen=True)
class Skipped:
    relpath: str
    reason: str


def skipped_files(progress: Progress, library) -> list[Skipped]:
    items = [Skipped(s.relpath, s.reason) for s in library.skipped_files()]
    items += [
        Skipped(relpath.rstrip("/") + "/", f"folder could not be read: {reason}") for relpath, reason in library.unreadable_dirs()
    ]
    return items


# -- search --------------------------------------------------------------------------------------------
def search(
    progress: Progress,
    library,
    queries: Sequence[str],
    k: int = 24,
    hide_duplicates: bool = True,
    combined: bool = False,
) -> SearchOutcome:
    return search_many(library, queries, k, hide_duplicates, combined, progress)


# -- comparison ----------------------------------------------------------------------------------------
@dataclass
class Side:
    """One photo of the comparison: pixels for display, and per map (layer name) where it agrees
    with the other photo and its numbered pairs."""

    path: str
    photo: Any  # (H, W, 3) uint8, as displayed
    crop_box: tuple[float, float, float, float]  # in ``photo`` pixel coordinates
    heatmaps: dict[str, Any]  # layer name ("fused", "C2", ...) -> (h, w, 4) uint8 RGBA, alpha rising with agreement
    packed: Any  # (q/8,) uint8
    # layer name -> [(x, y, number)]: the strongest pairs' cell centres, as fractions of the crop
    markers: dict[str, list[tuple[float, float, int]]] = field(default_factory=dict)


@dataclass
class Comparison:
    query: Side
    match: Side
    code_bits: int
    differing_bits: list[int] = field(default_factory=list)
    # The low layers' maps are what the code is made of (an FPH with the horizontal pyramid); False:
    # they are shown for what the photo's details have in common, but the code does not use them.
    maps_feed_code: bool = True
    note: str = ""  # why there are no maps, when that is not the model's doing
    pairs: dict[str, list] = field(default_factory=dict)  # layer -> correspondence.Pair list, strongest first

    @property
    def distance(self) -> int:
        return len(self.differing_bits)

    @property
    def agreeing_bits(self) -> int:
        return self.code_bits - self.distance


# A perceptual ramp (plasma: blue-violet, magenta, orange, yellow; even steps of lightness, and no white
# end that would wash out a pale sky) whose opacity rises with the value, so weak agreement leaves the
# photo untouched and strong agreement glows.
_RAMP = (
    (13, 8, 135),
    (84, 2, 163),
    (139, 10, 165),
    (185, 50, 137),
    (219, 92, 104),
    (244, 136, 73),
    (254, 188, 43),
    (240, 249, 33),
)


def colorize(heat) -> Any:
    """(H, W) 0..1 to (H, W, 4) uint8 RGBA: the ramp's colour, opacity rising with the value (the view's
    slider scales it)."""
    import numpy as np

    heat = np.clip(np.asarray(heat, dtype=np.float32), 0, 1)
    stops = np.linspace(0, 1, len(_RAMP))
    rgb = np.stack([np.interp(heat, stops, [c[i] for c in _RAMP]) for i in range(3)], axis=-1)
    alpha = (255 * np.clip((heat - 0.05) / 0.55, 0, 1) ** 0.8)[..., None]  # opaque from 0.6 up
    return np.concatenate([rgb, alpha], axis=-1).astype(np.uint8)


def legend_colours(steps: int = 64) -> Any:
    """The ramp as (steps, 4) RGBA, weak to strong, for the view's legend."""
    import numpy as np

    return colorize(np.linspace(0, 1, steps)[None])[0]


def _upsample(grid, side: int):
    """(h, w) 0..1 to (side, side), bilinear: the agreement over the crop the model saw."""
    import numpy as np
    from PIL import Image

    image = Image.fromarray(np.ascontiguousarray(grid, dtype=np.float32))  # mode "F"
    return np.asarray(image.resize((side, side), Image.Resampling.BILINEAR), dtype=np.float32)


def _shown(path: str, explanation_size: tuple[int, int], crop_box, display_side: int):
    """The photo as displayed, and the model's crop box scaled onto it."""
    import numpy as np

    from ..imaging import open_image

    shown = open_image(path, display_side)
    scale_x, scale_y = shown.width / explanation_size[0], shown.height / explanation_size[1]
    left, top, right, bottom = crop_box
    return np.asarray(shown, dtype=np.uint8).copy(), (left * scale_x, top * scale_y, right * scale_x, bottom * scale_y)


def compare(progress: Progress, library, query_path: str, match_path: str, display_side: int = 900) -> Comparison:
    """Both photos' codes and where they agree, per low layer (:mod:`~fph_desktop.model.correspondence`):
    one forward pass each, then the cells' similarity on the common grid, and the bits that differ."""
    import numpy as np

    from ..errors import BadFileError, MissingDependencyError
    from ..imaging import open_image
    from ..model.correspondence import correspondences

    progress.set_status(f"Explaining the match {Path(match_path).name}…")
    try:
        encoder = library.explaining_encoder()
    except MissingDependencyError:
        note = "This install has no PyTorch, which the activation maps need: the photos are shown as they are."
        return _plain_comparison(library, query_path, match_path, note)
    except BadFileError as exc:  # a model loaded as its exported graph alone
        return _plain_comparison(library, query_path, match_path, f"No activation maps: {exc}")
    images = [open_image(path, encoder.decode_side) for path in (query_path, match_path)]
    explanations = [encoder.explain(images[0])]
    progress.check()
    explanations.append(encoder.explain(images[1]))
    found = correspondences(explanations[0].grid_features, explanations[1].grid_features)
    sides = []
    for number, (path, image, explanation) in enumerate(zip((query_path, match_path), images, explanations, strict=True)):
        photo, crop = _shown(path, image.size, explanation.crop_box, display_side)
        heatmaps, markers = {}, {}
        for layer, corr in found.items():
            agreement = corr.query_agreement if number == 0 else corr.match_agreement
            heatmaps[layer] = colorize(_upsample(agreement, encoder.preprocessing.crop))
            h, w = corr.grid
            cells = [p.query_cell if number == 0 else p.match_cell for p in corr.pairs]
            markers[layer] = [((col + 0.5) / w, (row + 0.5) / h, rank) for rank, (row, col) in enumerate(cells, 1)]
        sides.append(Side(str(path), photo, crop, heatmaps, explanation.packed, markers))
    bits = encoder.code_bits
    a, b = (np.unpackbits(s.packed, count=bits) for s in sides)
    differing = [int(i) for i in np.flatnonzero(a != b)]
    pairs = {layer: corr.pairs for layer, corr in found.items()}
    return Comparison(sides[0], sides[1], bits, differing, maps_feed_code(encoder.info), pairs=pairs)


def maps_feed_code(info) -> bool:
    """Whether the low layers' maps are part of what makes this model's code (its horizontal pyramid)."""
    config = getattr(info, "config", None)
    return getattr(config, "method", "fph") == "fph" and bool(getattr(config, "use_horizontal", False))


def _plain_comparison(library, query_path: str, match_path: str, note: str, display_side: int = 900) -> Comparison:
    """Both photos and their codes, without activation maps (``note`` says why)."""
    import numpy as np

    from ..imaging import open_image

    encoder = library.encoder
    sides = []
    for path in (query_path, match_path):
        shown = open_image(path, display_side)
        packed, _ = encoder.encode_images([open_image(path, encoder.decode_side)])
        sides.append(
            Side(str(path), np.asarray(shown, dtype=np.uint8).copy(), encoder.preprocessing.crop_box(*shown.size), {}, packed[0])
        )
    bits = encoder.code_bits
    a, b = (np.unpackbits(s.packed, count=bits) for s in sides)
    return Comparison(sides[0], sides[1], bits, [int(i) for i in np.flatnonzero(a != b)], maps_feed_code(encoder.info), note)
