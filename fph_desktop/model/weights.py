"""Weights files: one file holds the tensors and everything needed to use them (format version, the
full config, backbone preprocessing, code length, class names, training summary) and a fingerprint
that changes whenever the codes would. Loading never unpickles objects (``weights_only=True``)."""

from __future__ import annotations

import datetime as _dt
import hashlib
import io
import json
from pathlib import Path

import torch
from torch import nn

from .. import __version__
from ..errors import BadFileError, storage_error
from ..fileio import atomic_write
from .backbones import BACKBONES
from .config import FPHConfig
from .info import WeightsInfo
from .preprocessing import Preprocessing

FORMAT = "fph-desktop-weights"
FORMAT_VERSION = 1
SUFFIX = ".fph"


class WeightsError(BadFileError):
    """A weights file that cannot be used; the message names the file and the problem."""


def model_preprocessing(model: nn.Module) -> Preprocessing:
    return model.backbone.preprocessing.with_size(model.config.image_size)


def compute_fingerprint(config: FPHConfig, preprocessing: Preprocessing, state: dict[str, torch.Tensor]) -> str:
    """SHA-256 over what decides the codes: config (less free-form notes), preprocessing, every tensor."""
    digest = hashlib.sha256()
    relevant = {k: v for k, v in config.to_dict().items() if k != "extra"}
    digest.update(json.dumps([relevant, preprocessing.to_dict()], sort_keys=True).encode())
    for key in sorted(state):
        tensor = state[key].detach().cpu().contiguous()
        digest.update(f"{key}:{tensor.dtype}:{tuple(tensor.shape)}".encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()[:16]


def save_weights(path: str | Path, model: nn.Module, class_names=(), training: dict | None = None) -> WeightsInfo:
    """Write atomically (temp file + rename), so a full disk or a crash never leaves half a file."""
    path = Path(path)
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    preprocessing = model_preprocessing(model)
    info = WeightsInfo(
        config=model.config,
        preprocessing=preprocessing,
        class_names=list(class_names),
        training=dict(training or {}),
        fingerprint=compute_fingerprint(model.config, preprocessing, state),
        created=_dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
    )
    payload = {"format": FORMAT, "format_version": FORMAT_VERSION, "metadata": info.to_json(), "state_dict": state}
    buffer = io.BytesIO()  # serialised in memory first: PyTorch's writer hides the errno of a failed write
    torch.save(payload, buffer)
    try:
        with atomic_write(path) as handle:
            handle.write(buffer.getbuffer())
    except OSError as exc:
        error = storage_error(exc, path, "saving the model", kept="a model saved there before is unchanged")
        if error is None:
            raise
        raise error from None
    return info


def read_weights(path: str | Path) -> tuple[WeightsInfo, dict[str, torch.Tensor]]:
    """Read and check a weights file without building the model."""
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"{path}: no such weights file")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:  # noqa: BLE001 - torch.load fails in many ways (zip, pickle, EOF): all mean "not readable"
        size = path.stat().st_size
        reason = "empty file" if size == 0 else "truncated, or not a PyTorch file"
        raise WeightsError(
            f"cannot be read as a weights file ({reason})", path,
            "choose another .fph file, or make one with `fph-desktop train` (or the app's Train a model)",
        ) from None  # fmt: skip
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        hint = ""
        if isinstance(payload, dict) and payload and all(isinstance(v, torch.Tensor) for v in payload.values()):
            hint = "; it looks like a plain state dict, which can serve as backbone weights for training"
        raise WeightsError(f"{path}: not an fph-desktop weights file{hint}")
    version = payload.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise WeightsError(
            f"{path}: written in weights format {version}, newer than this fph-desktop {__version__} reads "
            f"({FORMAT_VERSION}); update fph-desktop"
        )
    try:
        info = WeightsInfo.from_json(payload["metadata"])
    except (KeyError, TypeError, ValueError) as exc:
        raise WeightsError(f"{path}: damaged metadata ({exc})") from None
    if info.config.backbone not in BACKBONES:
        raise WeightsError(f"{path}: unknown backbone {info.config.backbone!r}")
    state = payload.get("state_dict")
    if not isinstance(state, dict):
        raise WeightsError(f"{path}: holds no tensors")
    if compute_fingerprint(info.config, info.preprocessing, state) != info.fingerprint:
        raise WeightsError(f"{path}: tensors do not match the file's fingerprint (the file was altered or damaged)")
    return info, state


def load_weights(path: str | Path) -> tuple[nn.Module, WeightsInfo]:
    """The model in eval mode, on the CPU, with its info. Every failure is a one-line :class:`WeightsError`."""
    from . import build_model

    info, state = read_weights(path)
    model = build_model(info.config, backbone_weights=None)
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    wrong = sorted(k for k in expected if k in state and state[k].shape != expected[k].shape)
    if missing or unexpected or wrong:
        detail = (
            (missing and f"missing tensor {missing[0]}")
            or (unexpected and f"unexpected tensor {unexpected[0]}")
            or f"tensor {wrong[0]} has shape {tuple(state[wrong[0]].shape)}, config needs {tuple(expected[wrong[0]].shape)}"
        )
        raise WeightsError(f"{path}: config does not match the tensors ({detail})")
    model.load_state_dict(state)
    model.eval()
    return model, info
