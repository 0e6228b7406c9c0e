"""Search latency over random 64-bit codes: our numpy path, our faiss path, and faiss
``IndexBinaryFlat`` alone, measured in the same run; plus memory of the codes and peak RSS.

    python benchmarks/search_latency.py                      # 1M and 10M codes, k = 20
    python benchmarks/search_latency.py --sizes 1000000 --repeats 3

Times are the best of ``--repeats`` runs (1 query: 20 runs). Queries are random codes (not in the
index). Every numpy result is checked against the faiss path (identical ids and distances).
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from fph_desktop.index.search import SearchIndex  # noqa: E402


def best_time(fn, repeats: int) -> tuple[float, object]:
    best, result = float("inf"), None
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - start)
    return best, result


def peak_rss_child(n_codes: int, n_queries: int, k: int) -> None:
    """Run in a fresh process: peak RSS of building and searching ``n_codes`` (no torch loaded)."""
    base = _vm_hwm_mib()
    rng = np.random.default_rng(0)
    codes = rng.integers(0, 256, size=(n_codes, 8), dtype=np.uint8)
    index = SearchIndex(codes, 64, backend="numpy")
    del codes  # 64-bit codes: the index views the array, so this frees nothing, as intended
    index.topk(rng.integers(0, 256, size=(n_queries, 8), dtype=np.uint8), k)
    print(f"{base:.0f} {_vm_hwm_mib():.0f} {index.nbytes / 2**20:.0f}")


def _vm_hwm_mib() -> float:
    """Peak RSS of this process (VmHWM; unlike ru_maxrss it does not inherit the parent's peak)."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000_000, 10_000_000])
    parser.add_argument("--queries", type=int, nargs="+", default=[1, 1000])
    parser.add_argument("-k", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=2, help="runs per many-query measurement (best kept)")
    parser.add_argument("--rss-child", nargs=3, type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.rss_child:
        peak_rss_child(*args.rss_child)
        return

    import faiss

    print(f"CPU threads: numpy path {os.cpu_count()}, faiss {faiss.omp_get_max_threads()}; k = {args.k}")
    rng = np.random.default_rng(1)
    rows = []
    for n_codes in args.sizes:
        codes = rng.integers(0, 256, size=(n_codes, 8), dtype=np.uint8)
        by_numpy = SearchIndex(codes, 64, backend="numpy")
        by_faiss = SearchIndex(codes, 64, backend="faiss")
        alone = faiss.IndexBinaryFlat(64)  # faiss defaults (heap selection)
        alone.add(codes)
        counting = faiss.IndexBinaryFlat(64)  # faiss alone in the mode our faiss path uses
        counting.use_heap = False
        counting.add(codes)
        print(
            f"{n_codes:,} codes: numpy index holds {by_numpy.nbytes / 1e6:.1f} MB ({by_numpy.nbytes / n_codes:.0f} bytes a code)"
        )
        for n_queries in args.queries:
            queries = rng.integers(0, 256, size=(n_queries, 8), dtype=np.uint8)
            repeats = 20 if n_queries == 1 else args.repeats
            t_numpy, (d1, i1) = best_time(lambda by_numpy=by_numpy, queries=queries: by_numpy.topk(queries, args.k), repeats)
            t_fpath, (d2, i2) = best_time(lambda by_faiss=by_faiss, queries=queries: by_faiss.topk(queries, args.k), repeats)
            t_alone, _ = best_time(lambda alone=alone, queries=queries: alone.search(queries, args.k), repeats)
            t_count, _ = best_time(lambda counting=counting, queries=queries: counting.search(queries, args.k), repeats)
            identical = bool((i1 == i2).all() and (d1 == d2).all())
            rows.append((n_codes, n_queries, t_numpy, t_fpath, t_alone, t_count, identical))
            print(
                f"  {n_queries:5d} queries: numpy {t_numpy * 1e3:9.1f} ms   faiss path {t_fpath * 1e3:9.1f} ms   "
                f"faiss alone {t_alone * 1e3:9.1f} ms (counting mode {t_count * 1e3:9.1f} ms)   identical={identical}",
                flush=True,
            )
        del by_numpy, by_faiss, alone, counting, codes

    print(
        "\n| codes | queries | numpy ms | faiss path ms | faiss alone ms (default / counting) | numpy / best faiss alone "
        "| faiss path / faiss alone counting | identical |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|---|")
    for n_codes, n_queries, t_numpy, t_fpath, t_alone, t_count, identical in rows:
        print(
            f"| {n_codes:,} | {n_queries} | {t_numpy * 1e3:.1f} | {t_fpath * 1e3:.1f} | "
            f"{t_alone * 1e3:.1f} / {t_count * 1e3:.1f} | "
            f"{t_numpy / min(t_alone, t_count):.2f} | {t_fpath / t_count:.2f} | {identical} |"
        )

    largest = max(args.sizes)
    out = subprocess.run(
        [sys.executable, __file__, "--rss-child", str(largest), str(max(args.queries)), str(args.k)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    print(
        f"\nPeak RSS searching {largest:,} codes with {max(args.queries)} queries (fresh process, numpy path): "
        f"{out[1]} MiB (interpreter + numpy at start: {out[0]} MiB; codes: {out[2]} MiB)"
    )


if __name__ == "__main__":
    main()
