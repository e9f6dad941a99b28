"""Vector search for heads: `VectorIndex` (FAISS, exact up to ``exact_max`` vectors, HNSW
above; one hit per owner), and the exact top-k it is checked against.

    from tunehub.plugin.index import VectorIndex

See docs/heads.md (reference: tunehub.plugin.index).
"""
from __future__ import annotations

from ..core.models.index import EXACT_MAX, KINDS, VectorIndex, choose_kind, exact_top_k, normalise

__all__ = ["VectorIndex", "choose_kind", "exact_top_k", "normalise", "EXACT_MAX", "KINDS"]
