"""Task specs: a task is data (its TOML file), its components referenced by registered name."""
from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import ConfigError



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
    except RecursionError:
        raise ConfigError(f"{what} {path} nests tables or arrays too deeply to read; flatten "
                          "it.") from None
    except IsADirectoryError:
        raise ConfigError(f"{what} {path} is a folder; give a .toml file.") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{what} {path} is not valid UTF-8 text; save it as UTF-8.") from None


# A task name: letters, digits, '.', '_' and '-', starting with a letter or digit. It names a
# folder under $TUNEHUB_HOME/artifacts/, so nothing that could climb out of it.
TASK_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")


def valid_task_name(name: Any) -> bool:
    return isinstance(name, str) and bool(TASK_NAME.match(name)) and ".." not in name


def check_task_name(name: Any, where: str) -> str:
    """``name`` when it is a valid task name, else one `ConfigError` naming the rule."""
    if not valid_task_name(name):
        raise ConfigError(f"{where}: task name {name!r} is not allowed: use letters, digits, "
                          "'.', '_' and '-', starting with a letter or digit (at most 100 "
                          "characters, no '..').")
    return name


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
        name=check_task_name(values["name"], f"task {source}"),
        head=str(head),
        description=str(values.get("description", "")),
        values=values,
        source=source,
        plugin=plugin,
    )
