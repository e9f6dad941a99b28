"""Ranking metrics shared by retrieval and recommendation heads.

Each takes evaluation outputs of the form::

    {"ranked": [[id, id, ...], ...],      # per query: candidate ids, best first
     "relevant": [[id, ...], ...]}        # per query: the ids that count as hits

A query with no relevant id (e.g. an out-of-scope question) is left out of these metrics.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any


def _pairs(outputs: Mapping[str, Any]):
    for ranked, relevant in zip(outputs["ranked"], outputs["relevant"]):
        relevant = set(relevant)
        if relevant:
            yield list(ranked), relevant


def _mean_over_queries(name: str, per_query: Callable[[list, set], float]):
    """A metric averaging ``per_query(ranked, relevant)`` over queries that have an answer."""

    def metric(outputs: Mapping[str, Any]) -> float:
        scores = [per_query(ranked, relevant) for ranked, relevant in _pairs(outputs)]
        return sum(scores) / len(scores) if scores else 0.0

    metric.__name__ = name
    return metric


def recall_at(k: int):
    """Share of a query's relevant ids found in its top k, averaged over queries.

    With one relevant id per query this is the hit rate (HR@k)."""
    return _mean_over_queries(
        f"recall_at_{k}", lambda ranked, relevant: len(relevant & set(ranked[:k])) / len(relevant))


def mrr_at(k: int):
    """Mean reciprocal rank of the first relevant id within the top k (0 when absent)."""

    def reciprocal_rank(ranked: list, relevant: set) -> float:
        rank = next((i for i, item in enumerate(ranked[:k], 1) if item in relevant), None)
        return 1.0 / rank if rank else 0.0

    return _mean_over_queries(f"mrr_at_{k}", reciprocal_rank)


def ndcg_at(k: int):
    """Normalised discounted cumulative gain at k with binary relevance."""

    def ndcg(ranked: list, relevant: set) -> float:
        dcg = sum(1.0 / math.log2(i + 1) for i, item in enumerate(ranked[:k], 1) if item in relevant)
        ideal = sum(1.0 / math.log2(i + 1) for i in range(1, min(k, len(relevant)) + 1))
        return dcg / ideal

    return _mean_over_queries(f"ndcg_at_{k}", ndcg)
