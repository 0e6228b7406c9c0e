"""Labelled photo collections (folder layouts, CUB-200-2011, Stanford Dogs) and batch sampling."""

from .layouts import LabelledDataset, LabelledImage, LayoutError, detect_layout, load_labelled_folder
from .sampler import PKBatchSampler

__all__ = ["LabelledDataset", "LabelledImage", "LayoutError", "PKBatchSampler", "detect_layout", "load_labelled_folder"]
