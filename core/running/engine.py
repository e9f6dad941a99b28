"""The fine-tuning engine: Hugging Face Trainer + Accelerate with tunehub's defaults.

The training loop, mixed precision, checkpoints, resume and distributed runs
(``torchrun``/``accelerate launch``) are the Trainer's. What the engine adds: settings
from the task config, dynamic padding and length-grouped batches, bf16 only where the
hardware runs it fast (and the attention kernels that are fast with it), a higher learning
rate for a head's new layers, seeding, evaluation each epoch with best-model selection on the
task's primary metric, and rich progress on stderr.
"""
from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from .distributed import is_main_process  # noqa: F401 (part of this module's API)


@dataclass(frozen=True)
class TrainSettings:
    """The ``[train]`` section of a task config: every key, its type and its default
    (`tunehub.core.running.config` builds the schema from these fields)."""

    epochs: int | str = "auto"  # a number, or "auto": fit the data size (below)
    step_budget: int = 600  # "auto": epochs that give about this many optimizer steps ...
    min_epochs: int = 3  # ... but at least this many epochs ...
    max_epochs: int = 10  # ... and at most this many
    early_stopping_patience: int = 2  # evaluations without improvement before stopping; 0: off
    early_stopping_min_delta: float = 0.001  # the least change of the metric that counts
    checkpoint_minutes: float = 10.0  # resume checkpoints at most this often (latest one kept)
    batch_size: int = 32  # rows an optimizer step, over all processes (the global batch)
    max_device_batch: int = 0  # most rows a device takes at once; more: accumulation. 0: no limit
    eval_batch_size: int = 128  # rows a device evaluates at once
    learning_rate: float = 5e-5
    head_lr_scale: float = 20.0  # a head's new layers learn at this multiple of learning_rate
    weight_decay: float = 0.01
    warmup_ratio: float = 0.1
    scheduler: str = "linear"
    optim: str = "adamw_torch_fused"  # any supported Trainer optim; fused AdamW is ~5x faster on CPU
    max_length: int = 128
    seed: int = 42
    precision: str = "auto"
    attention: str = "auto"  # attention kernels while training: auto | eager | sdpa (see below)
    group_by_length: bool = True
    label_smoothing: float = 0.0
    max_grad_norm: float = 1.0
    freeze_embeddings: bool = False
    max_steps: int = -1
    save_checkpoints: bool = True
    peft: str = "auto"  # none | lora | auto: LoRA for decoder backbones (tunehub.core.models.lora)
    lora: dict = field(default_factory=dict)  # train.lora.*: r, alpha, dropout, target_modules, learning_rate
    gradient_checkpointing: bool = False  # recompute activations: less memory, more compute
    report_to: str | list[str] = "none"  # none | tensorboard | mlflow, or a list of them
    logging_steps: int = 0  # log the training loss every this many optimizer steps; 0: auto
    extra: dict = field(default_factory=dict)

    @classmethod
    def from_config(cls, section: Mapping[str, Any]) -> "TrainSettings":
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in section.items() if k in known},
                   extra={k: v for k, v in section.items() if k not in known})


@dataclass
class FitResult:
    """What `run_trainer` reports: for the head's notes and the run report."""

    log_history: list[dict[str, Any]]
    train_seconds: float
    train_samples_per_second: float
    resumed_from: str | None
    best_checkpoint: str | None  # kept for compatibility: selection now happens in memory
    precision: str
    schedule: str = ""  # the epochs chosen and why
    stopped: str = ""  # why training stopped (all epochs, early stopping)
    best_epoch: float | None = None
    checkpoint_bytes: int = 0  # bytes of resume checkpoints written
    attention: str = ""  # the attention kernels trained with
    batch: str = ""  # how the global batch was shared (processes x rows x passes)

    def notes(self) -> dict[str, Any]:
        """The engine's part of a run's notes (what the report shows under Training)."""
        return {"train seconds": round(self.train_seconds, 1),
                "train samples/s": round(self.train_samples_per_second, 1),
                "precision": self.precision, "attention": self.attention,
                "schedule": self.schedule, "batch": self.batch, "stopped": self.stopped,
                "checkpoint bytes written": self.checkpoint_bytes,
                "resumed from": self.resumed_from}


