"""The stable import surface for plugin authors: everything a task, a head or a baseline needs.

    from tunehub.plugin import hookimpl, TaskData, Run, FitOutput, TrainSettings, run_trainer

Names here keep working across releases (a moved name keeps its old path with a deprecation
warning for one release). Everything else under ``tunehub.core`` is internal. Importing this
module imports neither torch nor transformers; the functions that need them import them.
See docs/heads.md ("Writing a head") for the contract in full.
"""
from __future__ import annotations

from ..core.running.data import (
    CJK_CHARACTERS,
    MIN_EVAL_ROWS,
    MIN_ROWS_PER_LABEL,
    Table,
    column_for,
    files_hash,
    id_text,
    key_cell,
    label_counts,
    read_table,
    stratified_split,
    text_cell,
)
from ..core.running.distributed import BatchSplit, split_batch, world_size
from ..core.running.engine import (
    FitResult,
    TrainSettings,
    is_main_process,
    last_checkpoint,
    quiet_transformers,
    resolve_precision,
    run_trainer,
    seed_everything,
    training_arguments,
)
from ..core.operations.feedback import EVALUATION_ROW, input_text, latest_corrections
from ..core.errors import ConfigError, DataError, ModelError, TunehubError, did_you_mean, unknown
from ..core.extending.heads import FitOutput, Head, Run, TaskData
from ..core.extending.hookspecs import PLUGIN_API_VERSION, hookimpl
from ..core.operations.monitor import WindowStats
from ..core.models.inference import (
    Predictor,
    length_order,
    place,
    quantize_int8,
    run_batches,
    token_batches,
)
from ..core.running.progress import phase, say
from ..core.artifacts.safety import refuse_remote_code, safe_model_folder
from . import biencoder, generation, index, lora, onnx_backend, ranking  # documented submodules

__all__ = [
    "PLUGIN_API_VERSION", "hookimpl",
    "Head", "TaskData", "Run", "FitOutput", "Predictor",
    "TrainSettings", "FitResult", "run_trainer", "training_arguments", "resolve_precision",
    "seed_everything", "quiet_transformers", "is_main_process", "last_checkpoint",
    "world_size", "split_batch", "BatchSplit",
    "Table", "read_table", "column_for", "text_cell", "key_cell", "id_text", "stratified_split",
    "label_counts", "files_hash", "MIN_ROWS_PER_LABEL", "MIN_EVAL_ROWS", "CJK_CHARACTERS",
    "place", "run_batches", "length_order", "token_batches", "quantize_int8",
    "refuse_remote_code", "safe_model_folder", "phase", "say",
    "latest_corrections", "input_text", "EVALUATION_ROW", "WindowStats",
    "lora", "biencoder", "generation", "index", "ranking", "onnx_backend",
    "TunehubError", "ConfigError", "DataError", "ModelError", "did_you_mean", "unknown",
]
