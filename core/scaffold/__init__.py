"""`app new-plugin NAME [--head]`: write a ready-to-install plugin package from the
templates here.

The templates (``*.tmpl``, package data) use ``{{placeholder}}`` fields; the result is a
pip package with the ``tunehub`` entry point, a task file, sample data, README and tests.
With ``--head`` the package also holds a head of its own (a Trainer-based text
classifier written against `tunehub.plugin`) that its task uses.
"""
from __future__ import annotations

import re
from importlib import resources
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from ..extending.hookspecs import PLUGIN_API_VERSION

NAME = re.compile(r"^[a-z][a-z0-9]*(?:[-_][a-z0-9]+)*$")
# template -> where it goes in the new package
LAYOUT = {
    "pyproject.toml.tmpl": "pyproject.toml",
    "README.md.tmpl": "README.md",
    "plugin.py.tmpl": "{{module}}/__init__.py",
    "task.toml.tmpl": "{{module}}/{{task}}.toml",
    "sample.csv.tmpl": "{{module}}/data/sample.csv",
    "test_plugin.py.tmpl": "tests/test_{{module}}.py",
}
# with --head: the same package plus head.py, whose task names the new head
LAYOUT_HEAD = {
    "pyproject.toml.tmpl": "pyproject.toml",
    "README_head.md.tmpl": "README.md",
    "plugin_head.py.tmpl": "{{module}}/__init__.py",
    "head.py.tmpl": "{{module}}/head.py",
    "task_head.toml.tmpl": "{{module}}/{{task}}.toml",
    "sample.csv.tmpl": "{{module}}/data/sample.csv",
    "test_head.py.tmpl": "tests/test_{{module}}.py",
}


def names(name: str, task: str | None = None) -> dict[str, str]:
    """The fields the templates use, from a plugin name such as ``acme-tickets``."""
    if not NAME.match(name):
        raise ConfigError(
            f"plugin name '{name}': use lower-case letters, digits and single '-' or '_' "
            "between them, starting with a letter (e.g. acme-tickets)."
        )
    task = task or name.replace("_", "-")
    if not NAME.match(task):
        raise ConfigError(f"task name '{task}': use lower-case letters, digits and '-'.")
    from importlib.metadata import PackageNotFoundError, version

    try:
        core = version("tunehub")
    except PackageNotFoundError:  # pragma: no cover - running from a source tree
        core = "0.1.0"
    words = [part.capitalize() for part in re.split(r"[-_]", name)]
    return {
        "dist": name.replace("_", "-"),
        "module": name.replace("-", "_"),
        "task": task,
        "head": f"{task}-classifier",
        "head_class": "".join(words) + "Head",
        "title": " ".join(words),
        "tunehub_version": core,
        "api": str(PLUGIN_API_VERSION),
    }


def render(text: str, fields: dict[str, str]) -> str:
    for key, value in fields.items():
        text = text.replace("{{" + key + "}}", value)
    return text


def check_free(fields: dict[str, str], catalog: Any, head: bool = False) -> None:
    """Refuse a task (or, with ``head``, a head) name that another loaded plugin already
    registers: the new plugin would fail to load next to it. The plugin being regenerated
    (same module, e.g. installed and rewritten with --force) is no clash."""
    taken = [("task", fields["task"], "tasks")] + ([("head", fields["head"], "heads")] if head else [])
    for label, name, kind in taken:
        owner = catalog.owners[kind].get(name) or "another plugin"
        if name in catalog.items[kind] and owner != fields["module"]:
            raise ConfigError(f"{label} '{name}' already exists (registered by {owner}); choose "
                              "another plugin name, or another task name with --task NAME.")


def write_plugin(name: str, dest: Path, task: str | None = None, force: bool = False,
                 head: bool = False) -> list[Path]:
    """Write the package into ``dest`` (a new folder); returns the files written.

    ``head``: also write a head of the package's own (head.py) and make the task use it."""
    fields = names(name, task)
    if dest.exists() and any(dest.iterdir()) and not force:
        raise ConfigError(f"{dest} already exists and is not empty; choose another --output "
                          "or pass --force to overwrite the generated files.")
    written = []
    templates = resources.files(__name__)
    for template, target in (LAYOUT_HEAD if head else LAYOUT).items():
        path = dest / render(target, fields)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(render((templates / template).read_text(encoding="utf-8"), fields),
                        encoding="utf-8")
        written.append(path)
    return written
