"""Experiment tracking (``train.report_to``) and the training log every artifact keeps.

The trackers are transformers' own callbacks (``TensorBoardCallback``, ``MLflowCallback``),
so metric names and MLflow's environment variables are transformers'. What tunehub adds is
where they write. While a run trains, its logs folder is ``logs/`` in the run's work folder;
when the artifact is saved it is copied to ``<artifact>/logs/``. A run that fails leaves
nothing (its work folder goes); an interrupted one keeps them with its checkpoints, so a
resumed run's logs continue.

- ``logs/trainer_state.json``: the Trainer's state, its full ``log_history`` included
  (always written, whatever ``train.report_to`` says).
- ``tensorboard``: event files in ``logs/tensorboard/`` (``TENSORBOARD_LOGGING_DIR``, when
  set, is used instead).
- ``mlflow``: the run goes to ``MLFLOW_TRACKING_URI`` when set, else to a SQLite store
  ``logs/mlflow.db`` (artifacts, if ``HF_MLFLOW_LOG_ARTIFACTS`` asks for them, in
  ``logs/mlartifacts/``); the experiment is ``MLFLOW_EXPERIMENT_NAME`` (or
  ``MLFLOW_EXPERIMENT_ID``) when set, else the task's name.

A head that trains more than one model in a run gives each a sub-folder of the run's work
folder (the re-ranker of customer-service-qa trains in ``reranker/``); that model's files are
``logs/reranker/trainer_state.json`` and ``logs/tensorboard/reranker/``, and its MLflow run is
named after it.
"""
from __future__ import annotations

import importlib.util
import logging
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import ConfigError, did_you_mean

NONE = "none"
# tracker -> the modules of which one must import (transformers' own test for each)
TRACKERS: dict[str, tuple[str, ...]] = {"tensorboard": ("tensorboard", "tensorboardX"),
                                        "mlflow": ("mlflow",)}
CHOICES = (NONE, *TRACKERS)
STATE_FILE = "trainer_state.json"
MLFLOW_STORE = "mlflow.db"


def normalize(value: Any, where: str = "config") -> str | list[str]:
    """``train.report_to`` as written (a name, names separated by commas, or a list) as one
    name, or a list when there are several; one `ConfigError` naming the setting and the
    choices for anything else."""
    parts = [value] if isinstance(value, str) else list(value or [])
    names = list(dict.fromkeys(name.strip() for part in parts for name in str(part).split(",")
                               if name.strip())) or [NONE]
    for name in names:
        if name not in CHOICES:
            raise ConfigError(
                f"{where}: 'train.report_to' must be {', '.join(CHOICES)} or a list of them, "
                f"got {name!r}.{did_you_mean(name, CHOICES)} Fix it in the task file or with "
                "--set train.report_to=tensorboard (several: tensorboard,mlflow).")
    if NONE in names and len(names) > 1:
        raise ConfigError(f"{where}: 'train.report_to' lists 'none' with {', '.join(names[1:])}"
                          "; give 'none' alone, or only the trackers to use.")
    return names[0] if len(names) == 1 else names


def requested(value: Any) -> list[str]:
    """The trackers ``train.report_to`` asks for; ``[]`` for none."""
    names = normalize(value)
    return [name for name in ([names] if isinstance(names, str) else names) if name != NONE]


def installed(tracker: str) -> bool:
    return any(importlib.util.find_spec(module) is not None for module in TRACKERS[tracker])


def check_installed(value: Any) -> None:
    """A tracker whose package is missing: one `ConfigError` naming the pip extra (checked
    before any model loads)."""
    for tracker in requested(value):
        if not installed(tracker):
            raise ConfigError(f"train.report_to = {tracker}: the '{tracker}' package is not "
                              f"installed. Install it with pip install 'tunehub[{tracker}]', "
                              "or leave it out of train.report_to.")
        if tracker == "mlflow" and os.environ.get("DISABLE_MLFLOW_INTEGRATION", "").upper() in (
                "1", "ON", "YES", "TRUE"):
            raise ConfigError("train.report_to = mlflow, but DISABLE_MLFLOW_INTEGRATION is set, "
                              "which turns transformers' MLflow logging off; unset it, or "
                              "leave mlflow out of train.report_to.")


# -- where a run's trainers write ------------------------------------------------------


@dataclass(frozen=True)
class _Run:
    work_dir: Path  # the run's work folder: its logs/ goes into the artifact
    name: str  # the task: the MLflow experiment unless the environment names one


_RUN: ContextVar[_Run | None] = ContextVar("tunehub_run_logs", default=None)


@contextmanager
def run_logs(work_dir: Path, name: str) -> Iterator[None]:
    """While a head trains: every `run_trainer` inside writes its logs under
    ``work_dir/logs``, named by its work folder relative to ``work_dir``."""
    token = _RUN.set(_Run(Path(work_dir), name))
    try:
        yield
    finally:
        _RUN.reset(token)


