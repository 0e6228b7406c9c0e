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
    """The default model for ``folder``: reused when it was fitted before, else fitted now (as
    ``fph-desktop train --method itq`` does) and saved."""
    progress = progress or silent()
    path = unsupervised_model_path(folder, bits)
    if path.is_file():
        return str(path)
    from ..device import select_device
    from ..model.weights import save_weights
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
    progress.set_status(f"Fitting {bits}-bit unsupervised codes on {len(photos)} photos (pretrained EfficientNet-Lite0)…")
    model = fit_itq_model(photos, DEFAULT_BACKBONE, bits, device=select_device(device), progress=progress)
    save_weights(path, model, [], {"method": "itq", "data": str(folder)})
    return str(path)
