"""Task files (TOML) of the built-in tasks, shipped as package data."""
from __future__ import annotations

from importlib import resources
from pathlib import Path


def task_file(name: str) -> Path:
    """Path of a built-in task file, e.g. ``task_file("financial-sentiment")``."""
    return Path(str(resources.files(__name__) / f"{name}.toml"))
