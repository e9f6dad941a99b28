"""Classification metrics. Each takes a head's evaluation outputs:

``{"labels": [name, ...], "y_true": [int, ...], "y_pred": [int, ...]}``

and returns a float (scalar metrics) or a JSON-serialisable table (details). The values
are scikit-learn's (``accuracy_score``, ``f1_score(average="macro", zero_division=0)``,
``classification_report``, ``confusion_matrix``; tests/test_metrics_agree.py checks it),
computed here with NumPy because the paired bootstrap of `app models compare` calls them
thousands of times (about 0.1 ms a call against scikit-learn's 3 ms).
"""
from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
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
    """Unweighted mean F1 over the labels present in the truth or the predictions
    (scikit-learn's ``f1_score(average="macro", zero_division=0)``).

    Heads whose unit is not one row (entity spans, say) give ``per_label_counts``: per
    example, ``{label: [true_positives, predicted, gold]}``; the counts are summed and the
    mean is taken over the labels with any. A fixed ``per_label_f1`` (``{label: f1}``) is
    deprecated: it is averaged as it is, but the paired bootstrap of `app models compare`
    cannot resample it.
    """
    if "per_label_counts" in outputs:
        return _mean_f1_of_counts(outputs["per_label_counts"])
    if "per_label_f1" in outputs:
        warnings.warn("evaluation outputs with 'per_label_f1' are deprecated: give "
                      "'per_label_counts' (per example, {label: [true_positives, predicted, "
                      "gold]}) so that app models compare can resample them",
                      DeprecationWarning, stacklevel=2)
        values = list(outputs["per_label_f1"].values())
        return float(np.mean(values)) if values else 0.0
    matrix = confusion(outputs)
    *_, f1, support = _per_class(matrix)
    present = (support > 0) | (matrix.sum(axis=0) > 0)
    return float(f1[present].mean()) if present.any() else 0.0


def _mean_f1_of_counts(rows: Sequence[Mapping[str, Sequence[int]]]) -> float:
    totals: dict[str, np.ndarray] = {}
    for row in rows:
        for label, counts in row.items():
            totals[label] = totals.get(label, 0) + np.asarray(counts, dtype=np.int64)
    if not totals:
        return 0.0
    tp, predicted, gold = np.array(list(totals.values()), dtype=float).T  # (L,) each
    present = (predicted > 0) | (gold > 0)
    if not present.any():
        return 0.0
    f1 = np.divide(2 * tp, predicted + gold, out=np.zeros_like(tp), where=predicted + gold > 0)
    return float(f1[present].mean())


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
