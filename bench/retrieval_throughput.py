"""Search throughput of `tunehub.core.models.index` against brute-force numpy, in one run.

    python bench/retrieval_throughput.py [--vectors 100000] [--queries 1000] [--random]

Vectors (384-d, unit length) are clustered like sentence embeddings (1,000 topics plus
noise; ``--random`` for isotropic Gaussian ones). Prints queries/s and recall@10 against
the numpy result for the exact index (target: >= 3x numpy at recall 1.0) and for the
approximate (HNSW) index, with its build time. Needs no shared data.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent.parent))  # import tunehub from a checkout

TARGET = 3.0


def make_vectors(n: int, q: int, dim: int, random: bool, seed: int = 0):
    rng = np.random.default_rng(seed)
    if random:
        data = rng.standard_normal((n, dim), dtype=np.float32)
        queries = rng.standard_normal((q, dim), dtype=np.float32)
    else:
        centres = rng.standard_normal((1000, dim), dtype=np.float32)
        data = centres[rng.integers(0, 1000, n)] + 0.6 * rng.standard_normal((n, dim), dtype=np.float32)
        queries = centres[rng.integers(0, 1000, q)] + 0.6 * rng.standard_normal((q, dim), dtype=np.float32)
    data /= np.linalg.norm(data, axis=1, keepdims=True)
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    return data, queries


def numpy_top_k(data: np.ndarray, queries: np.ndarray, k: int, full_sort: bool) -> np.ndarray:
    scores = queries @ data.T  # (Q, N)
    if full_sort:
        return np.argsort(-scores, axis=1)[:, :k]
    top = np.argpartition(-scores, k, axis=1)[:, :k]
    order = np.take_along_axis(scores, top, 1).argsort(1)[:, ::-1]
    return np.take_along_axis(top, order, 1)


def timed(fn, repeats: int = 1):
    best, out = float("inf"), None
    for _ in range(repeats):
        started = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - started)
    return out, best


def recall(found: np.ndarray, truth: np.ndarray) -> float:
    return float(np.mean([len(set(a) & set(b)) / len(b) for a, b in zip(found, truth)]))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--vectors", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--dim", type=int, default=384)
    parser.add_argument("--random", action="store_true", help="isotropic vectors, no clusters")
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    from tunehub.core.models.index import VectorIndex

    k, q = 10, args.queries
    data, queries = make_vectors(args.vectors, q, args.dim, args.random)
    kind = "random" if args.random else "clustered"
    print(f"{args.vectors} x {args.dim} {kind} unit vectors, {q} queries, top {k}")

    truth, t_np = timed(lambda: numpy_top_k(data, queries, k, False), args.repeats)
    _, t_sort = timed(lambda: numpy_top_k(data, queries, k, True), 1)
    print(f"  numpy matmul + argpartition   {q / t_np:9.1f} queries/s")
    print(f"  numpy matmul + full argsort   {q / t_sort:9.1f} queries/s")

    exact = VectorIndex.build(data, kind="flat")
    (found, _), t_exact = timed(lambda: exact.search(queries, k), args.repeats)
    r = recall(found, truth)
    speedup = t_np / t_exact
    verdict = "meets" if speedup >= TARGET and r == 1.0 else "below"
    print(f"  tunehub exact (flat)          {q / t_exact:9.1f} queries/s  recall@10 {r:.4f}  "
          f"{speedup:.1f}x argpartition, {t_sort / t_exact:.1f}x argsort "
          f"(target >= {TARGET}x at recall 1.0: {verdict})")

    approx, t_build = timed(lambda: VectorIndex.build(data, kind="hnsw"), 1)
    (found, _), t_hnsw = timed(lambda: approx.search(queries, k), args.repeats)
    print(f"  tunehub approximate (HNSW)    {q / t_hnsw:9.1f} queries/s  recall@10 "
          f"{recall(found, truth):.4f}  {t_np / t_hnsw:.1f}x argpartition "
          f"(built in {t_build:.1f} s; M={approx.settings['hnsw_m']}, "
          f"efSearch={approx.settings['ef_search']})")
    single, t_single = timed(lambda: [exact.search(queries[i:i + 1], k) for i in range(100)], 1)
    print(f"  tunehub exact, one query at a time {100 / t_single:9.1f} queries/s")


if __name__ == "__main__":
    main()
