"""`app new-plugin NAME`: write a ready-to-install plugin package from the templates here.

The templates (``*.tmpl``, package data) use ``{{placeholder}}`` fields; the result is a
pip package with the ``tunehub`` entry point, a task file, sample data, README and tests.
"""
from __future__ import annotations

import re
from importlib import resources
from pathlib import Path

from ..errors import ConfigError
from ..hookspecs import PLUGIN_API_VERSION

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
    return {
        "dist": name.replace("_", "-"),
        "module": name.replace("-", "_"),
        "task": task,
        "title": " ".join(part.capitalize() for part in re.split(r"[-_]", name)),
        "tunehub_version": core,
        "api": str(PLUGIN_API_VERSION),
    }


def render(text: str, fields: dict[str, str]) -> str:
    for key, value in fields.items():
        text = text.replace("{{" + key + "}}", value)
    return text


def write_plugin(name: str, dest: Path, task: str | None = None, force: bool = False) -> list[Path]:
    """Write the package into ``dest`` (a new folder); returns the files written."""
    fields = names(name, task)
    if dest.exists() and any(dest.iterdir()) and not force:
        raise ConfigError(f"{dest} already exists and is not empty; choose another --output "
                          "or pass --force to overwrite the generated files.")
    written = []
    templates = resources.files(__name__)
    for template, target in LAYOUT.items():
        path = dest / render(target, fields)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(render((templates / template).read_text(encoding="utf-8"), fields),
                        encoding="utf-8")
        written.append(path)
    return written