def bf16_is_fast() -> bool:
    """True where bf16 matmuls run natively (CUDA with bf16, or CPUs with AVX512-BF16/AMX).

    On other CPUs bf16 autocast is emulated and several times slower than fp32.
    """
    import torch

    if torch.cuda.is_available():
        return torch.cuda.is_bf16_supported()
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


PRECISIONS = ("auto", "bf16", "fp32")
ATTENTIONS = ("auto", "eager", "sdpa")


def resolve_precision(precision: str) -> str:
    """``auto`` -> bf16 where the hardware runs it fast, else fp32.

    ``TUNEHUB_PRECISION=fp32|bf16`` forces what ``auto`` picks (training, evaluation,
    predict and serve), so both paths can be exercised on any machine; an explicit
    ``train.precision`` in the config still wins.
    """
    if precision not in PRECISIONS:
        raise ConfigError(f"train.precision must be auto, bf16 or fp32, got '{precision}'.")
    if precision == "auto":
        return forced_precision() or ("bf16" if bf16_is_fast() else "fp32")
    return precision


def forced_precision() -> str | None:
    """What ``TUNEHUB_PRECISION`` forces ``auto`` to: ``bf16``, ``fp32``, or None (unset or
    ``auto``); `ConfigError` for anything else."""
    forced = os.environ.get("TUNEHUB_PRECISION", "").strip().lower()
    if forced not in ("", "auto", "bf16", "fp32"):
        raise ConfigError(f"TUNEHUB_PRECISION must be auto, bf16 or fp32, got '{forced}'.")
    return forced if forced in ("bf16", "fp32") else None


def resolve_attention(attention: str, precision: str) -> str | None:
    """The attention kernels to train with; ``None`` keeps what the model loaded with.

    ``auto`` picks by measured speed: on CPU in bf16, PyTorch's fused (flash) attention
    backward is about six times its forward, so a MiniLM training step runs 1.26x (128
    tokens) to 1.38x (64 tokens) faster with the plain matmul ("eager") attention. In fp32
    and on CUDA both are within 2%, so the model's default stays.
    """
    if attention not in ATTENTIONS:
        raise ConfigError(f"train.attention must be auto, eager or sdpa, got '{attention}'.")
    if attention != "auto":
        return attention
    return "eager" if precision == "bf16" and not _cuda() else None


def set_attention(model: Any, attention: str | None) -> dict[Any, str]:
    """Switch every transformers model inside ``model`` to ``attention``; returns what each
    used before, for `restore_attention`. Models that cannot switch keep theirs."""
    from transformers import PreTrainedModel

    before: dict[Any, str] = {}
    if attention is None:
        return before
    for module in model.modules():
        if isinstance(module, PreTrainedModel) and module.config._attn_implementation != attention:
            current = module.config._attn_implementation
            try:
                module.set_attn_implementation(attention)
            except (ValueError, ImportError):
                continue
            before[module] = current
    return before


def restore_attention(before: Mapping[Any, str]) -> None:
    """Put back the kernels `set_attention` replaced."""
    for module, attention in before.items():
        module.set_attn_implementation(attention)


def quiet_transformers() -> None:
    """Silence transformers' own progress bars and info logs; tunehub draws progress."""
    from transformers.utils import logging as hf_logging

    import warnings

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    # raised inside transformers when PEFT asks a model about checkpointing; nothing to act on
    warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*deprecated")


def seed_everything(seed: int) -> None:
    from transformers import set_seed

    set_seed(seed)


def last_checkpoint(checkpoints: Path) -> str | None:
    from transformers.trainer_utils import get_last_checkpoint

    return get_last_checkpoint(str(checkpoints)) if checkpoints.is_dir() else None


