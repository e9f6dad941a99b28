"""Rich progress and console output. Everything for people goes to stderr, so that
``--json`` output on stdout stays one clean JSON object."""
from __future__ import annotations

from functools import lru_cache
from typing import Any


@lru_cache(maxsize=1)
def console():
    from rich.console import Console

    return Console(stderr=True)


def _callback_base():
    from transformers import TrainerCallback

    return TrainerCallback


class RichProgressCallback(_callback_base()):  # type: ignore[misc]
    """A Trainer callback drawing one progress bar with the latest loss, on rank 0 only."""

    def __init__(self) -> None:
        self.progress = None
        self.task_id = None

    def on_train_begin(self, args, state, control, **kwargs: Any):
        if not state.is_world_process_zero:
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

    def on_log(self, args, state, control, logs=None, **kwargs: Any):
        if self.progress is not None and logs and "loss" in logs:
            self.progress.update(
                self.task_id, info=f"epoch {state.epoch:.2f} loss {logs['loss']:.4f}"
            )

    def on_evaluate(self, args, state, control, metrics=None, **kwargs: Any):
        if self.progress is not None and metrics:
            shown = ", ".join(
                f"{k[5:]} {v:.4f}" for k, v in metrics.items()
                if k.startswith("eval_") and isinstance(v, float)
                and not k.endswith(("runtime", "per_second"))
            )
            self.progress.console.print(f"  epoch {state.epoch:.0f}: {shown}")

    def on_train_end(self, args, state, control, **kwargs: Any):
        if self.progress is not None:
            self.progress.stop()
            self.progress = None
