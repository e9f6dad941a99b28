"""Run one task and write what it trained: ``python tests/_one_run.py OUT.json TASK [run_task
keyword arguments as JSON]``, alone or under ``torchrun`` / ``accelerate launch`` (rank 0
writes). OUT.json holds the optimizer steps, the loss and gradient norm of every step, the
metrics and the artifact."""
from __future__ import annotations

import json
import sys

from transformers import TrainerCallback

import tunehub
from tunehub.plugin import is_main_process, world_size


class EveryStep(TrainerCallback):
    """Log every optimizer step (the loss the Trainer averages over all processes)."""

    def __init__(self) -> None:
        self.steps: list[dict] = []
        self.optimizer_steps = 0

    def on_step_end(self, args, state, control, **kwargs):
        control.should_log = True

    def on_log(self, args, state, control, logs=None, **kwargs):
        if logs and "loss" in logs:
            self.steps.append({"step": state.global_step, "loss": logs["loss"],
                               "grad_norm": float(logs.get("grad_norm", float("nan")))})

    def on_train_end(self, args, state, control, **kwargs):
        self.optimizer_steps = state.global_step


def main(out: str, task: str, options: str = "{}") -> None:
    recorder = EveryStep()
    result = tunehub.run_task(task, callbacks=[recorder], **json.loads(options))
    if is_main_process():
        with open(out, "w") as handle:
            json.dump({"processes": world_size(), "optimizer_steps": recorder.optimizer_steps,
                       "steps": recorder.steps, "metrics": result.metrics,
                       "notes": {k: str(v) for k, v in result.notes.items()},
                       "artifact": result.artifact}, handle)


if __name__ == "__main__":
    main(*sys.argv[1:])
