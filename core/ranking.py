"""Ranking metrics shared by retrieval and recommendation heads.

Each takes evaluation outputs of the form::

    {"ranked": [[id, id, ...], ...],      # per query: candidate ids, best first
     "relevant": [[id, ...], ...]}        # per query: the ids that count as hits

A query with no relevant id (e.g. an out-of-scope question) is left out of these metrics.
"""
from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any


def _pairs(outputs: Mapping[str, Any]):
    for ranked, relevant in zip(outputs["ranked"], outputs["relevant"]):
        relevant = set(relevant)
        if relevant:
            yield list(ranked), relevant


def recall_at(k: int):
    """Share of a query's relevant ids found in its top k, averaged over queries.

    With one relevant id per query this is the hit rate (HR@k)."""

    def metric(outputs: Mapping[str, Any]) -> float:
        scores = [len(relevant & set(ranked[:k])) / len(relevant) for ranked, relevant in _pairs(outputs)]
        return sum(scores) / len(scores) if scores else 0.0

    metric.__name__ = f"recall_at_{k}"
    return metric


def mrr_at(k: int):
    """Mean reciprocal rank of the first relevant id within the top k (0 when absent)."""

    def metric(outputs: Mapping[str, Any]) -> float:
        scores = []
        for ranked, relevant in _pairs(outputs):
            rank = next((i for i, item in enumerate(ranked[:k], 1) if item in relevant), None)
            scores.append(1.0 / rank if rank else 0.0)
        return sum(scores) / len(scores) if scores else 0.0

    metric.__name__ = f"mrr_at_{k}"
    return metric


def ndcg_at(k: int):
    """Normalised discounted cumulative gain at k with binary relevance."""

    def metric(outputs: Mapping[str, Any]) -> float:
        scores = []
        for ranked, relevant in _pairs(outputs):
            dcg = sum(1.0 / math.log2(i + 1) for i, item in enumerate(ranked[:k], 1) if item in relevant)
            ideal = sum(1.0 / math.log2(i + 1) for i in range(1, min(k, len(relevant)) + 1))
            scores.append(dcg / ideal)
        return sum(scores) / len(scores) if scores else 0.0

    metric.__name__ = f"ndcg_at_{k}"
    return metric
