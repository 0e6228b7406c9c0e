"""Fitting ITQ (Gong & Lazebnik, CVPR 2011) on descriptors, in numpy: shared by the PyTorch model
(:class:`~.itq.ITQHash`) and the fit an install without PyTorch makes over the descriptor graph."""

from __future__ import annotations

import numpy as np


def fit_itq(features: np.ndarray, bits: int, iterations: int = 50, seed: int = 0):
    """Fit centring, PCA and the ITQ rotation on ``features`` (n, d).

    Returns ``(mean, projection, scale)``: codes are ``sign((x - mean) @ projection)``; ``scale`` makes
    ``tanh`` of the projection a sensible real-valued output for asymmetric re-ranking.
    """
    features = np.asarray(features, dtype=np.float64)
    n, dim = features.shape
    if n <= bits or dim < bits:
        raise ValueError(
            f"ITQ with {bits} bits needs more than {bits} images and feature dimensions (got {n} images, {dim} dims)"
        )
    mean = features.mean(axis=0)
    centred = features - mean
    covariance = centred.T @ centred / (n - 1)
    eigenvalues, eigenvectors = np.linalg.eigh(covariance)
    pca = eigenvectors[:, np.argsort(eigenvalues)[::-1][:bits]]
    projected = centred @ pca
    rng = np.random.default_rng(seed)
    rotation, _ = np.linalg.qr(rng.standard_normal((bits, bits)))
    for _ in range(iterations):
        codes = np.where(projected @ rotation >= 0, 1.0, -1.0)
        left, _, right_t = np.linalg.svd(codes.T @ projected)
        rotation = (left @ right_t).T
    projection = pca @ rotation
    scale = 1.0 / np.maximum((centred @ projection).std(axis=0), 1e-6)
    return mean.astype(np.float32), projection.astype(np.float32), scale.astype(np.float32)
