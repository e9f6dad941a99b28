"""Trainer callbacks and the schedule rule behind `tunehub.core.running.engine.run_trainer`.

- `auto_epochs`: ``train.epochs = "auto"`` picks the epochs that give about
  ``train.step_budget`` optimizer steps of the global batch, within [``min_epochs``,
  ``max_epochs``]: few rows get several passes, many rows one or two, instead of the same
  count for both; the same epochs for any number of processes.
- `log_every`: ``train.logging_steps = 0`` (auto) logs the training loss often enough for
  about `LOG_POINTS` points a run, every step in short runs.
- `BestEpoch`: keeps the best epoch's weights in memory (no checkpoint on disk) and stops
  early after ``early_stopping_patience`` evaluations without improvement.
- `LeanCheckpoints`: resume checkpoints at most once per ``checkpoint_minutes``; the
  Trainer keeps only the latest (``save_total_limit=1``), optimizer state included.
- `RichProgressCallback`: the training bar on a terminal, periodic lines in a log.
"""
from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

from transformers import TrainerCallback

from .distributed import split_of
from .progress import LOG_EVERY_SECONDS, console, quiet, say


def auto_epochs(trainer: Any, settings: Any) -> str:
    """Set ``trainer.args.num_train_epochs`` for ``epochs = "auto"``; say what was chosen."""
    args = trainer.args
    if args.max_steps and args.max_steps > 0:
        return f"{args.max_steps} optimizer steps (train.max_steps)"
    if settings.epochs != "auto":
        return f"{settings.epochs} epochs (train.epochs)"
    rows = len(trainer.train_dataset)
    # optimizer steps from the global batch, as the Trainer counts them: the same for any
    # number of processes (a last, shorter batch is a step too)
    steps = math.ceil(rows / split_of(args).batch)
    wanted = math.ceil(settings.step_budget / steps)
    epochs = min(max(wanted, settings.min_epochs), settings.max_epochs)
    args.num_train_epochs = epochs
    return (f"{epochs} epochs (auto: {rows} rows, {steps} steps an epoch; about "
            f"{settings.step_budget} steps wanted, {settings.min_epochs} to "
            f"{settings.max_epochs} epochs)")


LOG_POINTS = 50  # loss points a run logs at least ("auto" logging_steps), when it has the steps


