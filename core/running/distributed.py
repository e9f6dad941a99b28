"""One global batch, whatever the number of processes.

``train.batch_size`` is the number of rows in one optimizer step. Under ``torchrun`` or
``accelerate launch`` the engine splits it: each of the ``WORLD_SIZE`` processes takes an
equal share, and when that share is larger than ``train.max_device_batch`` it is fed in
several forward/backward passes (gradient accumulation). One process or eight: the same
optimizer steps over the same rows, so the same schedule and, up to floating point and
dropout, the same model.

The Trainer is handed the batch before the split (``per_device_train_batch_size`` is the
rows of one accumulation pass over all processes) with Accelerate's ``split_batches``:
the sampler, length grouping and step count see the same batches as a one-process run,
and Accelerate gives each process its slice.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import Any

from ..errors import ConfigError


def is_main_process() -> bool:
    """True in the process that saves and reports (rank 0, or the only one)."""
    return int(os.environ.get("RANK", "0")) == 0


def world_size() -> int:
    """The number of processes of this run (``WORLD_SIZE``, set by torchrun and accelerate
    launch; 1 when unset)."""
    text = os.environ.get("WORLD_SIZE", "1").strip() or "1"
    try:
        size = int(text)
    except ValueError:
        raise ConfigError(f"WORLD_SIZE must be a whole number of processes, got {text!r}; "
                          "leave it to torchrun or accelerate launch.") from None
    if size < 1:
        raise ConfigError(f"WORLD_SIZE must be 1 or more, got {size}.")
    return size


@dataclass(frozen=True)
class BatchSplit:
    """How one optimizer step of ``batch`` rows is shared: ``processes`` x ``device_batch``
    rows x ``accumulation`` forward/backward passes."""

    batch: int
    processes: int
    device_batch: int
    accumulation: int

    @property
    def loader_batch(self) -> int:
        """Rows of one accumulation pass over all processes (the Trainer's
        ``per_device_train_batch_size`` under Accelerate's ``split_batches``)."""
        return self.device_batch * self.processes

    def describe(self) -> str:
        """'32 rows an optimizer step (2 processes x 16 rows x 1 pass)'."""
        return (f"{self.batch} rows an optimizer step ({_count(self.processes, 'process')} x "
                f"{self.device_batch} rows x {_count(self.accumulation, 'pass')})")


def _count(n: int, word: str) -> str:
    return f"{n} {word}{'es' if n != 1 else ''}"


def _split(batch: int, processes: int, max_device_batch: int) -> BatchSplit | None:
    """The split with the fewest passes, or None when ``batch`` does not split evenly."""
    share, rest = divmod(batch, processes)
    if rest or share < 1:
        return None
    passes = math.ceil(share / max_device_batch) if max_device_batch > 0 else 1
    if share % passes:
        return None
    return BatchSplit(batch, processes, share // passes, passes)


def nearest_batches(batch: int, processes: int, max_device_batch: int = 0) -> tuple[int | None, int]:
    """The valid global batches nearest ``batch``: (the largest below it or None, the
    smallest above it). A multiple of ``processes x max_device_batch`` is always valid."""
    below = next((b for b in range(batch - 1, 0, -1) if _split(b, processes, max_device_batch)),
                 None)
    above = next(b for b in range(batch + 1, batch + 2 + processes * max(max_device_batch, 1))
                 if _split(b, processes, max_device_batch))
    return below, above


def split_batch(batch: int, processes: int | None = None, max_device_batch: int = 0,
                key: str = "train.batch_size", where: str = "config") -> BatchSplit:
    """Share a global batch of ``batch`` rows among ``processes`` (default: this run's world
    size), in as few accumulation passes as keep each device at ``max_device_batch`` rows
    or fewer (0: no limit). Raises one `ConfigError` naming ``key``, the process count and
    the nearest batches that split evenly."""
    processes = world_size() if processes is None else int(processes)
    found = _split(int(batch), processes, int(max_device_batch))
    if found is not None:
        return found
    below, above = nearest_batches(int(batch), processes, int(max_device_batch))
    share = batch // processes
    if batch % processes:
        why, other = f"{batch} is not a multiple of {processes}", ""
    else:
        passes = math.ceil(share / max_device_batch)
        why = (f"{share} rows a process need {passes} passes of at most {max_device_batch} rows "
               f"(train.max_device_batch), and {share} is not a multiple of {passes}")
        other = " (or another train.max_device_batch)"
    options = " or ".join(f"--set {key}={b}" for b in (below, above) if b is not None)
    raise ConfigError(
        f"{where}: '{key}' is the global batch ({batch} rows an optimizer step), shared equally "
        f"by this run's {_count(processes, 'process')}: {why}. Use {options}{other}."
    )


def split_of(args: Any) -> BatchSplit:
    """The split a Trainer runs with these TrainingArguments (with or without Accelerate's
    ``split_batches``)."""
    processes = max(args.world_size, 1)
    device_batch = args.per_device_train_batch_size
    if args.accelerator_config.split_batches:
        device_batch //= processes
    passes = max(args.gradient_accumulation_steps, 1)
    return BatchSplit(device_batch * processes * passes, processes, device_batch, passes)
