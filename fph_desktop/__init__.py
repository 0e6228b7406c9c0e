"""fph-desktop: fine-grained look-alike search with Feature Pyramid Hashing.

Importing the package tunes glibc's malloc for PyTorch's large CPU buffers (see ``allocator``): every
entry point (the app, each CLI command, torchrun ranks, benchmarks) imports it before its first tensor.
"""

from .allocator import tune_malloc

__version__ = "0.1.0"

tune_malloc()
