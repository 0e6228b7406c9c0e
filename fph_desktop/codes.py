"""Binary codes in one place: how they are packed, laid out in machine words, and compared.

Codes are ``np.packbits`` rows (q/8 bytes, big-endian within a byte). For comparing, a row is
zero-padded to whole machine words (padding bits are zero on both sides, so distances do not
change) and XORed; the popcount is ``np.bitwise_count`` on numpy >= 2, else a 256-entry table over
the words' bytes, so the project's ``numpy>=1.26`` floor holds. The evaluator and the search both
count bits here.
"""

from __future__ import annotations

import numpy as np

# np.bitwise_count exists from numpy 2.0 on.
_bitwise_count = getattr(np, "bitwise_count", None)
_POPCOUNT_LUT = np.array([bin(byte).count("1") for byte in range(256)], dtype=np.uint8)


def pack_codes(u) -> np.ndarray:
    """tanh outputs (N, q) to packed codes (N, q/8) uint8: bit 1 where u >= 0 (sign 0 -> +1). The
    one place that rule lives; both engines and the evaluator use it. Takes any array-like (a CPU
    tensor too)."""
    return pack_bits(np.asarray(u) >= 0)


def pack_bits(positive: np.ndarray) -> np.ndarray:
    """(N, q) booleans (bit 1 where the output is >= 0) to packed (N, q/8) uint8 codes."""
    return np.packbits(np.asarray(positive, dtype=bool), axis=1)


def unpack_codes(packed: np.ndarray, bits: int) -> np.ndarray:
    """Packed codes back to +-1 float32 (N, bits)."""
    return np.unpackbits(np.asarray(packed, dtype=np.uint8), axis=1, count=bits).astype(np.float32) * 2 - 1


def word_layout(code_bytes: int) -> tuple[np.dtype, int]:
    """The word type and count that hold one code with the least padding."""
    if code_bytes == 1:
        return np.dtype(np.uint8), 1
    if code_bytes == 2:
        return np.dtype(np.uint16), 1
    if code_bytes <= 4:
        return np.dtype(np.uint32), 1
    return np.dtype(np.uint64), -(-code_bytes // 8)


def as_words(packed: np.ndarray, code_bytes: int | None = None) -> np.ndarray:
    """Packed uint8 codes (N, code_bytes) as (N, W) machine words, zero-padded. Shares memory with
    ``packed`` when no padding is needed."""
    packed = np.ascontiguousarray(packed, dtype=np.uint8)
    if packed.ndim == 1:
        packed = packed[None]
    code_bytes = code_bytes or packed.shape[1]
    if packed.shape[1] != code_bytes:
        raise ValueError(f"codes have {packed.shape[1]} bytes, expected {code_bytes}")
    dtype, words = word_layout(code_bytes)
    width = dtype.itemsize * words
    if width != code_bytes:
        padded = np.zeros((packed.shape[0], width), dtype=np.uint8)
        padded[:, :code_bytes] = packed
        packed = padded
    return packed.view(dtype).reshape(packed.shape[0], words)


def popcount(words: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """Set bits of each element of an unsigned integer array (into ``out`` when given)."""
    if _bitwise_count is not None:
        return _bitwise_count(words) if out is None else _bitwise_count(words, out=out, casting="unsafe")
    words = np.ascontiguousarray(words)
    size = words.dtype.itemsize
    counts = _POPCOUNT_LUT[words.view(np.uint8)]
    if size > 1:
        counts = counts.reshape(*words.shape, size).sum(axis=-1, dtype=np.uint8)
    if out is None:
        return counts
    np.copyto(out, counts, casting="unsafe")
    return out


def distance_dtype(code_bits: int) -> np.dtype:
    return np.dtype(np.uint8) if code_bits < 255 else np.dtype(np.uint16)


def hamming_distances(query_words: np.ndarray, code_words: np.ndarray, code_bits: int) -> np.ndarray:
    """All distances (Q, N) between word arrays from :func:`as_words`, at once (small problems)."""
    out = np.zeros((len(query_words), len(code_words)), dtype=distance_dtype(code_bits))
    for w in range(code_words.shape[1]):
        out += popcount(query_words[:, w : w + 1] ^ code_words[None, :, w])
    return out
