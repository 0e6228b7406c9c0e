"""Look-alike groups of 10,000 (and 100,000) 48-bit codes at radius 0, 4 and 8, against a bare
all-pairs popcount pass in the same run. Target: 10,000 photos in <= 2 s at radius <= 8 on 2 cores.

    python benchmarks/groups.py                         # 10,000 and 100,000 codes
    python benchmarks/groups.py --sizes 10000 --repeats 5

The codes are clustered like a photo folder's: N/50 "species" centres; a photo is its species'
centre with each bit flipped with probability 0.15 (two photos of one species are 12 bits apart on
average, and about one pair in ten is within 8); then 30 % more photos are edited copies of
random photos (1 to 5 copies each, each bit flipped with probability 0.05, about 2.4 bits), a tenth
of the copies byte-identical (no bit flipped, the same content hash). So radius 0 finds the exact
and near-exact copies, and radius 8 pairs many photos of one species too, where connected
components would chain them into giant groups (the largest component is reported beside the
largest group).

Timed: ``find_groups`` whole (pairs + grouping + the result objects; the pair search alone in
brackets), best of ``--repeats``. The reference is the least any exact all-pairs method in numpy
does: XOR + ``np.bitwise_count`` + compare over the full N x N square, one thread, rows in chunks;
it also counts the pairs, which must equal ours. Results: benchmarks/results/groups.json.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from fph_desktop.codes import as_words, popcount  # noqa: E402
from fph_desktop.index.groups import find_groups, find_pairs  # noqa: E402
from fph_desktop.index.search import default_threads  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "groups.json"
BITS = 48
RADII = (0, 4, 8)


def clustered_codes(n_photos: int, seed: int = 0) -> tuple[np.ndarray, list[bytes]]:
    """(packed codes (n_photos, 6), content hashes): see the module docstring."""
    rng = np.random.default_rng(seed)
    n_base = int(round(n_photos / 1.3))
    centres = rng.random((max(1, n_photos // 50), BITS)) < 0.5
    species = rng.integers(0, len(centres), n_base)
    bits = centres[species] ^ (rng.random((n_base, BITS)) < 0.15)
    hashes = [i.to_bytes(8, "little") for i in range(n_base)]
    sources = []
    while len(sources) < n_photos - n_base:
        source = int(rng.integers(0, n_base))
        sources += [source] * int(rng.integers(1, 6))
    sources = np.array(sources[: n_photos - n_base])
    exact = rng.random(len(sources)) < 0.1
    flips = (rng.random((len(sources), BITS)) < 0.05) & ~exact[:, None]
    copies = bits[sources] ^ flips
    hashes += [
        hashes[s] if e else (n_base + i).to_bytes(8, "little") for i, (s, e) in enumerate(zip(sources, exact, strict=True))
    ]
    order = rng.permutation(n_photos)  # copies scattered through the folder, as file order would
    packed = np.packbits(np.concatenate([bits, copies])[order], axis=1)
    return packed, [hashes[i] for i in order]


def bare_all_pairs(packed: np.ndarray, radius: int) -> tuple[float, np.ndarray]:
    """Seconds of one XOR + popcount + compare pass over the full square (one thread), and the
    number of ordered pairs i != j at each distance 0..radius."""
    words = as_words(packed)[:, 0]
    counts = np.zeros(radius + 1, np.int64)
    started = time.perf_counter()
    rows = max(1, (1 << 22) // len(words))
    for start in range(0, len(words), rows):
        distance = popcount(words[start : start + rows, None] ^ words[None, :])
        close = distance[distance <= radius]
        counts += np.bincount(close, minlength=radius + 1)
    seconds = time.perf_counter() - started
    counts[0] -= len(words)  # every code with itself
    return seconds, counts


def largest_component(n_photos: int, first: np.ndarray, second: np.ndarray) -> int:
    """The largest group plain connected components would make of the same pairs."""
    if not len(first):
        return 1
    graph = coo_matrix((np.ones(len(first), np.int8), (first, second)), shape=(n_photos, n_photos))
    _, labels = connected_components(graph, directed=False)
    return int(np.bincount(labels).max())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--repeats", type=int, default=3, help="runs per measurement (best kept; 1 above 50,000 codes)")
    args = parser.parse_args()

    threads = default_threads()
    print(f"{os.cpu_count()} CPU cores, {threads} threads for the pair search, numpy {np.__version__}; {BITS}-bit codes")
    rows = []
    for n_photos in args.sizes:
        packed, hashes = clustered_codes(n_photos)
        names = [f"photo_{i:06d}.jpg" for i in range(n_photos)]
        sizes = [1_000_000] * n_photos
        bare_seconds, bare_counts = bare_all_pairs(packed, max(RADII))
        repeats = 1 if n_photos > 50_000 else args.repeats
        for radius in RADII:
            best_pairs = best_total = float("inf")
            for _ in range(repeats):
                started = time.perf_counter()
                first, second, _ = find_pairs(packed, BITS, radius, threads)
                best_pairs = min(best_pairs, time.perf_counter() - started)
                started = time.perf_counter()
                grouping = find_groups(packed, BITS, radius, names, sizes, hashes, threads=threads)
                best_total = min(best_total, time.perf_counter() - started)
            expected = int(bare_counts[: radius + 1].sum()) // 2
            row = {
                "photos": n_photos,
                "radius": radius,
                "pairs": grouping.pairs,
                "pairs_match_reference": grouping.pairs == expected,
                "groups": len(grouping.groups),
                "photos_in_groups": sum(len(g) for g in grouping.groups),
                "exact_copies": sum(g.redundant_copies for g in grouping.groups),
                "largest_group": max((len(g) for g in grouping.groups), default=0),
                "largest_connected_component": largest_component(n_photos, first, second),
                "seconds": round(best_total, 4),
                "seconds_pairs_only": round(best_pairs, 4),
                "bare_all_pairs_seconds": round(bare_seconds, 4),
                "ratio_to_bare": round(best_total / bare_seconds, 3),
            }
            rows.append(row)
            print(
                f"{n_photos:,} codes, radius {radius}: {best_total:.3f} s ({best_pairs:.3f} s pairs), "
                f"bare all-pairs pass {bare_seconds:.3f} s, ratio {best_total / bare_seconds:.2f}; "
                f"{grouping.pairs:,} pairs (matches the reference: {row['pairs_match_reference']}), "
                f"{row['groups']:,} groups of {row['photos_in_groups']:,} photos, largest {row['largest_group']} "
                f"(connected components: {row['largest_connected_component']:,}), {row['exact_copies']} exact copies",
                flush=True,
            )

    print(
        "\n| photos | radius | pairs | groups (photos) | largest group / component | seconds (pairs only) "
        "| bare all-pairs s | ratio |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(
            f"| {r['photos']:,} | {r['radius']} | {r['pairs']:,} | {r['groups']:,} ({r['photos_in_groups']:,}) | "
            f"{r['largest_group']} / {r['largest_connected_component']:,} | {r['seconds']:.3f} ({r['seconds_pairs_only']:.3f}) "
            f"| {r['bare_all_pairs_seconds']:.3f} | {r['ratio_to_bare']:.2f} |"
        )
    results = {
        "command": " ".join(["python benchmarks/groups.py", *sys.argv[1:]]),
        "cpu_cores": os.cpu_count(),
        "threads": threads,
        "numpy": np.__version__,
        "code_bits": BITS,
        "codes": "clustered: N/50 species centres, photos flip each bit w.p. 0.15; +30 % edited copies "
        "(1-5 per source, each bit w.p. 0.05; a tenth byte-identical)",
        "rows": rows,
    }
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
