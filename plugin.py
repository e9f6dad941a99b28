"""The stable import surface for plugin authors: everything a task, a head or a baseline needs.

    from tunehub.plugin import hookimpl, TaskData, Run, FitOutput, TrainSettings, run_trainer

Names here keep working across releases (a moved name keeps its old path with a deprecation
warning for one release). Everything else under ``tunehub.core`` is internal. Importing this
module imports neither torch nor transformers; the functions that need them import them.
See docs/heads.md ("Writing a head") for the contract in full.
"""
from __future__ import annotations

from .core.data import (
    Table,
    column_for,
    files_hash,
    label_counts,
    read_table,
    stratified_split,
    text_cell,
)
from .core.engine import (
    FitResult,
    TrainSettings,
    is_main_process,
    quiet_transformers,
    resolve_precision,
    run_trainer,
    seed_everything,
    training_arguments,
)
from .core.feedback import EVALUATION_ROW, input_text, latest_corrections
from .core.errors import ConfigError, DataError, ModelError, TunehubError, did_you_mean, unknown
from .core.heads import FitOutput, Head, Run, TaskData
from .core.hookspecs import PLUGIN_API_VERSION, hookimpl
from .core.progress import phase, say
from .core import lora  # LoRA as a setting: resolve_peft, wrap, base_record, load_adapter

__all__ = [
    "PLUGIN_API_VERSION", "hookimpl",
    "Head", "TaskData", "Run", "FitOutput",
    "TrainSettings", "FitResult", "run_trainer", "training_arguments", "resolve_precision",
    "seed_everything", "quiet_transformers", "is_main_process",
    "Table", "read_table", "column_for", "text_cell", "stratified_split", "label_counts",
    "files_hash", "phase", "say", "lora",
    "latest_corrections", "input_text", "EVALUATION_ROW",
    "TunehubError", "ConfigError", "DataError", "ModelError", "did_you_mean", "unknown",
]