def training_arguments(
    settings: TrainSettings,
    output_dir: Path,
    primary_metric: str | None,
    greater_is_better: bool,
    precision: str,
    args_class: Any = None,
    **overrides: Any,
):
    """TrainingArguments for the Trainer family; pass ``args_class`` for a subclass such as
    sentence-transformers' ``SentenceTransformerTrainingArguments``.

    ``settings.batch_size`` is the global batch: with Accelerate's ``split_batches`` the
    Trainer loads the rows of one accumulation pass over all processes and each process
    trains on its slice (`tunehub.core.running.distributed`)."""
    from transformers import TrainingArguments

    from . import tracking
    from .distributed import split_batch

    args_class = args_class or TrainingArguments
    selecting = primary_metric is not None
    split = split_batch(settings.batch_size, max_device_batch=settings.max_device_batch,
                        where="train")
    kwargs: dict[str, Any] = dict(
        output_dir=str(output_dir),
        num_train_epochs=settings.epochs if settings.epochs != "auto" else settings.max_epochs,
        max_steps=settings.max_steps,
        per_device_train_batch_size=split.loader_batch,
        gradient_accumulation_steps=split.accumulation,
        per_device_eval_batch_size=settings.eval_batch_size * split.processes,
        accelerator_config={"split_batches": True},
        learning_rate=settings.learning_rate,
        weight_decay=settings.weight_decay,
        warmup_steps=settings.warmup_ratio,  # a float < 1 is a ratio of the total steps
        lr_scheduler_type=settings.scheduler,
        optim=settings.optim,
        max_grad_norm=settings.max_grad_norm,
        seed=settings.seed,
        bf16=precision == "bf16",
        use_cpu=not _cuda(),
        eval_strategy="epoch" if selecting else "no",
        # Resume checkpoints are requested by `LeanCheckpoints` (time-based, latest only);
        # the best epoch is kept in memory by `BestEpoch`, never as a checkpoint on disk.
        save_strategy="steps" if settings.save_checkpoints else "no",
        save_steps=10**9,
        save_total_limit=1,
        load_best_model_at_end=False,
        metric_for_best_model=None,  # selection is BestEpoch's, not the Trainer's
        train_sampling_strategy="group_by_length" if settings.group_by_length else "random",
        logging_strategy="steps",
        logging_steps=settings.logging_steps or 10,  # run_trainer picks "auto" (0) per run
        logging_first_step=True,
        report_to=tracking.requested(settings.report_to) or "none",
        disable_tqdm=True,
        dataloader_num_workers=0,
        log_level="error",
        ddp_backend="gloo" if _distributed() and not _cuda() else None,
    )
    kwargs.update(overrides)
    return args_class(**kwargs)


def _distributed() -> bool:
    from .distributed import world_size

    return world_size() > 1


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()


def scale_head_learning_rate(trainer: Any, parameters: Sequence[Any], scale: float) -> None:
    """Build the Trainer's optimizer with ``parameters`` in groups of their own at ``scale``
    times the learning rate (the scheduler then decays every group alike)."""
    optimizer = trainer.create_optimizer()
    head = {id(p) for p in parameters}
    groups = []
    for group in optimizer.param_groups:
        for mine in (False, True):
            params = [p for p in group["params"] if (id(p) in head) == mine]
            if params:
                groups.append({**group, "params": params,
                               "lr": group["lr"] * (scale if mine else 1.0)})
    optimizer.param_groups.clear()
    for group in groups:
        optimizer.add_param_group(group)


