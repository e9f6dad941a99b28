"""Settings of a generating task compared on a validation slice of its *training* rows
(the task's held-out evaluation rows are never read), so defaults are chosen without them.

    python bench/generation_validation.py [--task support-answers] [--set key=value ...]
    python bench/generation_validation.py --task customer-service-answers [--set ...]

``support-answers``: the bundled pairs are split as the task splits them (its
``dataset.eval_fraction`` and ``dataset.split_seed``); of the training part, another
``--fraction`` (seed ``--seed``) is held out and scored, the rest trains.
``customer-service-answers``: the same with the bundled queries, stratified by entry (the
FAQ stays whole). Prints the primary metric beside the baselines of the same run.
Files go to a temporary folder, never to the repo.
"""
from __future__ import annotations

import argparse
import csv
import os
import random
import tempfile
import time
from pathlib import Path

from _common import cpu_class


def write(path: Path, header: list[str], rows: list[dict]) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=header)
        writer.writeheader()
        writer.writerows({k: row[k] for k in header} for row in rows)
    return path


def seeded(n: int, fraction: float, seed: int) -> tuple[list[int], list[int]]:
    """The text-generation head's split: (kept, held out)."""
    held = max(1, round(n * fraction))
    order = list(range(n))
    random.Random(seed).shuffle(order)
    return sorted(order[held:]), sorted(order[:held])


def slices(task: str, fraction: float, seed: int, out: Path) -> tuple[Path, Path, list[str]]:
    """(training part, validation part, extra settings) of the task's training rows."""
    import tunehub
    from tunehub.core.running.data import stratified_split

    data = tunehub.validate_data(task)
    source = Path(data.files["train"])
    with open(source, newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    header = list(rows[0])
    if task == "customer-service-answers":  # queries: the run's own stratified split first
        ids = [row["faq_id"] for row in rows]
        train = [i for i in range(len(rows))
                 if rows[i]["query"].strip() in {t.strip() for t in data.train.train.texts
                                                 + data.train.calibration.texts}]
        keep, held = stratified_split([ids[i] or "-" for i in train], fraction, seed)
        extra = [f"dataset.faq={data.files['faq']}"]
    else:
        train, _ = seeded(len(rows), 0.2, 13)  # support-answers.toml's eval_fraction, split_seed
        keep, held = seeded(len(train), fraction, seed)
        extra = []
    return (write(out / "train.csv", header, [rows[train[i]] for i in keep]),
            write(out / "validation.csv", header, [rows[train[i]] for i in held]), extra)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--task", default="support-answers",
                        choices=["support-answers", "customer-service-answers"])
    parser.add_argument("--fraction", type=float, default=0.2)
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    args = parser.parse_args()
    os.environ.setdefault("TUNEHUB_HOME", tempfile.mkdtemp(prefix="tunehub-bench-"))
    import tunehub

    train, validation, extra = slices(args.task, args.fraction, args.seed,
                                      Path(tempfile.mkdtemp(prefix="gen-val-")))
    started = time.perf_counter()
    result = tunehub.run_task(args.task, data=train, eval_data=validation,
                              overrides=[*extra, *args.overrides])
    wall = time.perf_counter() - started
    primary = result.primary_metric
    print(f"{args.task} on a validation slice ({args.fraction:.0%} of its training rows, "
          f"seed {args.seed}); settings: {' '.join(args.overrides) or 'defaults'}")
    print(f"{cpu_class()}; {wall / 60:.1f} min wall")
    print(f"  fine-tuned      {primary} {result.metrics[primary]:.3f}")
    for name, figures in result.baselines.items():
        print(f"  {name:<15} {primary} {figures[primary]:.3f}")


if __name__ == "__main__":
    main()
