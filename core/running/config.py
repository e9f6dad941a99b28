"""Task configuration: the task file (TOML) plus ``--set key=value`` overrides.

A config is a nested dict. Its schema is a flat mapping of dotted keys to default values:
the core's keys below plus the ones the task's head declares. A value's type is the type
of its default, so ``--set train.epochs=4`` becomes ``4`` (int) and
``--set dataset.item_text=title,genres`` a list. ``dataset.columns`` is an open map from
column role to column name.
"""
from __future__ import annotations

import copy
import hashlib
import json
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import fields
from typing import Any

from . import tracking
from .distributed import split_batch
from .engine import ATTENTIONS, PRECISIONS, TrainSettings
from ..errors import ConfigError, did_you_mean
from ..models.lora import LORA_DEFAULTS, PEFTS

OPEN_MAPS = ("dataset.columns",)
TEXT_OR_LIST = ("train.report_to",)  # a string default that also takes a list of strings

CORE_SCHEMA: dict[str, Any] = {
    "name": "",
    "description": "",
    "head.name": "",
    "model": "minilm",
    "metrics": [],
    "primary_metric": "",
    "baselines": [],
    "dataset.name": "",  # a registered data set, used when no file is given
    "dataset.train": "",  # a training file (CSV, JSONL or Parquet)
    "dataset.eval": "",  # an evaluation file; else a seeded split of the training file
    "dataset.columns": {},  # role -> column name in the files
    "dataset.labels": [],  # declared labels; read from the data when empty
    "dataset.eval_fraction": 0.2,
    "dataset.split_seed": 13,
}
# The [train] keys and their defaults are TrainSettings' fields (declared once, in the engine).
CORE_SCHEMA.update({f"train.{f.name}": f.default for f in fields(TrainSettings)
                    if f.name not in ("extra", "lora")})
CORE_SCHEMA.update({f"train.lora.{key}": value for key, value in LORA_DEFAULTS.items()})


def flatten(tree: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """{'a': {'b': 1}} -> {'a.b': 1}; open maps stay whole."""
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, Mapping) and dotted not in OPEN_MAPS:
            flat.update(flatten(value, dotted + "."))
        else:
            flat[dotted] = value
    return flat


def unflatten(flat: Mapping[str, Any]) -> dict[str, Any]:
    tree: dict[str, Any] = {}
    for dotted, value in flat.items():
        *parents, leaf = dotted.split(".")
        node = tree
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = copy.deepcopy(value)
    return tree


def coerce(key: str, value: Any, default: Any, where: str) -> Any:
    """Convert ``value`` (a TOML value or a --set string) to the type of ``default``."""
    kind = type(default)
    if key in TEXT_OR_LIST and isinstance(value, (list, tuple)):
        return [str(v) for v in value]
    try:
        if isinstance(default, bool):
            if isinstance(value, bool):
                return value
            text = str(value).strip().lower()
            if text in ("true", "1", "yes", "on"):
                return True
            if text in ("false", "0", "no", "off"):
                return False
            raise ValueError
        if isinstance(default, (int, float)) and not isinstance(default, bool):
            if isinstance(value, bool):
                raise ValueError
            if kind is int:
                number = float(value)
                if number != int(number):
                    raise ValueError
                return int(number)
            return float(value)
        if isinstance(default, list):
            if isinstance(value, str):
                return [part.strip() for part in value.split(",") if part.strip()]
            if isinstance(value, (list, tuple)):
                return [str(v) for v in value]
            raise ValueError
        if isinstance(default, dict):
            if isinstance(value, Mapping):
                return {str(k): str(v) for k, v in value.items()}
            raise ValueError
        if isinstance(value, (dict, list)):
            raise ValueError
        return str(value)
    except (TypeError, ValueError, OverflowError):
        expected = {bool: "true or false", int: "an integer", float: "a number",
                    list: "a list (comma-separated on the command line)", dict: "a table",
                    str: "a string"}[kind]
        raise ConfigError(f"{where}: '{key}' must be {expected}, got {value!r}.") from None


