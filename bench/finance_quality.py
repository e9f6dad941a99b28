"""Quality of `financial-sentiment` with default settings on Financial PhraseBank.

    python bench/finance_quality.py [allagree] [50agree] [--set key=value ...]

Runs exactly what `app run-task financial-sentiment --data <subset>_train.csv
--eval-data <subset>_test.csv` runs, and prints accuracy and macro-F1 beside the
baselines, the targets and the wall time. Skips when ../shared/data is absent.
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time

from _common import data_dir

TARGETS = {"allagree": 0.95, "50agree": 0.84}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("subsets", nargs="*", default=["allagree", "50agree"])
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    args = parser.parse_args()
    folder = data_dir("financial_phrasebank")
    os.environ.setdefault("TUNEHUB_HOME", tempfile.mkdtemp(prefix="tunehub-bench-"))
    import tunehub

    for subset in args.subsets:
        started = time.perf_counter()
        result = tunehub.run_task(
            "financial-sentiment", data=folder / f"{subset}_train.csv",
            eval_data=folder / f"{subset}_test.csv", overrides=args.overrides,
        )
        minutes = (time.perf_counter() - started) / 60
        acc, f1 = result.metrics["accuracy"], result.metrics["macro_f1"]
        verdict = "meets" if acc >= TARGETS[subset] else "below"
        print(f"{subset:9s} accuracy {acc:.4f} macro_f1 {f1:.4f} "
              f"(target accuracy >= {TARGETS[subset]}: {verdict}) in {minutes:.1f} min; "
              f"overrides {args.overrides or 'none'}")
        for name, values in result.baselines.items():
            print(f"  baseline {name:16s} accuracy {values['accuracy']:.4f} "
                  f"macro_f1 {values['macro_f1']:.4f}")
        print(f"  notes {result.notes}", flush=True)


if __name__ == "__main__":
    main()
