"""Which torch device to run on: CUDA if present, then Apple MPS, else the CPU."""

from __future__ import annotations

import torch

from .errors import BadArgumentError


def select_device(preferred: str | None = None) -> torch.device:
    """``preferred`` ("cpu", "cuda", "cuda:1", "mps") wins when it is available; ``None``/"auto" picks."""
    if preferred and preferred != "auto":
        try:
            device = torch.device(preferred)
        except RuntimeError:
            raise BadArgumentError(f"unknown device {preferred!r}", hint="use auto, cpu, cuda, cuda:N or mps") from None
        if device.type == "cuda" and not torch.cuda.is_available():
            raise BadArgumentError(f"device {preferred} asked for, but PyTorch sees no CUDA GPU here", hint="use --device cpu")
        if device.type == "mps" and not torch.backends.mps.is_available():
            raise BadArgumentError("device mps asked for, but Apple MPS is not available here", hint="use --device cpu")
        return device
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def describe_device(device: torch.device) -> str:
    if device.type == "cuda":
        return f"GPU: {torch.cuda.get_device_name(device)}"
    if device.type == "mps":
        return "Apple GPU (MPS)"
    return f"CPU ({torch.get_num_threads()} threads)"
