"""The model used when the user has not chosen one: the shipped backbone (EfficientNet-Lite0, whose
weights come with the app, so it works offline) with unsupervised ITQ codes fitted on the folder.

One place for both front ends: the app's "Use the pretrained backbone" and ``fph-desktop index
FOLDER`` without ``--model`` fit and reuse the same file.
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


def ensure_unsupervised_model(
    progress: Progress | None, folder: str | Path, bits: int = DEFAULT_BITS, device: str | None = None
) -> str:
    """The default model for ``folder``: reused when it was fitted before (and is intact), else fitted
    now (as ``fph-desktop train --method itq`` does) and saved. ITQ needs more photos than bits: a small
    folder gets the longest code it can fit (40 photos: 32 bits) under the same file name, so the
    folder keeps one default model."""
    progress = progress or silent()
    path = unsupervised_model_path(folder, bits)
    from ..device import select_device
    from ..errors import UserError
    from ..model.weights import read_weights, save_weights

    if path.is_file():
        try:
            read_weights(path)
            return str(path)
        except UserError:
            path.unlink(missing_ok=True)  # ours and damaged (a crash, a full disk): fitted again below
    from ..train.unsupervised import fit_itq_model
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
    model = fit_itq_model(photos, DEFAULT_BACKBONE, bits, device=select_device(device), progress=progress)
    save_weights(path, model, [], {"method": "itq", "data": str(folder)})
    return str(path)
