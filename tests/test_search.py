"""Exact Hamming search: numpy and faiss agree, ties keep file order, radius is inclusive,
re-ranking breaks ties by evidence."""

from __future__ import annotations

import numpy as np
import pytest

from fph_desktop.index.search import (
    SearchIndex,
    as_words,
    asymmetric_distances,
    faiss_available,
    hamming_distances,
    select_smallest,
)


def brute_force(queries, codes, bits, k):
    """Reference: every distance, then a stable sort by (distance, id)."""
    dist = hamming_distances(as_words(queries), as_words(codes), bits).astype(np.int64)
    order = np.argsort(dist, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(dist, order, axis=1), order


def random_codes(n, bits, seed):
    return np.random.default_rng(seed).integers(0, 256, size=(n, bits // 8), dtype=np.uint8)


@pytest.mark.parametrize(
    "bits,n,k", [(8, 3000, 50), (16, 20000, 37), (48, 50000, 10), (64, 70000, 20), (128, 9000, 5), (256, 3000, 3)]
)
def test_numpy_topk_matches_brute_force(bits, n, k):
    codes = random_codes(n, bits, bits)
    queries = np.concatenate([codes[[5, n - 1]], random_codes(70, bits, 1000 + bits)])
    dists, ids = SearchIndex(codes, bits, backend="numpy").topk(queries, k)
    ref_d, ref_i = brute_force(queries, codes, bits, k)
    np.testing.assert_array_equal(ids, ref_i)
    np.testing.assert_array_equal(dists, ref_d)
    assert ids[0, 0] == 5 and dists[0, 0] == 0


@pytest.mark.skipif(not faiss_available(), reason="faiss-cpu is not installed (optional extra)")
@pytest.mark.parametrize("bits,n,k", [(8, 5000, 100), (16, 40000, 50), (64, 60000, 20), (128, 9000, 7)])
def test_numpy_and_faiss_return_identical_ids_and_distances(bits, n, k):
    codes = random_codes(n, bits, bits)
    codes[100:150] = codes[3]  # many exact duplicates: ties at distance 0
    queries = np.concatenate([codes[[3, 7]], random_codes(40, bits, 7 + bits)])
    by_numpy = SearchIndex(codes, bits, backend="numpy")
    by_faiss = SearchIndex(codes, bits, backend="faiss")
    d1, i1 = by_numpy.topk(queries, k)
    d2, i2 = by_faiss.topk(queries, k)
    np.testing.assert_array_equal(i1, i2)
    np.testing.assert_array_equal(d1, d2)
    for radius in (0, bits // 4):
        for (a_ids, a_d), (b_ids, b_d) in zip(
            by_numpy.within_radius(queries, radius), by_faiss.within_radius(queries, radius), strict=True
        ):
            np.testing.assert_array_equal(a_ids, b_ids)
            np.testing.assert_array_equal(a_d, b_d)


def test_ties_keep_file_order_across_blocks_and_threads():
    bits = 16
    codes = np.zeros((300_000, 2), np.uint8)
    codes[::3] = [0, 1]  # distance 1 from the query, every third row
    codes[7] = [0xFF, 0xFF]
    index = SearchIndex(codes, bits, backend="numpy", threads=2)
    dists, ids = index.topk(np.zeros((1, 2), np.uint8), 10)
    # Distance 0 rows are those not divisible by 3 (except row 7), in row order.
    expected = [i for i in range(20) if i % 3 and i != 7][:10]
    assert ids[0].tolist() == expected and dists[0].tolist() == [0] * 10
    many = index.topk(np.zeros((130, 2), np.uint8), 10)[1]  # query blocks split over threads
    assert (many == ids[0]).all()


def test_select_smallest_uses_distance_then_position():
    distances = np.array([3, 1, 2, 1, 0, 2, 1, 3], dtype=np.uint8)
    assert select_smallest(distances, 4, 8).tolist() == [4, 1, 3, 6]
    assert select_smallest(distances, 20, 8).tolist() == [4, 1, 3, 6, 2, 5, 0, 7]
    assert select_smallest(distances, 0, 8).tolist() == []


def test_radius_is_inclusive_and_sorted():
    codes = np.array([[0b0000_0111], [0b0000_0001], [0], [0b1111_1111], [0b0000_0011]], np.uint8)
    ((ids, dists),) = SearchIndex(codes, 8, backend="numpy").within_radius(np.zeros((1, 1), np.uint8), 2)
    assert ids.tolist() == [2, 1, 4] and dists.tolist() == [0, 1, 2]


def test_k_larger_than_the_index_and_empty_index():
    codes = random_codes(5, 16, 0)
    dists, ids = SearchIndex(codes, 16).topk(codes[:2], 50)
    assert ids.shape == (2, 5) and sorted(ids[0].tolist()) == [0, 1, 2, 3, 4]
    empty = SearchIndex(np.zeros((0, 2), np.uint8), 16)
    assert empty.topk(codes[:1], 5)[1].shape == (1, 0)
    assert len(empty.within_radius(codes[:1], 3)[0][0]) == 0


def test_64_bit_codes_take_8_bytes_each():
    index = SearchIndex(random_codes(1_000_000, 64, 0), 64, backend="numpy")
    assert index.nbytes == 8_000_000


def test_query_with_wrong_code_length_is_refused():
    with pytest.raises(ValueError, match="32 bits.*16"):
        SearchIndex(random_codes(10, 16, 0), 16).topk(random_codes(1, 32, 1), 3)


def test_asymmetric_distance_equals_hamming_for_binary_queries():
    codes = random_codes(50, 32, 3)
    query_bits = np.unpackbits(codes[:1], axis=1).astype(np.float32) * 2 - 1
    soft = asymmetric_distances(query_bits[0], codes, 32)
    np.testing.assert_allclose(soft, hamming_distances(as_words(codes[:1]), as_words(codes), 32)[0])


def test_rerank_breaks_hamming_ties_by_evidence():
    # Two candidates at Hamming distance 1 from sign(u): the one disagreeing on the weak bit ranks first.
    u = np.array([0.9, 0.9, 0.9, 0.9, 0.9, 0.9, 0.9, 0.1], np.float32)  # sign: all ones
    strong_flip = np.packbits([[0, 1, 1, 1, 1, 1, 1, 1]], axis=1)  # disagrees where u is sure
    weak_flip = np.packbits([[1, 1, 1, 1, 1, 1, 1, 0]], axis=1)  # disagrees where u is unsure
    index = SearchIndex(np.concatenate([strong_flip, weak_flip]), 8)
    query = np.packbits([[1] * 8], axis=1)
    plain_d, plain_i, _ = index.search(query, 2)
    assert plain_i[0].tolist() == [0, 1] and plain_d[0].tolist() == [1, 1]  # file order
    d, i, soft = index.search(query, 2, query_real=u[None], rerank_depth=10)
    assert i[0].tolist() == [1, 0] and d[0].tolist() == [1, 1] and soft[0][0] < soft[0][1]


def test_search_on_numpy_older_than_2_gives_the_same_ids_and_distances(monkeypatch):
    """pyproject allows numpy 1.26, which has no np.bitwise_count: the table fallback must rank alike."""
    from fph_desktop import codes as codes_module

    rng = np.random.default_rng(7)
    for bits in (16, 48, 64, 96):
        packed = rng.integers(0, 256, size=(300, bits // 8), dtype=np.uint8)
        queries = packed[:5] ^ rng.integers(0, 2, size=(5, bits // 8), dtype=np.uint8)
        index = SearchIndex(packed, bits, backend="numpy")
        expected_knn, expected_radius = index.topk(queries, 10), index.within_radius(queries, bits // 4)
        monkeypatch.setattr(codes_module, "_bitwise_count", None)
        slow = SearchIndex(packed, bits, backend="numpy")
        for expected, got in zip(expected_knn, slow.topk(queries, 10), strict=True):
            np.testing.assert_array_equal(expected, got)
        for (ids, dist), (ids2, dist2) in zip(expected_radius, slow.within_radius(queries, bits // 4), strict=True):
            np.testing.assert_array_equal(ids, ids2)
            np.testing.assert_array_equal(dist, dist2)
        monkeypatch.undo()
