"""Tests for fph_desktop.evaluation.metrics against hand-computed values and brute force."""

import itertools
from fractions import Fraction as F

import numpy as np
import pytest

from fph_desktop import codes
from fph_desktop.evaluation import metrics
from fph_desktop.evaluation.metrics import (
    evaluate_codes,
    hamming_distance_matrix,
    mean_average_precision,
    precision_at_k,
    precision_recall_by_radius,
    tie_aware_mean_average_precision,
)

# Shared hand-worked example. Database (index: label), six items.
DB_LABELS = np.array([0, 1, 0, 1, 1, 0])

# Query A, label 0 (relevant: db 0, 2, 5; R = 3).
#   distances  db0=2 db1=1 db2=1 db3=0 db4=2 db5=3
#   stable order by (distance, index): db3 db1 db2 db0 db4 db5
#   relevance:                          N   N   R   R   N   R
#   precision at the hits: 1/3, 2/4, 3/6  ->  AP@all = (1/3 + 1/2 + 1/2) / 3 = 4/9
#   (breaking the tie db1/db2 the other way would give (1/2 + 1/2 + 1/2) / 3 = 1/2)
ROW_A = [2, 1, 1, 0, 2, 3]
LABEL_A = 0
# Query B, label 7: no relevant item in the database -> every score is 0.
ROW_B = [0, 1, 2, 3, 0, 1]
LABEL_B = 7
# Query C, label 1 (relevant: db 1, 3, 4); nothing within radius 0 or 1.
ROW_C = [2, 3, 2, 3, 2, 3]
LABEL_C = 1


def ap_reference(relevance_in_rank_order, k=None, normalization="retrieved"):
    """Plain-python AP@k, written straight from the definition, as an independent check."""
    total_relevant = sum(relevance_in_rank_order)
    cutoff = len(relevance_in_rank_order) if k is None else k
    hits, precision_sum = 0, F(0)
    for rank, is_relevant in enumerate(relevance_in_rank_order[:cutoff], start=1):
        if is_relevant:
            hits += 1
            precision_sum += F(hits, rank)
    denominator = hits if normalization == "retrieved" else min(total_relevant, cutoff)
    return precision_sum / denominator if denominator else F(0)


def brute_force_tie_aware_ap(distance_row, relevance):
    """Average AP@all over every ordering of each tie group (exhaustive)."""
    groups = [
        [index for index in range(len(distance_row)) if distance_row[index] == value] for value in sorted(set(distance_row))
    ]
    total, count = F(0), 0
    for group_orders in itertools.product(*(itertools.permutations(group) for group in groups)):
        ranking = [index for group in group_orders for index in group]
        total += ap_reference([relevance[index] for index in ranking])
        count += 1
    return total / count


# ------------------------------------------------------------------------------ mAP


def test_ap_all_ties_broken_by_database_order():
    assert mean_average_precision([ROW_A], [LABEL_A], DB_LABELS) == pytest.approx(4 / 9)


def test_real_valued_distances_use_the_same_stable_order():
    float_row = np.array(ROW_A, dtype=np.float64) * 0.37
    assert mean_average_precision([float_row], [LABEL_A], DB_LABELS) == pytest.approx(4 / 9)


def test_query_without_relevant_item_counts_zero_and_stays_in_mean():
    assert mean_average_precision([ROW_B], [LABEL_B], DB_LABELS) == 0.0
    # (4/9 + 0) / 2 = 2/9
    assert mean_average_precision([ROW_A, ROW_B], [LABEL_A, LABEL_B], DB_LABELS) == pytest.approx(2 / 9)


@pytest.mark.parametrize(
    "k, normalization, expected",
    [
        # top 2 = N N: no hit -> 0 under both normalisations
        (2, "retrieved", 0.0),
        (2, "min_rk", 0.0),
        # top 3 = N N R: sum 1/3; retrieved -> /1 = 1/3; min(R=3, 3) -> /3 = 1/9
        (3, "retrieved", 1 / 3),
        (3, "min_rk", 1 / 9),
        # top 4 = N N R R: sum 1/3 + 1/2 = 5/6; retrieved -> /2 = 5/12; min(3, 4) -> /3 = 5/18
        (4, "retrieved", 5 / 12),
        (4, "min_rk", 5 / 18),
        # k = N: both equal AP@all = 4/9
        (6, "retrieved", 4 / 9),
        (6, "min_rk", 4 / 9),
    ],
)
def test_map_at_k_both_normalizations(k, normalization, expected):
    value = mean_average_precision([ROW_A], [LABEL_A], DB_LABELS, k=k, normalization=normalization)
    assert value == pytest.approx(expected)


