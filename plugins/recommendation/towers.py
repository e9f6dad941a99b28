"""The two-tower text model and the hybrid scorer built on it.

User tower: the encoder reads the titles of the user's most recent positives (newest
first). Item tower: the same encoder reads the item's text columns. Both are mean-pooled,
L2-normalised sentence embeddings, so the inner product in a FAISS ``IndexFlatIP`` is the
cosine similarity. Fine-tuning uses pairs (history text, next item text) with
MultipleNegativesRankingLoss: the other items in a batch are the negatives.

The served score adds two collaborative signals, each standardised per user:
``w_text * z(cosine) + w_knn * z(ItemKNN) + w_pop * z(log1p popularity)``. The weights are
chosen on a validation split (each user's last training positive), never on test items.
"""
from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from tunehub.core.biencoder import encode

from .dataset import Split
from .scoring import ItemKNN, popularity, standardize


def user_text(split: Split, items: Sequence[int], history_len: int) -> str:
    """Titles of the last ``history_len`` items, newest first."""
    titles = [split.catalog.titles[i] for i in reversed(list(items)[-history_len:])]
    return "; ".join(titles) if titles else "(no history)"


def training_pairs(split: Split, history_len: int, pairs_per_user: int) -> dict[str, list[str]]:
    """(anchor: history text, positive: next item text), the latest ``pairs_per_user`` per user."""
    anchors, positives = [], []
    for user in sorted(split.history):
        items = split.history[user]
        for t in range(max(1, len(items) - pairs_per_user), len(items)):
            anchors.append(user_text(split, items[:t], history_len))
            positives.append(split.catalog.texts[items[t]])
    return {"anchor": anchors, "positive": positives}


class TextScorer:
    """Cosine scores from a FAISS inner-product index over the item embeddings."""

    def __init__(self, model, split: Split, item_vectors: np.ndarray, history_len: int,
                 batch_size: int = 128) -> None:
        import faiss

        self.model, self.split, self.history_len, self.batch_size = model, split, history_len, batch_size
        self.index = faiss.IndexFlatIP(item_vectors.shape[1])
        self.index.add(item_vectors)
        self.cache: dict[str, np.ndarray] = {}  # user -> (D,) query vector

    def __call__(self, users: Sequence[str]) -> np.ndarray:
        new = [u for u in dict.fromkeys(users) if u not in self.cache]
        texts = [user_text(self.split, self.split.history.get(u, []), self.history_len) for u in new]
        if new:
            self.cache.update(zip(new, encode(self.model, texts, self.batch_size)))
        queries = np.stack([self.cache[u] for u in users])  # (B, D)
        n = self.index.ntotal
        found, ids = self.index.search(queries, n)  # (B, n) every item, best first
        scores = np.empty((len(users), n), dtype=np.float32)
        np.put_along_axis(scores, ids, found, axis=1)
        return scores


@dataclass
class Weights:
    text: float = 1.0
    knn: float = 0.0
    pop: float = 0.0

    def as_dict(self) -> dict[str, float]:
        return {"text": self.text, "knn": self.knn, "pop": self.pop}


class HybridScorer:
    """Weighted sum of per-user standardised text, ItemKNN and popularity scores."""

    def __init__(self, text: TextScorer, split: Split, weights: Weights) -> None:
        self.text, self.split, self.weights = text, split, weights
        self.knn = ItemKNN(split)
        self.pop = standardize(np.log1p(popularity(split)))  # (I,)

    def signals(self, users: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        return standardize(self.text(users)), standardize(self.knn(users))

    def __call__(self, users: Sequence[str]) -> np.ndarray:
        text, knn = self.signals(users)
        w = self.weights
        return w.text * text + w.knn * knn + w.pop * self.pop[None, :]


GRID_KNN = (0.0, 0.25, 0.5, 1.0, 2.0, 4.0)
GRID_POP = (0.0, 0.25, 0.5, 1.0, 2.0)


def choose_weights(scorer: HybridScorer, cases: list[tuple[str, int]], k: int = 10
                   ) -> tuple[Weights, dict[str, float]]:
    """Grid-search the fusion weights for NDCG@k on validation cases.

    Returns the best weights and the validation NDCG@k of text only, ItemKNN only, and the
    chosen mix (for the report)."""
    users = [u for u, _ in cases]
    targets = np.array([t for _, t in cases])
    text, knn = scorer.signals(users)  # (V, I) each
    pop = np.broadcast_to(scorer.pop[None, :], text.shape)
    seen = np.zeros(text.shape, dtype=bool)
    for row, user in enumerate(users):
        seen[row, list(scorer.split.seen.get(user, ()))] = True

    def ndcg(scores: np.ndarray) -> float:
        scores = np.where(seen, -np.inf, scores)
        target = scores[np.arange(len(users)), targets][:, None]
        rank = 1 + (scores > target).sum(axis=1)  # optimistic on ties: fine for choosing
        return float(np.where(rank <= k, 1.0 / np.log2(rank + 1), 0.0).mean())

    options = [Weights(1.0, a, b) for a, b in itertools.product(GRID_KNN, GRID_POP)]
    options += [Weights(0.0, 1.0, b) for b in GRID_POP]
    values = {}
    for w in options:
        values[(w.text, w.knn, w.pop)] = ndcg(w.text * text + w.knn * knn + w.pop * pop)
    best = max(options, key=lambda w: (values[(w.text, w.knn, w.pop)], -w.knn - w.pop))
    report = {"text only": values[(1.0, 0.0, 0.0)], "itemknn only": values[(0.0, 1.0, 0.0)],
              "chosen": values[(best.text, best.knn, best.pop)]}
    return best, {key: round(value, 4) for key, value in report.items() if not math.isnan(value)}


def describe(weights: Weights, validation: Mapping[str, Any]) -> str:
    w = weights.as_dict()
    mix = " + ".join(f"{v:g}*{k}" for k, v in w.items() if v)
    return f"score = {mix} (z-scored per user); validation ndcg@10: " + \
        ", ".join(f"{k} {v}" for k, v in validation.items())
