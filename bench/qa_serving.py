"""Serving cost of `customer-service-qa` with both stages: latency and queries/s per k.

    python bench/qa_serving.py [--model customer-service-qa@latest] [--queries 200] [--k 10,20,50] [--threads 2]

Loads a fine-tuned version (default: the latest `customer-service-qa` under TUNEHUB_HOME,
e.g. after the BANKING77 acceptance run) exactly as `app predict` and `app serve` do, then answers questions (BANKING77 test questions when ../shared/data is
there, else the bundled sample's) for each re-ranking depth k: one question per call
(p50/p99 latency, queries/s) and batches of 32 (queries/s), first stage alone beside it.
Target: p50 <= 50 ms per single question at k = 20 on 2 cores.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent.parent))  # import tunehub from a checkout

from _common import SHARED_DATA, read_column  # noqa: E402

TARGET_MS, TARGET_K = 50.0, 20


def questions(count: int) -> list[str]:
    test = SHARED_DATA / "banking77" / "test.csv"
    if test.is_file():
        texts = read_column(test, "text")
    else:
        from tunehub.plugins.customer_service import DATA

        texts = read_column(DATA / "queries.csv", "query")
    return texts[:count]


def timed(predict, batches: list[list[str]]) -> np.ndarray:
    """Seconds per call, after one warm-up call."""
    predict(batches[0])
    seconds = []
    for batch in batches:
        started = time.perf_counter()
        predict(batch)
        seconds.append(time.perf_counter() - started)
    return np.asarray(seconds)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="customer-service-qa@latest")
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--k", default="10,20,50")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    import torch

    from tunehub.core.running.runner import load
    from tunehub.plugins.customer_service.rerank import Reranker, load_cross_encoder
    from tunehub.plugins.customer_service.retrieval import entry_texts

    loaded = load("customer-service-qa", model=args.model)
    torch.set_num_threads(args.threads)
    folder, predictor = loaded.artifact.model_dir, loaded.predictor
    answering = getattr(predictor, "impl", predictor)  # the head's own FaqPredictor
    retriever, choice = answering.retriever, answering.settings.get("rerank", {})
    texts_of_entries = entry_texts(retriever.faq, answering.settings.get("document", "question"))
    weight = float(choice.get("weight", 1.0))
    cross = retriever.reranker.model if retriever.reranker is not None else None
    if cross is None and (folder / "reranker").is_dir():  # saved but unused: measure it anyway
        cross = load_cross_encoder(folder / "reranker", 64)
    if cross is None:
        print(f"{folder}: no re-ranker saved (head.rerank chose off); first stage only")
    texts = questions(args.queries)
    print(f"{folder}: {len(texts)} questions, {torch.get_num_threads()} threads, re-ranker "
          f"{'used with k=' + str(choice.get('k')) if choice.get('used') else 'not used'}")
    depths = [0] + ([int(k) for k in args.k.split(",")] if cross is not None else [])
    for k in depths:
        retriever.reranker = Reranker(cross, texts_of_entries, k, weight=weight) if k else None
        single = timed(predictor.predict, [[t] for t in texts])
        batched = timed(predictor.predict, [texts[i:i + 32] for i in range(0, len(texts), 32)])
        p50, p99 = np.percentile(single, 50) * 1000, np.percentile(single, 99) * 1000
        name = f"k={k}" if k else "first stage"
        verdict = (f" (target p50 <= {TARGET_MS:.0f} ms: {'meets' if p50 <= TARGET_MS else 'over'})"
                   if k == TARGET_K else "")
        print(f"  {name:12s} single: p50 {p50:7.1f} ms p99 {p99:7.1f} ms {len(single) / single.sum():6.1f} q/s"
              f" | batch 32: {len(texts) / batched.sum():6.1f} q/s{verdict}", flush=True)


if __name__ == "__main__":
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    main()