def parse_override(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise ConfigError(
            f"--set '{text}': expected key=value, for example --set train.epochs=3."
        )
    return key.strip(), value.strip()


def resolve(
    schema: Mapping[str, Any],
    task_values: Mapping[str, Any],
    overrides: Iterable[str] = (),
    where: str = "task file",
) -> dict[str, Any]:
    """Defaults < task file < overrides, each key checked against the schema and typed."""
    flat = {key: copy.deepcopy(value) for key, value in schema.items()}

    def put(key: str, value: Any, origin: str, declared: Mapping[str, Any] | None = None) -> None:
        for open_map in OPEN_MAPS:
            if key.startswith(open_map + "."):
                role = key[len(open_map) + 1:]
                known = sorted((declared or {}).get(open_map, {}))
                if declared is not None and known and role not in known:
                    raise ConfigError(
                        f"{origin}: '{role}' is not a column role of this task."
                        f"{did_you_mean(role, known)} Roles: {', '.join(known)}; map one to your "
                        f"column with --set {open_map}.ROLE=COLUMN.")
                flat[open_map] = {**flat[open_map], role: str(value)}
                return
        if key not in schema:
            raise ConfigError(
                f"{origin}: unknown key '{key}'.{did_you_mean(key, schema)}"
                f" Keys in this task: {', '.join(sorted(schema))}."
            )
        flat[key] = coerce(key, value, schema[key], origin)

    for key, value in flatten(task_values).items():
        put(key, value, where)
    declared = {m: dict(flat[m]) for m in OPEN_MAPS if m in flat}  # the task's own roles
    for text in overrides:
        key, value = parse_override(text)
        put(key, value, f"--set {text}", declared)
    return unflatten(flat)


def config_hash(config: Mapping[str, Any]) -> str:
    blob = json.dumps(config, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:12]


def to_toml(config: Mapping[str, Any]) -> str:
    """Write a resolved config as TOML (scalars first, then one table per section)."""

    def value(v: Any) -> str:
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, (int, float)):
            return repr(v)
        if isinstance(v, (list, tuple)):
            return "[" + ", ".join(value(x) for x in v) + "]"
        return json.dumps(str(v))

    def table(node: Mapping[str, Any], prefix: str) -> list[str]:
        lines = [f"{k} = {value(v)}" for k, v in node.items() if not isinstance(v, Mapping)]
        for k, v in node.items():
            if isinstance(v, Mapping):
                name = f"{prefix}{k}"
                lines += ["", f"[{name}]", *table(v, name + ".")]
        return lines

    return "\n".join(table(config, "")) + "\n"


# -- settings checks -------------------------------------------------------------------
# Run before any model loads, so a typo costs a second, not a model load and a traceback.

SCHEDULERS = ("linear", "cosine", "cosine_with_restarts", "polynomial", "constant",
              "constant_with_warmup", "inverse_sqrt")
OPTIMIZERS = ("adamw_torch_fused", "adamw_torch", "adafactor", "sgd", "adagrad", "rmsprop")
MIN_MAX_LENGTH = 8


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _range(low: float | None, high: float | None, low_open: bool = False,
           high_open: bool = False) -> tuple[Any, str]:
    def ok(value: Any) -> bool:
        if not _finite(value):
            return False
        if low is not None and (value <= low if low_open else value < low):
            return False
        return high is None or (value < high if high_open else value <= high)

    left = "" if low is None else f"{'>' if low_open else '>='} {low:g}"
    right = "" if high is None else f"{'<' if high_open else '<='} {high:g}"
    return ok, "a finite number " + " and ".join(x for x in (left, right) if x)


def _choice(choices: tuple[str, ...]) -> tuple[Any, str]:
    return (lambda value: value in choices), "one of " + ", ".join(choices)


