"""Entity-level metrics with CoNLL semantics: an entity counts only with exact span and type.

Each metric takes the evaluation outputs of the head (or of a baseline)::

    {"labels": [type, ...], "y_true": [[tag, ...], ...], "y_pred": [[tag, ...], ...],
     "per_label_counts": [{type: [tp, predicted, gold], ...}, ...]}

tags in IOB2, one list per sentence. ``per_label_counts`` lets the core's ``macro_f1``
(the unweighted mean over types) score entities rather than rows; `entity_outputs` fills
it. The scores equal seqeval's default (conlleval) mode: ``seqeval.metrics.f1_score``
(micro and macro), ``precision_score``, ``recall_score``, ``accuracy_score`` and
``classification_report``.
"""
from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

from .tags import spans


def counts(y_true: Sequence[Sequence[str]], y_pred: Sequence[Sequence[str]]):
    """(true positives, predicted, gold) entity counts per type."""
    tp, predicted, gold = Counter(), Counter(), Counter()
    for true_tags, pred_tags in zip(y_true, y_pred, strict=True):
        truth, guess = set(spans(true_tags)), set(spans(pred_tags))
        for _, _, kind in truth:
            gold[kind] += 1
        for _, _, kind in guess:
            predicted[kind] += 1
        for _, _, kind in truth & guess:
            tp[kind] += 1
    return tp, predicted, gold


def _prf(tp: int, predicted: int, gold: int) -> tuple[float, float, float]:
    precision = tp / predicted if predicted else 0.0
    recall = tp / gold if gold else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return precision, recall, f1


def per_type(outputs: Mapping[str, Any]) -> dict[str, dict[str, float]]:
    """{type: {precision, recall, f1, support}} for the declared types and any predicted."""
    tp, predicted, gold = counts(outputs["y_true"], outputs["y_pred"])
    kinds = list(dict.fromkeys([*outputs.get("labels", []), *sorted(gold | predicted)]))
    table = {}
    for kind in kinds:
        p, r, f = _prf(tp[kind], predicted[kind], gold[kind])
        table[kind] = {"precision": round(p, 6), "recall": round(r, 6), "f1": round(f, 6),
                       "support": gold[kind]}
    return table


def _micro(outputs: Mapping[str, Any]) -> tuple[float, float, float]:
    tp, predicted, gold = counts(outputs["y_true"], outputs["y_pred"])
    return _prf(sum(tp.values()), sum(predicted.values()), sum(gold.values()))


def precision(outputs: Mapping[str, Any]) -> float:
    return _micro(outputs)[0]


def recall(outputs: Mapping[str, Any]) -> float:
    return _micro(outputs)[1]


def f1(outputs: Mapping[str, Any]) -> float:
    return _micro(outputs)[2]


def token_accuracy(outputs: Mapping[str, Any]) -> float:
    """Share of tokens whose IOB2 tag is right (O included, as CoNLL's conlleval reports)."""
    right = total = 0
    for true_tags, pred_tags in zip(outputs["y_true"], outputs["y_pred"], strict=True):
        right += sum(t == p for t, p in zip(true_tags, pred_tags, strict=True))
        total += len(true_tags)
    return right / total if total else 0.0


def per_label_counts(y_true, y_pred) -> list[dict[str, list[int]]]:
    """Per sentence, ``{type: [true positives, predicted, gold]}`` for the types in it: the
    core's ``macro_f1`` sums them (and the paired bootstrap resamples them by sentence)."""
    rows = []
    for true_tags, pred_tags in zip(y_true, y_pred, strict=True):
        tp, predicted, gold = counts([true_tags], [pred_tags])
        rows.append({k: [tp[k], predicted[k], gold[k]] for k in sorted(gold | predicted)})
    return rows


def entity_outputs(types: Sequence[str], y_true: Sequence[Sequence[str]],
                   y_pred: Sequence[Sequence[str]], **extra: Any) -> dict[str, Any]:
    """The outputs every entity metric reads (also what baselines return)."""
    y_true, y_pred = [list(t) for t in y_true], [list(p) for p in y_pred]
    return {"labels": list(types), "y_true": y_true, "y_pred": y_pred,
            "per_label_counts": per_label_counts(y_true, y_pred), **extra}


METRICS = {
    "f1": (f1, True, "entity-level micro F1 (exact span and type, CoNLL)"),
    "precision": (precision, True, "entity-level micro precision (exact span and type)"),
    "recall": (recall, True, "entity-level micro recall (exact span and type)"),
    "token_accuracy": (token_accuracy, True, "share of tokens with the right IOB2 tag"),
}


def register_all(register) -> None:
    """Register the entity metrics (``macro_f1`` is the core's, reading ``per_label_counts``)."""
    for name, (fn, higher, description) in METRICS.items():
        register(name, fn, higher_is_better=higher, description=description)
    register("per_type", per_type, scalar=False,
             description="per entity type: precision, recall, F1 and support")
