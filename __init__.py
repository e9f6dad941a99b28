"""tunehub: fine-tune pretrained transformers for business tasks, one plugin per task.

The Python API mirrors the CLI::

    import tunehub
    result = tunehub.run_task("financial-sentiment", overrides=["train.epochs=2"])
    print(result.metrics, result.artifact)
    tunehub.predict("financial-sentiment", ["Profit rose 20%."])
    model = tunehub.load("financial-sentiment")  # load once, predict many

Importing tunehub is cheap: torch and transformers load only when a model is used.
"""
from __future__ import annotations

from typing import Any

__version__ = "0.1.0"
__all__ = ["run_task", "evaluate", "predict", "load", "validate_data", "list_tasks",
           "load_catalog", "RunResult", "TunehubError"]


def __getattr__(name: str) -> Any:
    if name in ("run_task", "evaluate", "predict", "load", "validate_data", "RunResult"):
        from .core.running import runner

        return getattr(runner, name)
    if name == "load_catalog":
        from .core.extending.plugins import load_catalog

        return load_catalog
    if name == "TunehubError":
        from .core.errors import TunehubError

        return TunehubError
    raise AttributeError(f"module 'tunehub' has no attribute {name!r}")


def list_tasks() -> list[str]:
    """Names of the tasks the loaded plugins provide."""
    from .core.extending.plugins import load_catalog

    return sorted(load_catalog().tasks)
