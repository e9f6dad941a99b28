"""`customer-service-qa` on a paraphrase-style FAQ built from BANKING77, and on the bundled
sample: the fine-tuned system against the untuned base model and BM25.

    python bench/qa_paraphrase.py [--per-entry 5] [--test-per-entry 8] [--set key=value ...]

The FAQ: one entry per BANKING77 intent whose question is a real customer question (the
intent's first training question) and whose answer names the intent; training data:
the next ``--per-entry`` training questions of each intent (a few paraphrases per entry,
as a small FAQ team would write); evaluation: the first ``--test-per-entry`` test
questions of each intent. Runs with ``head.index_paraphrases=false`` (only the FAQ
questions are indexed, so every gain must come from the models), then the bundled Lumen
Bank sample with defaults. Files are written to a temporary folder, never to the repo.
"""
from __future__ import annotations

import argparse
import csv
import os
import tempfile
import time
from collections import defaultdict
from pathlib import Path

from _common import data_dir

SHOWN = ("recall@1", "recall@5", "mrr@10", "no_answer_precision")


def by_intent(path: Path) -> dict[str, list[str]]:
    groups: dict[str, list[str]] = defaultdict(list)
    with open(path, newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            groups[row["category"]].append(row["text"])
    return groups


def write(path: Path, header: list[str], rows: list[list[str]]) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def build(folder: Path, out: Path, per_entry: int, test_per_entry: int) -> tuple[Path, Path, Path]:
    train, test = by_intent(folder / "train.csv"), by_intent(folder / "test.csv")
    faq = [[intent, texts[0], f"Here is how {intent.replace('_', ' ')} works."]
           for intent, texts in sorted(train.items())]
    queries = [[q, intent] for intent, texts in sorted(train.items()) for q in texts[1:1 + per_entry]]
    held = [[q, intent] for intent, texts in sorted(test.items()) for q in texts[:test_per_entry]]
    return (write(out / "faq.csv", ["id", "question", "answer"], faq),
            write(out / "train.csv", ["query", "faq_id"], queries),
            write(out / "test.csv", ["query", "faq_id"], held))


def show(title: str, result, seconds: float) -> None:
    print(f"{title} ({seconds / 60:.1f} min)")
    rows = {"fine-tuned": result.metrics, **result.baselines}
    for name, metrics in rows.items():
        print(f"  {name:10s} " + " ".join(f"{m} {metrics[m]:.4f}" for m in SHOWN if m in metrics))
    lift = 100 * (result.metrics["recall@1"] - result.baselines["untuned"]["recall@1"])
    print(f"  recall@1 lift over untuned: {lift:+.1f} points (target >= +2.5)")
    print(f"  re-ranker: {result.notes.get('re-ranker')}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--per-entry", type=int, default=5)
    parser.add_argument("--test-per-entry", type=int, default=8)
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    parser.add_argument("--skip-sample", action="store_true")
    args = parser.parse_args()
    folder = data_dir("banking77")
    os.environ.setdefault("TUNEHUB_HOME", tempfile.mkdtemp(prefix="tunehub-bench-"))
    import tunehub

    out = Path(tempfile.mkdtemp(prefix="qa-paraphrase-"))
    faq, train, test = build(folder, out, args.per_entry, args.test_per_entry)
    started = time.perf_counter()
    result = tunehub.run_task("customer-service-qa", data=train, eval_data=test,
                              overrides=[f"dataset.faq={faq}", "head.index_paraphrases=false",
                                         *args.overrides])
    show(f"paraphrase FAQ from BANKING77: 77 entries, {args.per_entry} training and "
         f"{args.test_per_entry} test questions each, index_paraphrases=false",
         result, time.perf_counter() - started)
    if not args.skip_sample:
        started = time.perf_counter()
        result = tunehub.run_task("customer-service-qa", overrides=args.overrides)
        show("bundled Lumen Bank sample (defaults)", result, time.perf_counter() - started)


if __name__ == "__main__":
    main()
