"""Quality of `customer-service-qa` with default settings on BANKING77 as an FAQ.

    python bench/qa_quality.py [--set key=value ...]

Runs exactly what `app run-task customer-service-qa --data banking77/train.csv
--eval-data banking77/test.csv --set dataset.columns.query=text
--set dataset.columns.faq_id=category` runs: 77 intents as FAQ entries, the 10,003
training queries to train on, the 3,080 test queries to evaluate. Prints Recall@1/5/10,
MRR@10 and nDCG@10 beside the untuned and BM25 baselines, the lift over the untuned base
model, the targets, the wall time and the process CPU time (on a shared machine, CPU time
divided by the threads used estimates the wall time on idle cores). Skips when
../shared/data is absent.
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time

from _common import data_dir

TARGETS = {"recall@1": 0.94, "mrr@10": 0.96}
LIFT = 2.5  # recall@1 points over the untuned base model
MINUTES = 20
SHOWN = ("recall@1", "recall@5", "recall@10", "mrr@10", "ndcg@10", "no_answer_precision")


def line(name: str, metrics: dict[str, float]) -> str:
    return f"  {name:10s} " + " ".join(f"{m} {metrics[m]:.4f}" for m in SHOWN if m in metrics)


def progress_callback():
    """Prints elapsed time every 20 training steps (the engine's progress bar needs a tty)."""
    from transformers import TrainerCallback

    class Steps(TrainerCallback):
        started = time.perf_counter()

        def on_step_end(self, args, state, control, **kwargs):
            if state.global_step % 20 == 0 or state.global_step == state.max_steps:
                seconds = time.perf_counter() - self.started
                print(f"  step {state.global_step}/{state.max_steps} {seconds:.0f} s", flush=True)

    return Steps()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    args = parser.parse_args()
    folder = data_dir("banking77")
    os.environ.setdefault("TUNEHUB_HOME", tempfile.mkdtemp(prefix="tunehub-bench-"))
    import tunehub

    overrides = ["dataset.columns.query=text", "dataset.columns.faq_id=category", *args.overrides]
    started, cpu = time.perf_counter(), time.process_time()
    result = tunehub.run_task("customer-service-qa", data=folder / "train.csv",
                              eval_data=folder / "test.csv", overrides=overrides,
                              callbacks=[progress_callback()])
    minutes, cpu_minutes = (time.perf_counter() - started) / 60, (time.process_time() - cpu) / 60
    verdicts = [f"{m} >= {t}: {'meets' if result.metrics[m] >= t else 'below'}"
                for m, t in TARGETS.items()]
    lift = 100 * (result.metrics["recall@1"] - result.baselines["untuned"]["recall@1"])
    verdicts.append(f"lift over untuned {lift:+.1f} points (>= +{LIFT}: "
                    f"{'meets' if lift >= LIFT else 'below'})")
    print(f"banking77 in {minutes:.1f} min wall, {cpu_minutes:.1f} min CPU (target < {MINUTES}: "
          f"{'meets' if minutes < MINUTES else 'over'}); {'; '.join(verdicts)}; "
          f"overrides {args.overrides or 'none'}")
    print(line("fine-tuned", result.metrics))
    for name, values in result.baselines.items():
        print(line(name, values))
    print(f"  notes {result.notes}", flush=True)


if __name__ == "__main__":
    main()
