"""Task specs: a task is data (its TOML file), its components referenced by registered name."""
from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import ConfigError



@dataclass(frozen=True)
class TaskSpec:
    """One task as declared: its name, head, and the raw values of its file."""

    name: str
    head: str
    description: str = ""
    values: Mapping[str, Any] = field(default_factory=dict)
    source: str = ""  # the task file, or "<plugin>" for tasks registered as mappings
    plugin: str = ""  # which plugin registered it

    @property
    def metrics(self) -> list[str]:
        return list(self.values.get("metrics", []))

    @property
    def primary_metric(self) -> str:
        return str(self.values.get("primary_metric", ""))


def read_toml(path: Path, what: str = "task file") -> dict[str, Any]:
    try:
        with open(path, "rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError:
        raise ConfigError(f"{what} {path} does not exist.") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{what} {path} is not valid TOML: {exc}. Fix the syntax there.") from None


def task_from(entry: Any, plugin: str) -> TaskSpec:
    """Build a TaskSpec from what a plugin passed to ``register``: a path or a mapping."""
    if isinstance(entry, (str, Path)):
        values, source = read_toml(Path(entry)), str(entry)
    elif isinstance(entry, Mapping):
        values, source = dict(entry), f"<{plugin}>"
    else:
        raise ConfigError(
            f"plugin '{plugin}' registered a task as {type(entry).__name__}; "
            "pass the path of a task TOML file or a mapping."
        )
    head = values.get("head", {})
    head = head.get("name") if isinstance(head, Mapping) else None
    if not values.get("name") or not head:
        raise ConfigError(
            f"task {source}: needs a top-level 'name' and a [head] table with 'name', "
            "e.g. [head] name = \"sequence-classification\"."
        )
    return TaskSpec(
        name=str(values["name"]),
        head=str(head),
        description=str(values.get("description", "")),
        values=values,
        source=source,
        plugin=plugin,
    )
