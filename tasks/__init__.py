"""Deprecated: the built-in task files now live beside their plugins
(``tunehub/plugins/<plugin>/<task>.toml``); `task_file` finds them there."""
from __future__ import annotations

import warnings
from pathlib import Path

_PLUGINS = {"financial-sentiment": "financial_sentiment", "customer-service-qa": "customer_service",
            "entity-extraction": "entity_extraction", "recommendation-scoring": "recommendation"}


def task_file(name: str) -> Path:
    """Path of a built-in task file, e.g. ``task_file("financial-sentiment")`` (deprecated:
    ``app tasks --json`` lists every task's file)."""
    warnings.warn("tunehub.tasks.task_file is deprecated and goes in the next release; the "
                  "built-in task files live beside their plugins (app tasks --json shows where).",
                  DeprecationWarning, stacklevel=2)
    return Path(__file__).resolve().parent.parent / "plugins" / _PLUGINS.get(name, name) / f"{name}.toml"
