"""Ranking metrics over ``ranked``/``relevant`` evaluation outputs, for heads and plugins
that register their own cut-offs: ``recall_at(k)``, ``mrr_at(k)``, ``ndcg_at(k)`` each
return a metric function.

See docs/heads.md (reference: tunehub.plugin.ranking).
"""
from __future__ import annotations

from ..core.running.ranking import mrr_at, ndcg_at, recall_at

__all__ = ["recall_at", "mrr_at", "ndcg_at"]