def test_map_at_k_over_queries():
    rows, labels = [ROW_A, ROW_B], [LABEL_A, LABEL_B]
    # (5/12 + 0) / 2 = 5/24 and (5/18 + 0) / 2 = 5/36
    assert mean_average_precision(rows, labels, DB_LABELS, k=4) == pytest.approx(5 / 24)
    assert mean_average_precision(rows, labels, DB_LABELS, k=4, normalization="min_rk") == pytest.approx(5 / 36)


def test_min_rk_uses_k_when_fewer_than_r():
    # Ranking R N R R N R (R = 4). Top 2 = R N: sum 1/1 = 1;
    # retrieved -> /1 = 1; min(R=4, k=2) = 2 -> 1/2.
    labels = np.array([0, 1, 0, 0, 1, 0])
    row = [0, 1, 2, 3, 4, 5]
    assert mean_average_precision([row], [0], labels, k=2) == pytest.approx(1.0)
    assert mean_average_precision([row], [0], labels, k=2, normalization="min_rk") == pytest.approx(0.5)


def test_map_matches_reference_on_random_data_across_chunks(monkeypatch):
    rng = np.random.default_rng(1)
    distances = rng.integers(0, 5, size=(23, 17))
    query_labels = rng.integers(0, 4, size=23)
    db_labels = rng.integers(0, 4, size=17)
    monkeypatch.setattr(metrics, "_CHUNK_ELEMENTS", 40)  # a couple of queries per chunk
    for k, normalization in [(None, "retrieved"), (5, "retrieved"), (5, "min_rk"), (17, "min_rk")]:
        expected = []
        for row, label in zip(distances, query_labels, strict=True):
            order = sorted(range(len(row)), key=lambda index: (row[index], index))
            expected.append(ap_reference([bool(db_labels[i] == label) for i in order], k, normalization))
        value = mean_average_precision(distances, query_labels, db_labels, k=k, normalization=normalization)
        assert value == pytest.approx(float(sum(expected) / len(expected)))


# ------------------------------------------------------------------------ tie-aware


def test_tie_aware_ap_hand_computed():
    # Query A groups: {db3} N | {db1 N, db2 R} | {db0 R, db4 N} | {db5} R.
    # Four orderings: NR|RN -> 40/90, RN|RN -> 45/90, NR|NR -> 37/90, RN|NR -> 42/90;
    # mean 164/360 = 41/90 (closed form: (5/12 + 9/20 + 1/2) / 3 = 41/90).
    assert tie_aware_mean_average_precision([ROW_A], [LABEL_A], DB_LABELS) == pytest.approx(41 / 90)
    assert brute_force_tie_aware_ap(ROW_A, DB_LABELS == LABEL_A) == F(41, 90)


def test_tie_aware_single_group_with_two_relevant():
    # One group R R N: arrangements RRN -> 1, RNR -> 5/6, NRR -> 7/12; mean 29/36.
    value = tie_aware_mean_average_precision([[1, 1, 1]], [0], [0, 1, 0])
    assert value == pytest.approx(29 / 36)


def test_tie_aware_no_relevant_is_zero_and_no_ties_equals_plain_ap():
    assert tie_aware_mean_average_precision([ROW_B], [LABEL_B], DB_LABELS) == 0.0
    distinct = [0.3, 0.1, 0.2, 0.0, 0.4, 0.5]  # order db3 db1 db2 db0 db4 db5 as for query A
    assert tie_aware_mean_average_precision([distinct], [LABEL_A], DB_LABELS) == pytest.approx(4 / 9)


def test_tie_aware_matches_brute_force_permutation_average(monkeypatch):
    rng = np.random.default_rng(7)
    num_db = 7
    distances = rng.integers(0, 3, size=(12, num_db))  # heavy ties, groups up to 7 items
    distances[0] = 1  # one query where everything ties
    query_labels = rng.integers(0, 3, size=12)
    db_labels = rng.integers(0, 3, size=num_db)
    monkeypatch.setattr(metrics, "_CHUNK_ELEMENTS", 20)
    expected = [
        brute_force_tie_aware_ap(list(row), db_labels == label) for row, label in zip(distances, query_labels, strict=True)
    ]
    value = tie_aware_mean_average_precision(distances, query_labels, db_labels)
    assert value == pytest.approx(float(sum(expected) / len(expected)), abs=1e-12)
    # and it really differs from the database-order mAP here
    assert value != pytest.approx(mean_average_precision(distances, query_labels, db_labels), abs=1e-6)


# ------------------------------------------------------------------- precision@k / PR


@pytest.mark.parametrize("k, expected", [(1, 0.0), (3, 1 / 3), (4, 1 / 2), (6, 1 / 2)])
def test_precision_at_k(k, expected):
    # ranking N N R R N R
    assert precision_at_k([ROW_A], [LABEL_A], DB_LABELS, k) == pytest.approx(expected)


