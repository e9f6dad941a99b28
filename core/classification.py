"""Deprecated location of the ``sequence-classification`` head.

It moved to `tunehub.plugins.classification.head` (a default plugin). This module keeps
the old import path working for one release, with a `DeprecationWarning`.
"""
from __future__ import annotations

import warnings
from typing import Any

MOVED = "tunehub.plugins.classification.head"


def __getattr__(name: str) -> Any:
    import importlib

    warnings.warn(f"tunehub.core.classification.{name} moved to {MOVED}.{name}; "
                  "the old path goes away in the next release.", DeprecationWarning, stacklevel=2)
    return getattr(importlib.import_module(MOVED), name)
