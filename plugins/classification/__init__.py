"""The built-in ``sequence-classification`` head and its ``majority-class`` baseline.

A default plugin: it registers through the same hooks as any third-party plugin, and the
core reaches the head only through the head protocol (`tunehub.core.extending.heads`).
"""
from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from typing import Any

from tunehub.plugin import PLUGIN_API_VERSION, hookimpl

TUNEHUB_PLUGIN_API = PLUGIN_API_VERSION


@hookimpl
def register_heads(register) -> None:
    from .head import SequenceClassificationHead

    register(SequenceClassificationHead())


def majority_class(data: Any, config: Mapping[str, Any]) -> dict[str, Any]:
    """Predict the most frequent training label for every evaluation row."""
    top = Counter(data.train.labels).most_common(1)[0][0]
    return {"labels": data.info["labels"], "y_true": list(data.eval.labels),
            "y_pred": [top] * len(data.eval.labels)}


@hookimpl
def register_baselines(register) -> None:
    register("majority-class", majority_class,
             description="always predicts the most frequent training label")
