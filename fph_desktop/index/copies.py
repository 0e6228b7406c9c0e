"""Edited copies: one photo resized, recompressed, brightened or slightly cropped, told apart from
its look-alikes.

A hashing model's code says *what* is in a photo, so a photo's look-alikes (the same species, the
same scene) sit as close to it as its own edited copies do: on birds-dev's edited-copies benchmark a
JPEG re-save is 2–3 of 48 bits from its original and other photos of the species 4. Two things that
the index stores beside each code tell a copy from a look-alike (``benchmarks/edited_copies.py``):

- **the network's real-valued outputs** (the tanh outputs ``u`` behind the code, float16): the
  Hamming candidates re-ranked by ``sum((u_query - u_photo)^2) / 4`` (the Hamming distance when both
  are binary, a finer one when not) put a photo's copies ahead of its look-alikes, crops included;
- **a perceptual hash of the photo itself** (a DCT hash of its 32x32 grey thumbnail, 64 bits): the
  same picture, whatever its size, compression or brightness, has (nearly) the same one, whatever
  the model. A photo is an **edited copy** of another when both agree: perceptual hashes within
  :data:`COPY_PHOTO_RADIUS` of 64 bits *and* codes within :func:`copy_code_radius` (a quarter of the
  code). Either alone is not enough: a dark bird on a plain sky shares its perceptual hash with
  another dark bird on another plain sky (4 bits apart on birds-dev), and a look-alike shares its code.
  Measured on birds-dev's 1,402 photos and their edits: of the 982,101 pairs of different photos one
  passes both tests (two frames of one burst; at 8 bits a second pair, two Bobolinks posed alike, would),
  and 99.4–99.9 % of the resized, re-saved and brightened copies do. Crops change the thumbnail too
  much (6 % pass): a search finds them by the outputs' re-ranking, the groups by
  ``groups.attach_by_outputs``.

numpy (and Pillow for the hash itself), no torch: the indexer, the search and the groups all use it.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

PHOTO_HASH_BYTES = 8  # 64 bits: the 8x8 lowest frequencies of the thumbnail's DCT
PHOTO_HASH_SIDE = 32
COPY_PHOTO_RADIUS = 6  # of the 64 perceptual-hash bits
# Groups only (search ranks by the outputs instead): a photo that no perceptual hash links joins
# the set of copies it is more than 3x nearer to, by the stored outputs, than to any other photo
# among its COPY_CANDIDATES nearest codes (see groups.attach_by_outputs).
COPY_OUTPUT_RATIO = 1 / 3
COPY_CANDIDATES = 16


def copy_code_radius(code_bits: int) -> int:
    """The most code bits in which an edited copy may differ from its original (a quarter)."""
    return max(1, code_bits // 4)


def _dct_rows(n: int, rows: int) -> np.ndarray:
    """The first ``rows`` rows of the orthonormal DCT-II matrix of size ``n``."""
    k = np.arange(rows)[:, None]
    x = np.arange(n)[None, :]
    matrix = np.cos(np.pi * (2 * x + 1) * k / (2 * n)) * np.sqrt(2.0 / n)
    matrix[0] /= np.sqrt(2.0)
    return matrix.astype(np.float32)


_LOW_DCT = _dct_rows(PHOTO_HASH_SIDE, 8)


def photo_hash(image) -> bytes | None:
    """The perceptual hash of a decoded, upright photo (a PIL image; 8 bytes), or ``None`` for a
    photo without enough structure to tell it from another one (a flat colour): such a photo is
    nobody's copy."""
    from PIL import Image

    grey = image.convert("L").resize((PHOTO_HASH_SIDE, PHOTO_HASH_SIDE), Image.Resampling.BOX, reducing_gap=2.0)
    pixels = np.asarray(grey, dtype=np.float32)
    low = (_LOW_DCT @ pixels @ _LOW_DCT.T).ravel()
    if np.abs(low[1:]).max() < 1.0:  # no structure at all: every bit would be a tie
        return None
    return np.packbits(low > np.median(low)).tobytes()


def photo_hash_array(hashes: Sequence[bytes | None]) -> tuple[np.ndarray, np.ndarray]:
    """Stored hashes (``None`` where a photo has none) as ``(N,) uint64`` and a ``(N,) bool`` mask
    of the photos that have one."""
    valid = np.array([h is not None and len(h) == PHOTO_HASH_BYTES for h in hashes], dtype=bool)
    packed = b"".join(h if ok else bytes(PHOTO_HASH_BYTES) for h, ok in zip(hashes, valid, strict=True))
    words = np.frombuffer(packed, dtype=np.uint64).copy() if packed else np.zeros(0, np.uint64)
    return words, valid


def photo_hash_word(value: bytes | None) -> int | None:
    """One stored hash as the integer :func:`photo_hash_array` holds it (``None`` stays ``None``)."""
    if value is None or len(value) != PHOTO_HASH_BYTES:
        return None
    return int(np.frombuffer(value, dtype=np.uint64)[0])


def real_code_bytes(u: np.ndarray) -> bytes:
    """The real-valued outputs of one photo as stored: little-endian float16."""
    return np.asarray(u, dtype="<f2").tobytes()


def output_distances(query_real: np.ndarray, photo_reals: np.ndarray) -> np.ndarray:
    """``sum((u_query - u_photo)^2) / 4`` for each row of ``photo_reals`` (R, q): the Hamming
    distance when both are binary (+-1), a finer one when they are not (lower = closer)."""
    difference = np.asarray(photo_reals, np.float32) - np.asarray(query_real, np.float32)[None, :]
    return np.einsum("ij,ij->i", difference, difference) / 4.0


__all__ = [
    "COPY_CANDIDATES",
    "COPY_OUTPUT_RATIO",
    "COPY_PHOTO_RADIUS",
    "PHOTO_HASH_BYTES",
    "copy_code_radius",
    "output_distances",
    "photo_hash",
    "photo_hash_array",
    "photo_hash_word",
    "real_code_bytes",
]