def test_precision_at_k_over_queries():
    # (2/4 + 0) / 2 = 1/4
    assert precision_at_k([ROW_A, ROW_B], [LABEL_A, LABEL_B], DB_LABELS, 4) == pytest.approx(1 / 4)


def test_precision_recall_by_radius():
    # Query A (R=3):  r0 {db3}: 0/1, 0/3   r1 +db1,db2: 1/3, 1/3   r2 +db0,db4: 2/5, 2/3   r3 all: 3/6, 3/3
    # Query B (R=0):  precision 0 (no hit), recall defined as 0
    # Query C (R=3):  r0, r1 empty set -> precision 0, recall 0;  r2 {db0,db2,db4}: 1/3, 1/3;  r3 all: 1/2, 1
    # mean precision: 0, 1/9, (2/5 + 1/3)/3 = 11/45, (1/2 + 1/2)/3 = 1/3
    # mean recall:    0, 1/9, (2/3 + 1/3)/3 = 1/3,   (1 + 1)/3 = 2/3
    radii, precision, recall = precision_recall_by_radius(
        [ROW_A, ROW_B, ROW_C], [LABEL_A, LABEL_B, LABEL_C], DB_LABELS, code_bits=3
    )
    np.testing.assert_array_equal(radii, [0, 1, 2, 3])
    np.testing.assert_allclose(precision, [0, 1 / 9, 11 / 45, 1 / 3])
    np.testing.assert_allclose(recall, [0, 1 / 9, 1 / 3, 2 / 3])


def test_precision_recall_by_radius_real_valued_distances():
    # d = 0.0 R, 1.5 N, 2.0 R, 3.7 R (R=3): r0,r1 {0}: 1, 1/3;  r2,r3 {0,1,2}: 2/3, 2/3 (3.7 > 3)
    _, precision, recall = precision_recall_by_radius([[0.0, 1.5, 2.0, 3.7]], [0], [0, 1, 0, 0], code_bits=3)
    np.testing.assert_allclose(precision, [1, 1, 2 / 3, 2 / 3])
    np.testing.assert_allclose(recall, [1 / 3, 1 / 3, 2 / 3, 2 / 3])


# ------------------------------------------------------------------ Hamming distances


def naive_hamming(query_packed, db_packed):
    query_bits = np.unpackbits(query_packed, axis=1)
    db_bits = np.unpackbits(db_packed, axis=1)
    distances = np.zeros((len(query_bits), len(db_bits)), dtype=int)
    for i, query_code in enumerate(query_bits):
        for j, db_code in enumerate(db_bits):
            distances[i, j] = sum(int(a != b) for a, b in zip(query_code, db_code, strict=True))
    return distances


def random_packed(rng, num_codes, code_bits):
    return np.packbits(rng.integers(0, 2, size=(num_codes, code_bits), dtype=np.uint8), axis=1)


@pytest.mark.parametrize("code_bits", range(8, 257, 8))
def test_hamming_matches_naive_bit_loop(code_bits):
    rng = np.random.default_rng(code_bits)
    query_packed, db_packed = random_packed(rng, 5, code_bits), random_packed(rng, 9, code_bits)
    distances = hamming_distance_matrix(query_packed, db_packed)
    assert distances.shape == (5, 9)
    assert np.issubdtype(distances.dtype, np.integer)
    np.testing.assert_array_equal(distances, naive_hamming(query_packed, db_packed))


@pytest.mark.parametrize("code_bits", [8, 12, 48, 64, 72, 256])
def test_hamming_lookup_table_fallback(monkeypatch, code_bits):
    rng = np.random.default_rng(100 + code_bits)
    query_packed, db_packed = random_packed(rng, 6, code_bits), random_packed(rng, 7, code_bits)
    monkeypatch.setattr(codes, "_bitwise_count", None)  # as on numpy < 2.0
    monkeypatch.setattr(metrics, "_CHUNK_ELEMENTS", 50)
    np.testing.assert_array_equal(hamming_distance_matrix(query_packed, db_packed), naive_hamming(query_packed, db_packed))


def test_popcount_lookup_table():
    assert [int(codes._POPCOUNT_LUT[v]) for v in (0, 1, 3, 128, 170, 255)] == [0, 1, 2, 1, 4, 8]


def test_hamming_all_zero_vs_all_one_and_chunking(monkeypatch):
    monkeypatch.setattr(metrics, "_CHUNK_ELEMENTS", 3)
    zeros = np.zeros((4, 3), dtype=np.uint8)
    ones = np.full((2, 3), 255, dtype=np.uint8)
    np.testing.assert_array_equal(hamming_distance_matrix(zeros, ones), np.full((4, 2), 24))


# --------------------------------------------------------------------- evaluate_codes


