"""One process against two: the same optimizer steps and, within a point, the same metric.

    python bench/distributed_same_results.py [--data FILE --eval-data FILE] [--base-model M]
        [--set key=value ...]

(``--set train.early_stopping_patience=0`` trains every planned step, so the steps taken
compare too; with early stopping each run stops on its own validation scores.)

Runs `app run-task financial-sentiment` (the bundled sample and the packaged MiniLM unless
--data is given) once as one process and once as two under ``torchrun --nproc_per_node=2``
(gloo on CPU), each in its own process tree and TUNEHUB_HOME, with the same settings.
Prints, side by side: the optimizer steps planned and taken, the schedule and how the global
batch was shared, why training stopped, the mean training loss of each epoch, the primary
metric and macro-F1, train time; then the per-step differences of the training loss and the
gap of the primary metric (target: same steps, within 1 point).

The two runs see the same rows in every step (the global batch, split by Accelerate); they
differ by float sums in another order, dropout masks drawn per process, and an epoch's
last, shorter batch, which two processes fill up with the epoch's first rows.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from _common import cpu_class

TASK = "financial-sentiment"


def worker(out: str, options: str) -> None:
    """Train once (alone or as one rank of torchrun); rank 0 writes what it saw."""
    from transformers import TrainerCallback

    import tunehub
    from tunehub.plugin import is_main_process, world_size

    class EveryStep(TrainerCallback):
        def __init__(self) -> None:
            self.losses: list[tuple[float, float]] = []  # (epoch, loss) of every step
            self.planned = self.steps = 0

        def on_train_begin(self, args, state, control, **kwargs):
            self.planned = state.max_steps

        def on_step_end(self, args, state, control, **kwargs):
            control.should_log = True  # the loss of every optimizer step

        def on_log(self, args, state, control, logs=None, **kwargs):
            if logs and "loss" in logs:
                self.losses.append((state.epoch, logs["loss"]))

        def on_train_end(self, args, state, control, **kwargs):
            self.steps = state.global_step

    recorder = EveryStep()
    result = tunehub.run_task(TASK, callbacks=[recorder], **json.loads(options))
    if is_main_process():
        Path(out).write_text(json.dumps({
            "processes": world_size(), "planned": recorder.planned, "steps": recorder.steps,
            "losses": recorder.losses,
            "primary": result.primary_metric, "metrics": result.metrics,
            "notes": {k: str(v) for k, v in result.notes.items()}}))


def launch(processes: int, options: dict, folder: Path) -> dict:
    out = folder / f"{processes}.json"
    script = [str(Path(__file__).resolve()), "--worker", str(out), json.dumps(options)]
    if processes == 1:
        command = [sys.executable, *script]
    else:
        torchrun = shutil.which("torchrun", path=os.path.dirname(sys.executable)) or "torchrun"
        command = [torchrun, "--standalone", f"--nproc_per_node={processes}", *script]
    env = {**os.environ, "TUNEHUB_HOME": str(folder / f"home-{processes}")}
    if processes > 1:  # the cores shared among the processes, as torchrun's default does
        env.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // processes)))
    subprocess.run(command, check=True, env=env, stdout=subprocess.DEVNULL)
    return json.loads(out.read_text())


def main() -> None:
    if sys.argv[1:2] == ["--worker"]:
        worker(sys.argv[2], sys.argv[3])
        return
    parser = argparse.ArgumentParser()
    parser.add_argument("--data")
    parser.add_argument("--eval-data")
    parser.add_argument("--base-model", help="an alias or folder (default: the task's, MiniLM)")
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    parser.add_argument("--processes", type=int, default=2)
    args = parser.parse_args()
    options = {"data": args.data, "eval_data": args.eval_data, "model": args.base_model,
               "overrides": ["train.save_checkpoints=false", *args.overrides]}
    print(cpu_class(), flush=True)
    with tempfile.TemporaryDirectory(prefix="tunehub-ddp-bench-") as tmp:
        runs = [launch(n, options, Path(tmp)) for n in (1, args.processes)]
    one, many = runs
    primary = one["primary"]
    rows = [("processes", "processes"), ("steps planned", "planned"), ("steps taken", "steps"),
            ("schedule", "schedule"), ("batch", "batch"), ("stopped", "stopped"),
            ("loss by epoch", "epochs"), (primary, primary), ("macro_f1", "macro_f1"),
            ("train seconds", "train seconds")]

    def value(run: dict, key: str) -> str:
        if key in ("processes", "planned", "steps"):
            return str(run[key])
        if key == "epochs":  # the mean training loss of each epoch
            by_epoch: dict[int, list[float]] = {}
            for epoch, loss in run["losses"]:
                by_epoch.setdefault(math.ceil(epoch - 1e-6), []).append(loss)
            return " ".join(f"{sum(v) / len(v):.3f}" for _, v in sorted(by_epoch.items()))
        if key in run["metrics"]:
            return f"{run['metrics'][key]:.4f}"
        return run["notes"].get(key, "")

    for label, key in rows:
        print(f"{label:>16}: {value(one, key):<58} | {value(many, key)}")
    gaps = [abs(a[1] - b[1]) for a, b in zip(one["losses"], many["losses"])]
    gap = 100 * abs(one["metrics"][primary] - many["metrics"][primary])
    same = one["planned"] == many["planned"] and one["steps"] == many["steps"]
    print(f"same optimizer steps (planned and taken): {'yes' if same else 'NO'}; training loss "
          f"per step: largest difference {max(gaps):.4f}, mean {sum(gaps) / len(gaps):.4f} over "
          f"{len(gaps)} steps; {primary} differs by {gap:.2f} points (target: within 1)")


if __name__ == "__main__":
    main()
