"""Classification metrics. Each takes a head's evaluation outputs:

``{"labels": [name, ...], "y_true": [int, ...], "y_pred": [int, ...]}``

and returns a float (scalar metrics) or a JSON-serialisable table (details).
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np


def confusion(outputs: Mapping[str, Any]) -> np.ndarray:
    """(C, C) counts: row = true label, column = predicted label."""
    n = len(outputs["labels"])
    matrix = np.zeros((n, n), dtype=np.int64)
    np.add.at(matrix, (np.asarray(outputs["y_true"]), np.asarray(outputs["y_pred"])), 1)
    return matrix


def _per_class(matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    tp = np.diag(matrix).astype(float)
    predicted, support = matrix.sum(axis=0), matrix.sum(axis=1)
    precision = np.divide(tp, predicted, out=np.zeros_like(tp), where=predicted > 0)
    recall = np.divide(tp, support, out=np.zeros_like(tp), where=support > 0)
    denom = precision + recall
    f1 = np.divide(2 * precision * recall, denom, out=np.zeros_like(tp), where=denom > 0)
    return precision, recall, f1, support


def accuracy(outputs: Mapping[str, Any]) -> float:
    y_true, y_pred = np.asarray(outputs["y_true"]), np.asarray(outputs["y_pred"])
    return float((y_true == y_pred).mean()) if len(y_true) else 0.0


def macro_f1(outputs: Mapping[str, Any]) -> float:
    """Unweighted mean F1 over the labels present in the truth or the predictions.

    Heads whose unit is not one row (entity spans, say) give their labels' F1 as
    ``per_label_f1`` in the outputs; the mean is taken over those.
    """
    if "per_label_f1" in outputs:
        values = list(outputs["per_label_f1"].values())
        return float(np.mean(values)) if values else 0.0
    matrix = confusion(outputs)
    *_, f1, support = _per_class(matrix)
    present = (support > 0) | (matrix.sum(axis=0) > 0)
    return float(f1[present].mean()) if present.any() else 0.0


def classification_report(outputs: Mapping[str, Any]) -> dict[str, dict[str, float]]:
    """Per-class precision, recall, F1 and support, plus macro and weighted averages."""
    matrix = confusion(outputs)
    precision, recall, f1, support = _per_class(matrix)
    report = {
        label: {"precision": float(p), "recall": float(r), "f1": float(f), "support": int(s)}
        for label, p, r, f, s in zip(outputs["labels"], precision, recall, f1, support)
    }
    total = support.sum()
    weights = support / total if total else support
    for name, avg in (("macro avg", np.mean), ("weighted avg", None)):
        pick = (lambda v: float(np.mean(v))) if avg else (lambda v: float((v * weights).sum()))
        report[name] = {"precision": pick(precision), "recall": pick(recall),
                        "f1": pick(f1), "support": int(total)}
    return report


def confusion_matrix(outputs: Mapping[str, Any]) -> dict[str, Any]:
    return {"labels": list(outputs["labels"]), "matrix": confusion(outputs).tolist()}
