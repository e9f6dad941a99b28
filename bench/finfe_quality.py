"""Quality of `financial-sentiment-zh` with default settings on FinFE (Chinese stock-forum posts).

    python bench/finfe_quality.py [--set key=value ...]

Runs exactly what `app run-task financial-sentiment-zh --data finfe/train.csv --eval-data
finfe/test.csv` runs (the epoch is chosen on a validation slice of the training file), and
prints test accuracy and macro-F1 beside the character 1-3-gram TF-IDF + logistic regression
and majority-class baselines of the same run, the target and the wall time. Skips when
../shared/data is absent.
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time

from _common import cpu_class, data_dir

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
    for name, values in result.baselines.items():
        print(f"  baseline {name:16s} accuracy {values['accuracy']:.4f} "
              f"macro_f1 {values['macro_f1']:.4f}")
    print(f"  notes {result.notes}", flush=True)


if __name__ == "__main__":
    main()