def test_evaluate_codes_hand_example():
    # 8-bit codes with 2, 1, 1, 0, 2, 3 bits set: Hamming distances to 0x00 are ROW_A.
    db_packed = np.array([[0b11000000], [0b10000000], [0b01000000], [0], [0b00110000], [0b11100000]], dtype=np.uint8)
    query_packed = np.zeros((1, 1), dtype=np.uint8)
    results = evaluate_codes(query_packed, [LABEL_A], db_packed, DB_LABELS, ks=(3, 4))
    assert results["map_all"] == pytest.approx(4 / 9)
    assert results["map_tie_aware"] == pytest.approx(41 / 90)
    assert results["map@3"] == pytest.approx(1 / 3)
    assert results["map@4"] == pytest.approx(5 / 12)
    assert results["map@4_min_rk"] == pytest.approx(5 / 18)
    assert results["precision@4"] == pytest.approx(1 / 2)
    curve = results["pr_curve"]
    assert [point["radius"] for point in curve] == list(range(9))
    # radius 2: 2 of 5 retrieved are relevant, 2 of 3 relevant found; radius >= 3: everything
    assert curve[2]["precision"] == pytest.approx(2 / 5) and curve[2]["recall"] == pytest.approx(2 / 3)
    assert all(point["precision"] == pytest.approx(1 / 2) and point["recall"] == 1.0 for point in curve[3:])


def test_evaluate_codes_agrees_with_separate_functions(monkeypatch):
    rng = np.random.default_rng(3)
    query_packed, db_packed = random_packed(rng, 31, 16), random_packed(rng, 40, 16)
    query_labels, db_labels = rng.integers(0, 5, 31), rng.integers(0, 5, 40)
    monkeypatch.setattr(metrics, "_CHUNK_ELEMENTS", 100)
    results = evaluate_codes(query_packed, query_labels, db_packed, db_labels, ks=(5, 10))
    distances = naive_hamming(query_packed, db_packed)
    assert results["map_all"] == pytest.approx(mean_average_precision(distances, query_labels, db_labels))
    assert results["map_tie_aware"] == pytest.approx(tie_aware_mean_average_precision(distances, query_labels, db_labels))
    for k in (5, 10):
        assert results[f"map@{k}"] == pytest.approx(mean_average_precision(distances, query_labels, db_labels, k=k))
        assert results[f"map@{k}_min_rk"] == pytest.approx(
            mean_average_precision(distances, query_labels, db_labels, k=k, normalization="min_rk")
        )
        assert results[f"precision@{k}"] == pytest.approx(precision_at_k(distances, query_labels, db_labels, k))
    _, precision, recall = precision_recall_by_radius(distances, query_labels, db_labels, 16)
    np.testing.assert_allclose([point["precision"] for point in results["pr_curve"]], precision)
    np.testing.assert_allclose([point["recall"] for point in results["pr_curve"]], recall)


# ------------------------------------------------------------------------ validation


def test_invalid_inputs_are_rejected():
    with pytest.raises(ValueError):
        mean_average_precision([[0.0, np.nan]], [0], [0, 1])
    with pytest.raises(ValueError):
        mean_average_precision([ROW_A], [LABEL_A], DB_LABELS, k=7)
    with pytest.raises(ValueError):
        mean_average_precision([ROW_A], [LABEL_A], DB_LABELS, k=3, normalization="R")
    with pytest.raises(ValueError):
        precision_at_k([ROW_A], [LABEL_A], DB_LABELS, 0)
    with pytest.raises(ValueError):
        mean_average_precision([ROW_A], [LABEL_A, LABEL_B], DB_LABELS)
    with pytest.raises(TypeError):
        hamming_distance_matrix(np.zeros((2, 8), dtype=np.int64), np.zeros((2, 8), dtype=np.int64))
    with pytest.raises(ValueError):
        hamming_distance_matrix(np.zeros((2, 1), dtype=np.uint8), np.zeros((2, 2), dtype=np.uint8))


# ----------------------------------------------------------------------- performance


def clustered_codes(rng, num_codes, num_classes, code_bits, prototypes):
    labels = rng.integers(0, num_classes, num_codes)
    flips = rng.random((num_codes, code_bits)) < 0.25
    return np.packbits(prototypes[labels] ^ flips.astype(np.uint8), axis=1), labels


@pytest.mark.slow
def test_evaluate_codes_runs_at_full_cub_size_in_bounded_memory():
    rng = np.random.default_rng(0)
    prototypes = rng.integers(0, 2, (200, 64), dtype=np.uint8)
    query_packed, query_labels = clustered_codes(rng, 5794, 200, 64, prototypes)
    db_packed, db_labels = clustered_codes(rng, 5994, 200, 64, prototypes)
    results = evaluate_codes(query_packed, query_labels, db_packed, db_labels)
    assert 0.0 < results["map_all"] <= 1.0
