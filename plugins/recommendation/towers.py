"""The text towers: item vectors from a sentence encoder plus a trained adapter; pooled users.

Item tower: the sentence encoder reads each item's text columns once (mean-pooled,
L2-normalised MiniLM embeddings ``e``); a residual adapter ``v = norm(e + W2 gelu(W1 e))``,
initialised at ``W2 = 0`` so it starts as the untuned encoder, is what training moves.
Cold items (no interactions) get vectors the same way: only their text is read.

User tower: the recency-weighted mean of the item vectors of the user's last
``history_len`` positives, ``u = norm(sum_t decay^age_t v_t)``; both settings are chosen on
validation. A user's score for an item is the cosine ``u . v``.

Training (`train_adapter`, in ``adapter.py``): every position of every user's history is a
sample (prefix -> next item), scored against the whole catalogue (a sampled one above
``FULL_SOFTMAX_MAX`` items) with a softmax cross-entropy, so the negatives are all other
items, popular and similar ones included; early stopping on validation NDCG@10.
"""
from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .dataset import Split

DECAYS = (0.3, 0.5, 0.7, 0.85, 0.95, 1.0)
HISTORY_LENS = (10, 30, 100)


@dataclass(frozen=True)
class Pooling:
    """How a user vector is made from the item vectors of the user's history."""

    history_len: int = 30
    decay: float = 0.9

    def as_dict(self) -> dict[str, float]:
        return {"history_len": self.history_len, "decay": self.decay}


def user_vectors(vectors: np.ndarray, split: Split, users: Sequence[str],
                 pooling: Pooling) -> np.ndarray:
    """(U, D) unit user vectors: recency-weighted mean of their last history items."""
    out = np.zeros((len(users), vectors.shape[1]), dtype=np.float32)
    for row, user in enumerate(users):
        items = split.history.get(user, [])[-pooling.history_len:]
        if not items:
            continue  # no history: a zero vector, every item scores 0
        weights = pooling.decay ** np.arange(len(items) - 1, -1, -1, dtype=np.float32)
        pooled = weights @ vectors[items]
        out[row] = pooled / max(float(np.linalg.norm(pooled)), 1e-12)
    return out


class TextScorer:
    """Cosine scores of every catalogue item for each user: ``(U, D) @ (D, I)``."""

    def __init__(self, vectors: np.ndarray, split: Split, pooling: Pooling) -> None:
        self.vectors, self.split, self.pooling = vectors, split, pooling

    def __call__(self, users: Sequence[str]) -> np.ndarray:
        return user_vectors(self.vectors, self.split, users, self.pooling) @ self.vectors.T


def choose_pooling(vectors: np.ndarray, split: Split, cases: list[tuple[str, int]]
                   ) -> tuple[Pooling, float]:
    """The pooling (history length x decay) with the best validation NDCG@10."""
    from .fusion import validation_ndcg

    if not cases:
        return Pooling(), float("nan")
    best, best_value = Pooling(), -1.0
    for history_len, decay in itertools.product(HISTORY_LENS, DECAYS):
        pooling = Pooling(history_len, decay)
        value = validation_ndcg(TextScorer(vectors, split, pooling), split, cases)
        if value > best_value:
            best, best_value = pooling, value
    return best, best_value


def relative_gain(base: np.ndarray, val: Any, pooling: Pooling,
                  adapt: Callable[[dict], np.ndarray]) -> Callable[[dict], float]:
    """The early-stopping score of adapter parameters: the geometric mean of the warm and
    the cold validation NDCG@10, each relative to the untuned tower's (1.0 at the start),
    so an epoch that helps warm items by hurting new ones does not count as a gain."""
    from .fusion import validation_ndcg

    def measure(vectors: np.ndarray) -> tuple[float, float]:
        scorer = TextScorer(vectors, val.split, pooling)
        return (validation_ndcg(scorer, val.split, val.warm),
                validation_ndcg(scorer, val.split, val.cold) if val.cold else 0.0)

    warm0, cold0 = measure(base)

    def score(params: dict) -> float:
        warm, cold = measure(adapt(params))
        if cold0 <= 0:
            return warm / max(warm0, 1e-12)
        return math.sqrt(max(warm, 0.0) / max(warm0, 1e-12) * max(cold, 0.0) / cold0)

    return score
