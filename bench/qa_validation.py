"""First-stage settings of `customer-service-qa` compared on a validation slice of BANKING77
*training* data (test.csv is never read), so defaults are chosen without the test set.

    python bench/qa_validation.py [--fraction 0.1] [--seed 7] [--set key=value ...]

Holds out ``--fraction`` of banking77/train.csv, stratified by category, trains on the
rest exactly as the acceptance run does (the run's own calibration slice comes out of
the remaining part), and evaluates the first stage (``head.rerank=false``) on the held-out
questions beside the untuned base model and BM25. Files go to a temporary folder, never
to the repo. Skips when ../shared/data is absent.
"""
from __future__ import annotations

import argparse
import csv
import os
import tempfile
import time
from pathlib import Path

from _common import data_dir

SHOWN = ("recall@1", "recall@5", "mrr@10", "no_answer_precision")


def split(source: Path, out: Path, fraction: float, seed: int) -> tuple[Path, Path]:
    """(train part, validation part) of ``source``, stratified by category."""
    from tunehub.core.running.data import stratified_split

    with open(source, newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    keep, held = stratified_split([row["category"] for row in rows], fraction, seed)
    paths = []
    for name, picked in (("train.csv", keep), ("validation.csv", held)):
        with open(out / name, "w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=["text", "category"])
            writer.writeheader()
            writer.writerows({"text": rows[i]["text"], "category": rows[i]["category"]}
                             for i in sorted(picked))
        paths.append(out / name)
    return paths[0], paths[1]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--fraction", type=float, default=0.1)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    args = parser.parse_args()
    folder = data_dir("banking77")
    os.environ.setdefault("TUNEHUB_HOME", tempfile.mkdtemp(prefix="tunehub-bench-"))
    import tunehub

    train, validation = split(folder / "train.csv", Path(tempfile.mkdtemp(prefix="qa-val-")),
                              args.fraction, args.seed)
    overrides = ["dataset.columns.query=text", "dataset.columns.faq_id=category",
                 "head.rerank=false", *args.overrides]
    started, cpu = time.perf_counter(), time.process_time()
    result = tunehub.run_task("customer-service-qa", data=train, eval_data=validation,
                              overrides=overrides)
    minutes, cpu_minutes = (time.perf_counter() - started) / 60, (time.process_time() - cpu) / 60
    print(f"validation ({args.fraction:.0%} of banking77/train.csv, seed {args.seed}) in "
          f"{minutes:.1f} min wall, {cpu_minutes:.1f} min CPU; overrides {args.overrides or 'none'}")
    for name, metrics in {"fine-tuned": result.metrics, **result.baselines}.items():
        print(f"  {name:10s} " + " ".join(f"{m} {metrics[m]:.4f}" for m in SHOWN if m in metrics))
    print(f"  train seconds {result.notes.get('train seconds')}; "
          f"pairs {result.notes.get('training pairs')}", flush=True)


if __name__ == "__main__":
    main()