def run_trainer(
    make_trainer: Callable[[Any], Any],
    settings: TrainSettings,
    work_dir: Path,
    primary_metric: str | None,
    greater_is_better: bool = True,
    resume: bool = False,
    callbacks: Sequence[Any] = (),
    args_overrides: Mapping[str, Any] | None = None,
    args_class: Any = None,
    head_parameters: Sequence[Any] = (),
) -> tuple[Any, FitResult]:
    """Train with a Trainer built by ``make_trainer(args)``; returns (trainer, result).

    - ``primary_metric`` (the trainer must have an eval dataset and ``compute_metrics``
      returning it): evaluation each epoch, the best epoch's weights kept in memory and
      restored at the end, and early stopping after ``early_stopping_patience`` epochs
      without improvement. ``None``: the last epoch, no evaluation.
    - ``epochs = "auto"``: about ``step_budget`` optimizer steps, within
      [``min_epochs``, ``max_epochs``] epochs, from the training set's size.
    - Resume checkpoints (``save_checkpoints``) go to ``work_dir/checkpoints``: at most one
      per ``checkpoint_minutes`` (at an epoch end, or mid-epoch for long epochs), only the
      latest kept. With ``resume`` the last checkpoint there is continued.
    - ``head_parameters``: the layers the head adds on top of the pretrained model (a
      classifier, say); they learn at ``head_lr_scale`` x ``learning_rate``.
    - The training loss is logged every ``logging_steps`` optimizer steps (0: about 50
      points a run); the Trainer's state with its full ``log_history`` is saved as
      ``trainer_state.json``, and ``report_to`` sends the logs to TensorBoard or MLflow
      (where each writes: `tunehub.core.running.tracking`).
    The core seeds before calling a head's ``fit``; this seeds again (``train.seed``) right
    before the Trainer is built, so a head's own setup does not shift the training RNG.
    """
    from transformers import PrinterCallback

    from . import tracking
    from .training import BestEpoch, LeanCheckpoints, RichProgressCallback, auto_epochs, log_every
    from .distributed import split_of

    quiet_transformers()
    precision = resolve_precision(settings.precision)
    checkpoints = work_dir / "checkpoints"
    resume_from = None
    if resume:
        resume_from = last_checkpoint(checkpoints)
        if resume_from is None:
            raise ConfigError(
                f"--resume: no checkpoint under {checkpoints} for this task and config. "
                "Run without --resume to start fresh (same --data/--set as the interrupted run)."
            )
    elif checkpoints.exists() and is_main_process():
        shutil.rmtree(checkpoints)
    tracking.check_installed(settings.report_to)
    logs = tracking.TrainerLogs.of(settings.report_to, work_dir)
    seed_everything(settings.seed)
    args = training_arguments(
        settings, checkpoints, primary_metric, greater_is_better, precision, args_class,
        **{"run_name": logs.run_name, **dict(args_overrides or {})},
    )
    trainer = make_trainer(args)
    logs.attach(trainer)
    if head_parameters and settings.head_lr_scale != 1:
        scale_head_learning_rate(trainer, head_parameters, settings.head_lr_scale)
    schedule = auto_epochs(trainer, settings)
    log_every(trainer, settings)
    trainer.remove_callback(PrinterCallback)  # it prints log dicts to stdout; we draw progress
    trainer.add_callback(RichProgressCallback())
    best = BestEpoch(primary_metric, greater_is_better, settings) if primary_metric else None
    if best is not None:
        trainer.add_callback(best)
    lean = LeanCheckpoints(settings.checkpoint_minutes, checkpoints)
    if settings.save_checkpoints:
        trainer.add_callback(lean)
    for callback in callbacks:
        trainer.add_callback(callback)
    kernels = resolve_attention(settings.attention, precision)
    attention = set_attention(trainer.model, kernels)
    started = time.perf_counter()
    try:
        with logs.active():
            output = trainer.train(resume_from_checkpoint=resume_from)
    finally:
        restore_attention(attention)  # what the model loaded with, for evaluation and predict
    logs.save(trainer)  # trainer_state.json, the full log_history (tunehub.core.running.tracking)
    seconds = time.perf_counter() - started
    stopped = f"all {trainer.args.num_train_epochs:g} epochs"
    if best is not None:
        stopped = best.restore(trainer.model) or stopped
    return trainer, FitResult(
        log_history=list(trainer.state.log_history),
        train_seconds=seconds,
        train_samples_per_second=float(output.metrics.get("train_samples_per_second", 0.0)),
        resumed_from=resume_from,
        best_checkpoint=None,
        precision=precision,
        schedule=schedule,
        stopped=stopped,
        best_epoch=best.best_epoch if best is not None else None,
        checkpoint_bytes=lean.bytes_written(),
        attention=kernels or "model default",
        batch=split_of(trainer.args).describe(),
    )
