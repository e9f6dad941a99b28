"""Rich progress and console output. Everything for people goes to stderr, so that
``--json`` output on stdout stays one clean JSON object.

Every phase longer than about a second announces itself with `phase`: a spinner and a
check mark on a terminal; one timestamped line when it starts and one when it ends in a
log (CI, ``nohup``), with periodic progress lines during training. ``app --quiet`` (or
``TUNEHUB_QUIET=1``) silences all of it; errors and warnings still print.
"""
from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator, Mapping
from datetime import datetime
from functools import lru_cache
from typing import Any

LOG_EVERY_SECONDS = 30.0  # progress lines during training when stderr is not a terminal


@lru_cache(maxsize=1)
def console():
    from rich.console import Console

    return Console(stderr=True)


def quiet() -> bool:
    return os.environ.get("TUNEHUB_QUIET", "") not in ("", "0")


def _stamp() -> str:
    return datetime.now().strftime("%H:%M:%S")


def say(text: str) -> None:
    """One progress line for people (timestamped in logs); nothing under --quiet."""
    if quiet():
        return
    out = console()
    out.print(text if out.is_terminal else f"[{_stamp()}] {text}", highlight=False, markup=False)


@contextlib.contextmanager
def phase(text: str) -> Iterator[None]:
    """Announce a phase of work: ``with phase("loading model"): ...``."""
    if quiet():
        yield
        return
    out = console()
    start = time.perf_counter()
    if out.is_terminal:
        with out.status(f"{text} ...", spinner="dots"):
            yield
        out.print(f"[green]done[/] {text} ({time.perf_counter() - start:.1f}s)", highlight=False)
        return
    out.print(f"[{_stamp()}] {text} ...", highlight=False, markup=False)
    yield
    out.print(f"[{_stamp()}] {text}: done in {time.perf_counter() - start:.1f}s",
              highlight=False, markup=False)


def summary(title: str, values: Mapping[str, Any]) -> None:
    """The data summary a run prints before training (rows, labels, split)."""
    if quiet() or not values:
        return
    say(title + ": " + "; ".join(f"{key} {value}" for key, value in values.items()))


def _callback_base():
    from transformers import TrainerCallback

    return TrainerCallback


class RichProgressCallback(_callback_base()):  # type: ignore[misc]
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
