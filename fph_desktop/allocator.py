"""Keep large CPU tensor buffers in the process instead of handing them back to the system after
every batch.

glibc's malloc serves big requests (a batch's activation maps: tens of MB) with fresh ``mmap`` pages
and ``munmap``s them on free, and trims the heap top after frees; every forward pass then pays page
faults and zeroing for the same buffers again. On this project's 2-core reference machine that made
every CPU forward pass about 2.4x slower than the CPU allows (``benchmarks/allocator.py``). Raising
the two thresholds once, before the first large tensor, turns the allocator into the pooled one
PyTorch's CPU path expects. Forked DataLoader workers inherit the setting; the environment variables
carry it to spawned children and to any process that starts a Python of ours.

macOS (libmalloc) and Windows (the NT heap / segment heap) keep freed large blocks cached by design,
so there is nothing to tune there; musl has no such knobs. The tuning is therefore glibc-only and a
no-op elsewhere.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import platform

M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
# 1 GiB: far above any activation buffer of our batches, far below what could exhaust memory by
# keeping one freed block around. mallopt takes an int, so 2**31 - 1 is the most it can be.
MMAP_THRESHOLD = 1 << 30
TRIM_THRESHOLD = (1 << 31) - 1
ENVIRONMENT = {"MALLOC_MMAP_THRESHOLD_": str(MMAP_THRESHOLD), "MALLOC_TRIM_THRESHOLD_": str(TRIM_THRESHOLD)}

_state: dict[str, object] = {"tuned": None}


def tune_malloc() -> bool:
    """Raise glibc's mmap and trim thresholds (once per process); ``True`` when they are in force.

    ``FPH_DESKTOP_MALLOC=default`` leaves the allocator alone (for measuring the difference).
    """
    if _state["tuned"] is not None:
        return bool(_state["tuned"])
    tuned = False
    if os.environ.get("FPH_DESKTOP_MALLOC", "").lower() != "default" and platform.system() == "Linux":
        libc_version = platform.libc_ver()[0]
        if libc_version == "glibc":
            try:
                libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
                tuned = bool(libc.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(
                    libc.mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD)
                )
            except (OSError, AttributeError):
                tuned = False
            if tuned:
                for key, value in ENVIRONMENT.items():
                    os.environ.setdefault(key, value)
    _state["tuned"] = tuned
    return tuned


def malloc_tuned() -> bool:
    """Whether :func:`tune_malloc` put the thresholds in force in this process."""
    return bool(_state["tuned"])