@dataclass(frozen=True)
class TrainerLogs:
    """Where one Trainer's logs go, and the trackers it reports to."""

    root: Path  # the logs folder
    part: str  # "" for a run's first model, else its sub-folder's name (e.g. "rerank")
    trackers: tuple[str, ...]
    experiment: str = "tunehub"  # the MLflow experiment, unless the environment names one
    run_name: str | None = None

    @classmethod
    def of(cls, report_to: Any, work_dir: Path) -> "TrainerLogs":
        run, work_dir = _RUN.get(), Path(work_dir)
        trackers = tuple(requested(report_to))
        if run is not None and work_dir.is_relative_to(run.work_dir):
            part = work_dir.relative_to(run.work_dir).as_posix()
            part = "" if part == "." else part
            name = " ".join(x for x in (run.name, run.work_dir.name, part) if x)
            return cls(run.work_dir / "logs", part, trackers, run.name, name)
        return cls(work_dir / "logs", "", trackers, "tunehub")

    @property
    def state_file(self) -> Path:
        return self.root / self.part / STATE_FILE

    @property
    def tensorboard(self) -> Path:
        return self.root / "tensorboard" / self.part

    def attach(self, trainer: Any) -> None:
        """Point the Trainer's TensorBoard callback at ``tensorboard`` (unless
        ``TENSORBOARD_LOGGING_DIR`` already did)."""
        if "tensorboard" not in self.trackers:
            return
        from transformers.integrations import TensorBoardCallback

        for callback in trainer.callback_handler.callbacks:
            if isinstance(callback, TensorBoardCallback) and callback.logging_dir is None:
                callback.logging_dir = str(self.tensorboard)

    @contextmanager
    def active(self) -> Iterator[None]:
        """Around ``trainer.train()``: MLflow's store and experiment (read by transformers'
        callback when training begins) default to the logs folder and the task."""
        from .distributed import is_main_process

        if "mlflow" not in self.trackers or not is_main_process():  # rank 0 alone logs
            yield
            return
        saved = {k: v for k, v in os.environ.items() if k.startswith("MLFLOW_")}
        added: dict[str, str] = {}
        if not os.environ.get("MLFLOW_TRACKING_URI"):
            added["MLFLOW_TRACKING_URI"] = f"sqlite:///{(self.root / MLFLOW_STORE).resolve()}"
        if not (os.environ.get("MLFLOW_EXPERIMENT_NAME") or os.environ.get("MLFLOW_EXPERIMENT_ID")):
            added["MLFLOW_EXPERIMENT_NAME"] = self.experiment
        chatty = logging.getLogger("mlflow")
        level = chatty.level
        chatty.setLevel(logging.WARNING)  # its store set-up lines; tunehub draws progress
        try:
            if "MLFLOW_TRACKING_URI" in added and not os.environ.get("MLFLOW_EXPERIMENT_ID"):
                self._local_experiment(added["MLFLOW_TRACKING_URI"],
                                       added.get("MLFLOW_EXPERIMENT_NAME")
                                       or os.environ["MLFLOW_EXPERIMENT_NAME"])
            os.environ.update(added)
            yield
        finally:
            if "MLFLOW_TRACKING_URI" in added:
                import mlflow

                mlflow.set_tracking_uri(None)  # the process's own default again
            for key in [k for k in os.environ if k.startswith("MLFLOW_") and k not in saved]:
                del os.environ[key]  # ours, and what MLflow set from them (the experiment id)
            os.environ.update(saved)
            chatty.setLevel(level)

    def _local_experiment(self, uri: str, name: str) -> None:
        """In the run's own store, the experiment keeps its artifacts in the logs folder
        (MLflow's default would be ``./mlruns`` in the current folder)."""
        from mlflow import MlflowClient

        self.root.mkdir(parents=True, exist_ok=True)
        client = MlflowClient(tracking_uri=uri)
        if client.get_experiment_by_name(name) is None:
            where = (self.root / "mlartifacts").resolve().as_uri()
            client.create_experiment(name, artifact_location=where)

    def save(self, trainer: Any) -> None:
        """The Trainer's state, ``log_history`` included, as ``trainer_state.json``."""
        if trainer.is_world_process_zero():
            self.state_file.parent.mkdir(parents=True, exist_ok=True)
            trainer.state.save_to_json(str(self.state_file))


# -- into the artifact ------------------------------------------------------------------


def keep(work_dir: Path, folder: Path, report_to: Any, task: str, head: str) -> dict[str, str]:
    """Copy a run's logs into the artifact ``folder`` (``logs/``); returns the notes that
    say where they are. Trackers asked for by a head that trains without the engine's
    Trainer (so nothing was logged): a warning."""
    from .progress import warn

    source, trackers = Path(work_dir) / "logs", requested(report_to)
    if not source.is_dir():
        if trackers:
            warn(f"train.report_to = {','.join(trackers)}: head '{head}' trains without the "
                 f"engine's Trainer, so nothing was sent to {' or '.join(trackers)}; its "
                 "training log is in the report.")
        return {}
    target = Path(folder) / "logs"
    shutil.copytree(source, target, dirs_exist_ok=True)
    notes = {"training log": ", ".join(sorted(str(p.relative_to(folder))
                                              for p in target.rglob(STATE_FILE)))}
    if "tensorboard" in trackers:
        notes["tensorboard"] = os.environ.get("TENSORBOARD_LOGGING_DIR") or "logs/tensorboard"
    if "mlflow" in trackers:
        store = ("the store of MLFLOW_TRACKING_URI" if os.environ.get("MLFLOW_TRACKING_URI")
                 else f"logs/{MLFLOW_STORE}")
        name = os.environ.get("MLFLOW_EXPERIMENT_NAME")
        number = os.environ.get("MLFLOW_EXPERIMENT_ID")
        experiment = f"id {number}" if number and not name else f"'{name or task}'"
        notes["mlflow"] = f"{store}, experiment {experiment}"
    return notes
