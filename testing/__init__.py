"""Test kit for tunehub plugins: a tiny model and the task contract.

    from tunehub.testing import TaskContract

    class TestMyTask(TaskContract):
        task = "my-task"

runs, in seconds on a CPU, the checks every task must pass: the task file validates, its
data loads and fits its declared columns, its head follows the protocol and accepts a
tiny model, its metrics return numbers with ``higher_is_better``, a one-step training
run and a predict run work, two runs with the same seed give the same metrics, and
``--quantize int8`` changes the model or is refused. The ``check_*`` functions are the same checks for use
outside pytest classes. Importing this package imports neither torch nor pytest.
"""
from __future__ import annotations

from typing import Any

from .contract import (
    CONTRACT_OVERRIDES,
    Contract,
    check_data,
    check_determinism,
    check_head,
    check_metrics,
    check_quantize,
    check_task,
    check_task_file,
    check_train_and_predict,
    example_inputs,
)
from .models import build_tiny_model

__all__ = [
    "CONTRACT_OVERRIDES", "Contract", "TaskContract", "build_tiny_model", "check_data",
    "check_determinism", "check_head", "check_metrics", "check_quantize", "check_task",
    "check_task_file", "check_train_and_predict", "example_inputs",
]


def __getattr__(name: str) -> Any:
    if name == "TaskContract":  # needs pytest, imported on first use only
        from .suite import TaskContract

        return TaskContract
    raise AttributeError(f"module 'tunehub.testing' has no attribute {name!r}")