RULES: dict[str, tuple[Any, str]] = {
    "train.learning_rate": _range(0, None, low_open=True),
    "train.head_lr_scale": _range(0, None, low_open=True),
    "train.weight_decay": _range(0, None),
    "train.warmup_ratio": _range(0, 1, high_open=True),
    "train.max_grad_norm": _range(0, None),
    "train.label_smoothing": _range(0, 1, high_open=True),
    "train.batch_size": _range(1, None),
    "train.max_device_batch": _range(0, None),
    "train.eval_batch_size": _range(1, None),
    "train.max_length": _range(MIN_MAX_LENGTH, None),
    "train.seed": _range(0, 2**32 - 1),
    "train.step_budget": _range(1, None),
    "train.min_epochs": _range(1, None),
    "train.max_epochs": _range(1, None),
    "train.early_stopping_patience": _range(0, None),
    "train.early_stopping_min_delta": _range(0, None),
    "train.checkpoint_minutes": _range(0, None),
    "train.logging_steps": _range(0, None),
    "train.scheduler": _choice(SCHEDULERS),
    "train.optim": _choice(OPTIMIZERS),
    "train.precision": _choice(PRECISIONS),
    "train.attention": _choice(ATTENTIONS),
    "train.peft": _choice(PEFTS),
    "train.lora.r": _range(1, None),
    "train.lora.alpha": _range(0, None, low_open=True),
    "train.lora.dropout": _range(0, 1, high_open=True),
    "train.lora.learning_rate": _range(0, None, low_open=True),
    "train.lora.max_epochs": _range(1, None),
    "dataset.eval_fraction": _range(0, 1, low_open=True, high_open=True),
}
INTERVAL = re.compile(r"^\s*([\[(])\s*(-inf|[-+]?[0-9.]+(?:e[-+]?[0-9]+)?)?\s*,\s*"
                      r"(inf|[-+]?[0-9.]+(?:e[-+]?[0-9]+)?)?\s*([\])])\s*$")


def interval(text: str) -> tuple[Any, str]:
    """A head's range rule written as an interval, ``"[0, 1)"`` (an empty or infinite end:
    unbounded), as (check, what it expects); `ValueError` for anything else."""
    found = INTERVAL.match(str(text))
    if not found:
        raise ValueError(f"{text!r} is not an interval such as '[0, 1)' or '(0, inf)'")
    left, low, high, right = found.groups()
    low = None if low in (None, "-inf") else float(low)
    high = None if high in (None, "inf") else float(high)
    return _range(low, high, low_open=left == "(", high_open=right == ")")


def check_settings(config: Mapping[str, Any], where: str = "config",
                   rules: Mapping[str, tuple[Any, str]] | None = None) -> None:
    """Ranges, finiteness and known names of the settings that would otherwise fail (or,
    worse, silently train nothing) after a model load; raises one `ConfigError`. ``rules``:
    the head's own (its ``ranges``), checked after the core's."""
    flat = flatten(config)
    for key, (ok, expected) in {**RULES, **(rules or {})}.items():
        if key in flat and not ok(flat[key]):
            value = flat[key]
            choices = expected[len("one of "):].split(", ") if expected.startswith("one of ") else []
            hint = did_you_mean(str(value), choices) if isinstance(value, str) else ""
            raise ConfigError(f"{where}: '{key}' must be {expected}, got {value!r}.{hint} "
                              f"Fix it in the task file or with --set {key}=...")
    if "train.batch_size" in flat:  # the global batch, shared by this run's processes
        split_batch(flat["train.batch_size"], max_device_batch=flat.get("train.max_device_batch", 0),
                    where=where)
    if "train.report_to" in flat:  # one name, or a list of several
        config["train"]["report_to"] = tracking.normalize(flat["train.report_to"], where)
    steps = flat.get("train.max_steps", -1)
    if steps == 0 or steps < -1:
        raise ConfigError(f"{where}: 'train.max_steps' must be -1 (train by epochs) or 1 or "
                          f"more, got {steps}.")
    if "train" in config and "epochs" in config["train"]:
        config["train"]["epochs"] = _epochs(config["train"]["epochs"], steps, where)
        low, high = config["train"]["min_epochs"], config["train"]["max_epochs"]
        if high < low:
            raise ConfigError(f"{where}: 'train.max_epochs' ({high}) is below 'train.min_epochs' "
                              f"({low}); raise max_epochs or lower min_epochs.")


def _epochs(value: Any, max_steps: int, where: str) -> int | str:
    """``train.epochs``: "auto" or a whole number of epochs (1 or more unless max_steps)."""
    text = str(value).strip().lower()
    if text == "auto":
        return "auto"
    try:
        number = float(text)
    except ValueError:
        raise ConfigError(f"{where}: 'train.epochs' must be \"auto\" or a whole number, got "
                          f"{value!r}.") from None
    if not math.isfinite(number) or number != int(number):
        raise ConfigError(f"{where}: 'train.epochs' must be \"auto\" or a whole number, got "
                          f"{value!r}.")
    if max_steps == -1 and number < 1:
        raise ConfigError(f"{where}: 'train.epochs' is {int(number)}, so the model would never "
                          "be trained; use --set train.epochs=1 or more, or \"auto\" (or "
                          "train.max_steps=N).")
    return int(number)
