"""Collaborative scorers beside ItemKNN: EASE and first-order item transitions.

EASE (Steck 2019) is a closed-form item-item linear model: with the item Gram matrix
``G = X^T X`` of the 0/1 interaction matrix ``X`` (users x items),
``P = (G + lambda I)^-1`` and ``B_ij = -P_ij / P_jj`` (zero diagonal); a user's scores
are ``x_u B``. It needs a dense (I, I) float32 matrix over the items that have
training interactions, so memory grows with items^2 and time with items^3: above
``EASE_MAX_ITEMS`` items it is refused with a message (ItemKNN, sparse in users, is what
scales beyond).

Transitions: the first-order Markov chain over each user's time-ordered positives,
``P(next = j | last = i)``, with popularity as a tiny tie-breaker among items the last
item never led to. Both are scorers in the sense of `scoring`: ``fn(users) -> (U, I)``.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from tunehub.plugin import ConfigError

from .dataset import Split
from .scoring import interaction_matrix, popularity

EASE_MAX_ITEMS = 20_000  # one dense (I, I) float32 matrix: 1.6 GB at this size
EASE_LAMBDAS = (25.0, 75.0, 250.0, 750.0)  # chosen on validation


def warm_items(split: Split) -> np.ndarray:
    """Indices of the items with at least one training positive, ascending."""
    return np.flatnonzero(popularity(split) > 0)


def check_ease_size(count: int) -> None:
    """Refuse EASE above `EASE_MAX_ITEMS` items, naming the cost and the alternatives."""
    if count > EASE_MAX_ITEMS:
        gigabytes = 4 * count ** 2 / 1e9
        raise ConfigError(
            f"EASE over {count:,} items needs a dense {count:,} x {count:,} float32 matrix "
            f"(~{gigabytes:.0f} GB) and O(items^3) time; it stops at {EASE_MAX_ITEMS:,} items. "
            "Drop it from the baselines (--set baselines=popularity,itemknn,transitions,untuned)"
            " or keep fewer items.")


class EASE:
    """score(u, j) = sum_{i in h(u)} B_ij with B from the closed form above."""

    def __init__(self, split: Split, lam: float) -> None:
        from scipy.linalg import lapack

        self.split, self.lam = split, float(lam)
        self.items = warm_items(split)
        check_ease_size(len(self.items))
        x = interaction_matrix(split)[:, self.items]  # (U, W)
        gram = np.asarray((x.T @ x).toarray(order="F"), dtype=np.float32, order="F")
        gram[np.diag_indices_from(gram)] += self.lam
        factor, info = lapack.spotrf(gram, lower=0, overwrite_a=1)  # in place: no copy
        p, info2 = lapack.spotri(factor, lower=0, overwrite_c=1)
        if info or info2:
            raise ConfigError(f"EASE: G + {self.lam:g} I is not positive definite; raise lambda.")
        _mirror_upper(p)  # spotri fills the upper triangle only
        diagonal = np.diag(p).copy()
        p /= -diagonal[None, :]
        p[np.diag_indices_from(p)] = 0.0
        self.b = p  # (W, W), one dense matrix in memory

    def __call__(self, users: Sequence[str]) -> np.ndarray:
        x = interaction_matrix(self.split, users)[:, self.items]  # (B, W)
        scores = np.zeros((len(users), len(self.split.catalog.ids)), dtype=np.float32)
        scores[:, self.items] = np.asarray(x @ self.b, dtype=np.float32)
        return scores


def _mirror_upper(a: np.ndarray, block: int = 1024) -> None:
    """Copy the upper triangle of square ``a`` onto its lower one, in place, block by block."""
    n = a.shape[0]
    for start in range(0, n, block):
        stop = min(start + block, n)
        a[start:stop, :start] = a[:start, start:stop].T
        square = a[start:stop, start:stop]
        square[...] = np.triu(square) + np.triu(square, 1).T


def choose_lambda(fit: Split, cases: list[tuple[str, int]],
                  lambdas: Sequence[float] = EASE_LAMBDAS) -> tuple[float, dict[float, float], EASE]:
    """The lambda with the best validation NDCG@10 (fit on ``fit``, scored on ``cases``),
    its value for each lambda tried, and the model fitted with it on ``fit``."""
    from .fusion import validation_ndcg

    values, best = {}, None
    for lam in lambdas:
        model = EASE(fit, lam)
        values[lam] = validation_ndcg(model, fit, cases)
        if best is None or values[lam] > values[best.lam]:
            best = model
        del model
    return best.lam, values, best


class Transitions:
    """First-order Markov chain: score(u, j) = P(j follows last(u)) (+ popularity tie-break)."""

    def __init__(self, split: Split) -> None:
        from scipy import sparse

        n = len(split.catalog.ids)
        rows, cols = [], []
        for items in split.history.values():
            rows += items[:-1]
            cols += items[1:]
        counts = sparse.csr_matrix((np.ones(len(rows), dtype=np.float32), (rows, cols)),
                                   shape=(n, n))
        counts.sum_duplicates()
        out = np.asarray(counts.sum(axis=1)).ravel()
        scale = np.divide(1.0, out, out=np.zeros_like(out), where=out > 0)
        self.p = sparse.diags(scale) @ counts  # (I, I) row-stochastic where defined
        pop = popularity(split)
        self.prior = 1e-6 * pop / max(float(pop.max()), 1.0)  # below any real transition
        self.split = split

    def __call__(self, users: Sequence[str]) -> np.ndarray:
        scores = np.tile(self.prior, (len(users), 1)).astype(np.float32)
        for row, user in enumerate(users):
            history = self.split.history.get(user)
            if history:
                last = self.p.getrow(history[-1])
                scores[row, last.indices] += last.data
        return scores


def neighbour_weights(vectors: np.ndarray, warm: np.ndarray, cold: np.ndarray, k: int = 20):
    """Sparse (I, I) map ``M`` with ``M[w, c]`` = weight of warm item w for cold item c.

    Each cold item takes its ``k`` most text-similar warm items, weighted by a softmax of
    cosine similarity (temperature 0.05), so ``scores @ M`` imputes a collaborative score
    for cold items from the scores of the warm items that read like them."""
    from scipy import sparse

    n = vectors.shape[0]
    if not len(cold) or not len(warm):
        return sparse.csr_matrix((n, n), dtype=np.float32)
    k = min(k, len(warm))
    sims = vectors[cold] @ vectors[warm].T  # (C, W)
    top = np.argpartition(-sims, k - 1, axis=1)[:, :k]  # (C, k)
    near = np.take_along_axis(sims, top, axis=1) / 0.05
    weights = np.exp(near - near.max(axis=1, keepdims=True))
    weights /= weights.sum(axis=1, keepdims=True)
    rows = warm[top].ravel()
    cols = np.repeat(cold, k)
    return sparse.csr_matrix((weights.ravel().astype(np.float32), (rows, cols)), shape=(n, n))
