"""The automatic schedule against fixed epoch counts: accuracy and wall time.

    python bench/epochs_vs_auto.py [50agree] [banking77] [--epochs 2,3,4] [--set key=value ...]

Runs `financial-sentiment`'s defaults (``train.epochs = "auto"``, early stopping on the
validation slice) and the same run with each fixed epoch count (early stopping off, so
each count runs in full), on:

- ``50agree``: Financial PhraseBank 50Agree (3,870 training rows, 968 test rows);
- ``banking77``: BANKING77 as sentence classification (10,003 training rows, 77 intents,
  3,080 test rows): what the same command does with a 10,000-row file and other labels
  (``--set dataset.columns.label=category --set dataset.labels=``).

Prints test accuracy, the epochs trained, why training stopped and the wall time of each,
then the gap between the default and the best fixed count (target: within 1 point, the
default run on 10,000 rows in <= 5 min where bf16 is native, <= 15 min without). Skips
when ../shared/data is absent.
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time

from _common import cpu_class, data_dir

SETS = {
    "50agree": ("financial_phrasebank", "50agree_train.csv", "50agree_test.csv", []),
    "banking77": ("banking77", "train.csv", "test.csv",
                  ["dataset.columns.label=category", "dataset.labels="]),
}


def run(name: str, overrides: list[str]) -> tuple[float, str, float]:
    import tunehub

    folder_name, train, test, extra = SETS[name]
    folder = data_dir(folder_name)
    started = time.perf_counter()
    result = tunehub.run_task("financial-sentiment", data=folder / train, eval_data=folder / test,
                              overrides=["train.save_checkpoints=false", *extra, *overrides])
    seconds = time.perf_counter() - started
    trained = f"{result.notes['schedule']}; {result.notes['stopped']}"
    return result.metrics["accuracy"], trained, seconds


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("sets", nargs="*", default=list(SETS), choices=list(SETS))
    parser.add_argument("--epochs", default="2,3,4", help="fixed epoch counts to compare")
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    args = parser.parse_args()
    os.environ.setdefault("TUNEHUB_HOME", tempfile.mkdtemp(prefix="tunehub-bench-"))
    print(cpu_class(), flush=True)
    for name in args.sets:
        accuracy, trained, seconds = run(name, args.overrides)
        print(f"{name}: default  accuracy {accuracy:.4f} in {seconds / 60:.1f} min ({trained})",
              flush=True)
        fixed = {}
        for epochs in (int(e) for e in args.epochs.split(",") if e.strip()):
            overrides = [f"train.epochs={epochs}", "train.early_stopping_patience=0",
                         *args.overrides]
            fixed[epochs], trained, seconds = run(name, overrides)
            print(f"{name}: {epochs} epochs accuracy {fixed[epochs]:.4f} in {seconds / 60:.1f} min "
                  f"({trained})", flush=True)
        if fixed:
            best = max(fixed, key=fixed.get)
            print(f"{name}: default minus best fixed ({best} epochs): "
                  f"{100 * (accuracy - fixed[best]):+.1f} points (target >= -1.0)", flush=True)


if __name__ == "__main__":
    main()
