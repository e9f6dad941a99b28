"""Quality of `financial-sentiment-zh` with default settings on FinFE (Chinese stock-forum posts).

    python bench/finfe_quality.py [--set key=value ...]

Runs exactly what `app run-task financial-sentiment-zh --data finfe/train.csv --eval-data
finfe/test.csv` runs (the epoch is chosen on a validation slice of the training file), and
prints test accuracy and macro-F1 beside the character 1-3-gram TF-IDF + logistic regression
and majority-class baselines of the same run, the target and the wall time. Skips when
../shared/data is absent.

About half of FinFE's test posts repeat a training post word for word, so it also scores the
fine-tuned model and the same baselines on the test rows whose text is in no training row:
the figures for posts neither side has seen.
"""
from __future__ import annotations

import argparse
import csv
import os
import tempfile
import time
from pathlib import Path

from _common import cpu_class, data_dir, read_column

TARGET = 0.82


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    args = parser.parse_args()
    folder = data_dir("finfe")
    os.environ.setdefault("TUNEHUB_HOME", tempfile.mkdtemp(prefix="tunehub-bench-"))
    import tunehub

    started = time.perf_counter()
    result = tunehub.run_task("financial-sentiment-zh", data=folder / "train.csv",
                              eval_data=folder / "test.csv", overrides=args.overrides)
    minutes = (time.perf_counter() - started) / 60
    acc, f1 = result.metrics["accuracy"], result.metrics["macro_f1"]
    verdict = "meets" if acc >= TARGET else "below"
    print(f"finfe accuracy {acc:.4f} macro_f1 {f1:.4f} (target accuracy >= {TARGET}: "
          f"{verdict}) in {minutes:.1f} min; overrides {args.overrides or 'none'}; {cpu_class()}")
    print_baselines(result.baselines)
    print(f"  notes {result.notes}", flush=True)
    unseen_rows(folder, result.version)


def unseen_rows(folder: Path, version: str) -> None:
    """The run's version and its baselines on the test rows whose text no training row has."""
    import tunehub
    from tunehub.core.extending.plugins import load_catalog
    from tunehub.core.running.results import score
    from tunehub.core.running.runner import baseline_fn, version_config

    task = "financial-sentiment-zh"
    seen = {text.strip() for text in read_column(folder / "train.csv", "text")}
    with open(folder / "test.csv", newline="", encoding="utf-8") as source:
        reader = csv.DictReader(source)
        rows = [row for row in reader if row["text"].strip() not in seen]
    ref = f"{task}@{version}"
    catalog = load_catalog()
    config = version_config(task, model=ref, catalog=catalog)[1]
    head = catalog.head_of(catalog.task(task))
    with tempfile.TemporaryDirectory(prefix="finfe-") as scratch:
        unseen = Path(scratch) / "test_unseen.csv"
        with open(unseen, "w", newline="", encoding="utf-8") as out:
            writer = csv.DictWriter(out, fieldnames=reader.fieldnames)
            writer.writeheader()
            writer.writerows(rows)
        model = tunehub.evaluate(task, model=ref, data=unseen, write=False).metrics
        data = head.load_data(config, {"train": folder / "train.csv", "eval": unseen})
    print(f"on the {len(rows)} test rows whose text is in no training row: {ref} accuracy "
          f"{model['accuracy']:.4f} macro_f1 {model['macro_f1']:.4f}")
    print_baselines({name: score(catalog, config["metrics"],
                                 baseline_fn(catalog, head, name)(data, config))[0]
                     for name in config["baselines"]})


def print_baselines(baselines: dict) -> None:
    for name, values in baselines.items():
        print(f"  baseline {name:16s} accuracy {values['accuracy']:.4f} "
              f"macro_f1 {values['macro_f1']:.4f}", flush=True)


if __name__ == "__main__":
    main()
