"""The contracts between the core and a head (a model type a task trains).

A head is any object with these attributes and methods (composition, no base class).
The core resolves the config, asks the head to load and validate data (no model yet),
to fit into a staging folder, and to evaluate or predict with a saved model folder.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol


@dataclass
class TaskData:
    """Validated data for one run. ``train``/``eval`` are head-specific example sets."""

    train: Any
    eval: Any
    files: dict[str, Path]  # role -> file, hashed into the manifest
    summary: dict[str, Any] = field(default_factory=dict)  # shown in the report
    info: dict[str, Any] = field(default_factory=dict)  # e.g. labels
    warnings: list[str] = field(default_factory=list)  # printed before training, kept in the report


@dataclass
class Run:
    """What a head needs to train: config, data, base model, where to write."""

    task: str
    config: dict[str, Any]
    data: TaskData
    base_model: Path
    model_dir: Path  # write the fine-tuned model here (inside the staging artifact)
    work_dir: Path  # checkpoints for --resume
    resume: bool = False
    callbacks: Sequence[Any] = ()
    primary_metric: str | None = None
    greater_is_better: bool = True
    score: Callable[[Mapping[str, Any]], dict[str, float]] = lambda outputs: {}  # scalar metrics


@dataclass
class FitOutput:
    outputs: Mapping[str, Any]  # evaluation outputs on the eval data (what metrics read)
    log_history: list[dict[str, Any]] = field(default_factory=list)
    notes: dict[str, Any] = field(default_factory=dict)  # train time, precision, resume, ...


class Head(Protocol):
    name: str
    description: str
    schema: Mapping[str, Any]  # extra config keys this head reads, with defaults

    def load_data(self, config: Mapping[str, Any], files: Mapping[str, Path]) -> TaskData: ...

    def fit(self, run: Run) -> FitOutput: ...

    def evaluate(self, model_dir: Path, data: TaskData, config: Mapping[str, Any]) -> Mapping[str, Any]: ...

    def predict(self, model_dir: Path, inputs: Sequence[str], config: Mapping[str, Any]) -> list[dict[str, Any]]: ...