def log_every(trainer: Any, settings: Any) -> int:
    """Set ``trainer.args.logging_steps``: ``train.logging_steps``, or for 0 (auto) the
    interval that gives the run about `LOG_POINTS` logged losses (1 for runs under twice
    that many optimizer steps), so the report's loss curve and the trackers see the run's
    shape. Returns the interval."""
    args = trainer.args
    every = int(settings.logging_steps)
    if every <= 0:
        if args.max_steps and args.max_steps > 0:
            total = args.max_steps
        else:
            total = math.ceil(len(trainer.train_dataset) / split_of(args).batch) * math.ceil(
                args.num_train_epochs)
        every = max(1, total // LOG_POINTS)
    args.logging_steps = every
    return every


class BestEpoch(TrainerCallback):
    """Track the primary metric each evaluation; keep the best weights in memory; stop early."""

    def __init__(self, metric: str, greater_is_better: bool, settings: Any) -> None:
        self.key, self.greater = f"eval_{metric}", greater_is_better
        self.metric = metric
        self.patience = int(settings.early_stopping_patience)
        self.min_delta = float(settings.early_stopping_min_delta)
        self.best_value: float | None = None
        self.best_epoch: float | None = None
        self.best_state: dict[str, Any] | None = None
        self.bad = 0
        self.stopped_at: float | None = None

    def _better(self, value: float) -> bool:
        if self.best_value is None:
            return True
        gain = value - self.best_value if self.greater else self.best_value - value
        return gain > self.min_delta

    def on_evaluate(self, args, state, control, metrics=None, model=None, **kwargs: Any):
        value = (metrics or {}).get(self.key)
        if value is None or model is None:
            return
        if self._better(float(value)):
            self.best_value, self.best_epoch, self.bad = float(value), state.epoch, 0
            # only what training changes: with LoRA that is the adapters and the head, not
            # a copy of the frozen base model
            self.best_state = {k: v.detach().to("cpu", copy=True)
                               for k, v in model.named_parameters() if v.requires_grad}
            return
        self.bad += 1
        if self.patience > 0 and self.bad >= self.patience:
            control.should_training_stop = True
            self.stopped_at = state.epoch

    def restore(self, model: Any) -> str:
        """Load the best weights into ``model``; returns why training stopped (or "")."""
        if self.best_state is None:
            return ""
        model.load_state_dict(self.best_state, strict=False)
        best = f"best epoch {self.best_epoch:g} ({self.metric} {self.best_value:.4f})"
        if self.stopped_at is not None:
            return (f"early stopping after epoch {self.stopped_at:g}: {self.patience} evaluations "
                    f"without a gain over {self.min_delta:g}; {best}")
        return f"all epochs; {best}"


class LeanCheckpoints(TrainerCallback):
    """Ask the Trainer for a resume checkpoint at most once per ``minutes`` (at an epoch end,
    or mid-epoch when an epoch is long); counts the bytes written."""

    def __init__(self, minutes: float, folder: Path) -> None:
        self.seconds, self.folder = max(float(minutes), 0.0) * 60, Path(folder)
        self.last = time.monotonic()
        self.written = 0

    def on_train_begin(self, args, state, control, **kwargs: Any):
        self.last = time.monotonic()

    def _due(self) -> bool:
        return time.monotonic() - self.last >= self.seconds

    def on_step_end(self, args, state, control, **kwargs: Any):
        if state.global_step >= state.max_steps:
            # The Trainer saves at the last step; the run is about to finish and its
            # artifact is what counts, so that checkpoint would only be written and deleted.
            control.should_save = False
        elif self.seconds > 0 and self._due():
            control.should_save = True

    def on_epoch_end(self, args, state, control, **kwargs: Any):
        if self._due() and state.global_step < state.max_steps:
            control.should_save = True

    def on_save(self, args, state, control, **kwargs: Any):
        self.last = time.monotonic()
        checkpoint = self.folder / f"checkpoint-{state.global_step}"
        if checkpoint.is_dir():
            self.written += sum(p.stat().st_size for p in checkpoint.rglob("*") if p.is_file())

    def bytes_written(self) -> int:
        return self.written


class RichProgressCallback(TrainerCallback):
    """A Trainer callback drawing one progress bar with the latest loss, on rank 0 only."""

    def __init__(self) -> None:
        self.progress = None
        self.task_id = None
        self.started: float | None = None
        self.logged: float | None = None
        self.loss = ""

    def on_train_begin(self, args, state, control, **kwargs: Any):
        if not state.is_world_process_zero or quiet():
            return
        self.started = self.logged = time.monotonic()
        self.loss = ""
        if not console().is_terminal:  # a log: periodic lines instead of a live bar
            say(f"training: {state.max_steps} optimizer steps")
            return
        from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn,
                                   TimeElapsedColumn, TimeRemainingColumn)

        self.progress = Progress(
            TextColumn("[bold]training[/]"), BarColumn(), MofNCompleteColumn(),
            TimeElapsedColumn(), TimeRemainingColumn(), TextColumn("{task.fields[info]}"),
            console=console(), transient=True,
        )
        self.progress.start()
        self.task_id = self.progress.add_task(
            "train", total=state.max_steps, completed=state.global_step, info=""
        )

    def on_step_end(self, args, state, control, **kwargs: Any):
        if self.progress is not None:
            self.progress.update(self.task_id, completed=state.global_step)
        elif self.logged is not None and time.monotonic() - self.logged >= LOG_EVERY_SECONDS:
            self.logged = time.monotonic()
            done = state.global_step / max(state.max_steps, 1)
            elapsed = self.logged - self.started
            left = elapsed / done - elapsed if done else 0
            say(f"training: step {state.global_step}/{state.max_steps} ({done:.0%}), epoch "
                f"{state.epoch or 0:.2f}{self.loss}, {elapsed:.0f}s elapsed, ~{left:.0f}s left")

    def on_log(self, args, state, control, logs=None, **kwargs: Any):
        if logs and "loss" in logs:
            self.loss = f", loss {logs['loss']:.4f}"
        if self.progress is not None and logs and "loss" in logs:
            self.progress.update(
                self.task_id, info=f"epoch {state.epoch:.2f} loss {logs['loss']:.4f}"
            )

    def on_evaluate(self, args, state, control, metrics=None, **kwargs: Any):
        if metrics and state.is_world_process_zero and not quiet():
            shown = ", ".join(
                f"{k[5:]} {v:.4f}" for k, v in metrics.items()
                if k.startswith("eval_") and isinstance(v, float)
                and not k.endswith(("runtime", "per_second"))
            )
            say(f"  epoch {state.epoch:.0f}: {shown}")

    def on_train_end(self, args, state, control, **kwargs: Any):
        if self.progress is not None:
            self.progress.stop()
            self.progress = None
