"""Scores and the evaluation protocol shared by the model and the baselines.

A scorer is ``fn(users) -> (U, I) array``: one score per catalogue item for each user,
higher is better. `evaluate` turns a scorer into the outputs every metric reads:

    {"ranked": [[item id x10]], "relevant": [[item id]],        # full ranking (hr@10, ndcg@10)
     "sampled": {"ranked": ..., "relevant": ...},               # target + 99 sampled negatives
     "cold_start": {"ranked": ..., "relevant": ...},            # full ranking, cold items
     "positions": [[higher, tied, negatives]]}                  # per test case, for AUC

Candidates are every catalogue item except the user's training items. Ties are broken by
one seeded random order of the items, the same for every scorer.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from tunehub.plugin import ranking

from .dataset import Cases, Split

Scorer = Callable[[Sequence[str]], np.ndarray]
K = 10
SAMPLED_NEGATIVES = 99
CHUNK = 512  # users scored at once: (CHUNK, I) floats


def popularity(split: Split) -> np.ndarray:
    """(I,) number of users with a training positive on each item."""
    counts = np.zeros(len(split.catalog.ids), dtype=np.float32)
    for items in split.history.values():
        counts[list(set(items))] += 1
    return counts


def interaction_matrix(split: Split, users: Sequence[str] | None = None):
    """Sparse (U, I) 0/1 matrix of training positives."""
    from scipy import sparse

    users = list(split.history) if users is None else list(users)
    rows, cols = [], []
    for u, user in enumerate(users):
        items = sorted(set(split.history.get(user, ())))
        rows += [u] * len(items)
        cols += items
    data = np.ones(len(rows), dtype=np.float32)
    return sparse.csr_matrix((data, (rows, cols)), shape=(len(users), len(split.catalog.ids)))


class ItemKNN:
    """Item-item cosine similarity over user sets: score(u, j) = sum_{i in h(u)} cos(i, j)."""

    def __init__(self, split: Split) -> None:
        x = interaction_matrix(split)  # (U, I)
        norms = np.sqrt(np.asarray(x.sum(axis=0)).ravel())  # (I,) sqrt(users per item)
        inv = np.divide(1.0, norms, out=np.zeros_like(norms), where=norms > 0)
        self.split, self.x, self.inv = split, x, inv
        self.xn = x.multiply(inv[None, :]).tocsr()  # (U, I) columns scaled by 1/sqrt(n_i)

    def __call__(self, users: Sequence[str]) -> np.ndarray:
        q = interaction_matrix(self.split, users).multiply(self.inv[None, :]).tocsr()  # (B, I)
        overlap = (q @ self.x.T).toarray()  # (B, U): sum_i q_bi x_ui
        return np.asarray(overlap @ self.xn, dtype=np.float32)  # (B, I)


def standardize(scores: np.ndarray) -> np.ndarray:
    """Per-row z-scores (rows of constant scores become zeros)."""
    mean = scores.mean(axis=-1, keepdims=True)
    std = scores.std(axis=-1, keepdims=True)
    return np.divide(scores - mean, std, out=np.zeros_like(scores), where=std > 0)


def _chunks(fn: Scorer, users: list[str]):
    for start in range(0, len(users), CHUNK):
        block = users[start:start + CHUNK]
        yield start, np.asarray(fn(block), dtype=np.float64)


def _order(scores: np.ndarray, tiebreak: np.ndarray) -> np.ndarray:
    """Indices of ``scores`` best first; equal scores in ``tiebreak`` order."""
    return np.lexsort((tiebreak, -scores))


def full_ranking(fn: Scorer, split: Split, cases: list[tuple[str, int]], seed: int,
                 k: int = K) -> tuple[list[list[str]], list[list[str]], list[list[int]]]:
    """Top-k over all items minus the user's training items, and the target's position."""
    ids = split.catalog.ids
    tiebreak = np.random.default_rng(seed).permutation(len(ids))
    ranked, relevant, positions = [], [], []
    users = [u for u, _ in cases]
    for start, scores in _chunks(fn, users):
        for row, (user, target) in zip(scores, cases[start:start + len(scores)]):
            row = row.copy()
            seen = list(split.seen.get(user, ()))
            row[seen] = -np.inf
            mask = np.ones(len(ids), dtype=bool)
            mask[seen] = False
            mask[target] = False  # the negatives
            top = [i for i in _order(row, tiebreak)[:k + len(seen)] if np.isfinite(row[i])][:k]
            ranked.append([ids[i] for i in top])
            relevant.append([ids[target]])
            negatives = row[mask]
            positions.append([int((negatives > row[target]).sum()),
                              int((negatives == row[target]).sum()), int(mask.sum())])
    return ranked, relevant, positions


def sampled_ranking(fn: Scorer, split: Split, cases: list[tuple[str, int]], seed: int,
                    negatives: int = SAMPLED_NEGATIVES, k: int = K):
    """Rank the target among ``negatives`` items drawn (seeded per case) from the candidates."""
    ids = split.catalog.ids
    ranked, relevant = [], []
    for start, scores in _chunks(fn, [u for u, _ in cases]):
        for n, (row, (user, target)) in enumerate(zip(scores, cases[start:start + len(scores)])):
            rng = np.random.default_rng([seed, start + n])
            pool = np.setdiff1d(np.arange(len(ids)), [*split.seen.get(user, ()), target])
            drawn = rng.choice(pool, size=min(negatives, len(pool)), replace=False)
            candidates = rng.permutation(np.append(drawn, target))  # random tie order
            top = candidates[_order(row[candidates], np.arange(len(candidates)))[:k]]
            ranked.append([ids[i] for i in top])
            relevant.append([ids[target]])
    return ranked, relevant


def evaluate(fn: Scorer, split: Split, cases: Cases, seed: int) -> dict[str, Any]:
    """All evaluation outputs of one scorer (see the module docstring)."""
    ranked, relevant, positions = full_ranking(fn, split, cases.test, seed)
    s_ranked, s_relevant = sampled_ranking(fn, split, cases.test, seed)
    c_ranked, c_relevant, _ = full_ranking(fn, split, cases.cold, seed) if cases.cold else ([], [], [])
    return {"ranked": ranked, "relevant": relevant, "positions": positions,
            "sampled": {"ranked": s_ranked, "relevant": s_relevant},
            "cold_start": {"ranked": c_ranked, "relevant": c_relevant}}


# -- metrics on those outputs ---------------------------------------------------------


def auc(outputs: Mapping[str, Any]) -> float:
    """Mean per-user AUC of the held-out item against all its candidate negatives."""
    values = [(neg - higher - 0.5 * tied) / neg for higher, tied, neg in outputs.get("positions", [])
              if neg > 0]
    return sum(values) / len(values) if values else 0.0


def on(part: str, metric: Callable[[Mapping[str, Any]], float]):
    """A ranking metric applied to ``outputs[part]`` (0.0 when the part is empty)."""

    def fn(outputs: Mapping[str, Any]) -> float:
        sub = outputs.get(part) or {"ranked": [], "relevant": []}
        return metric(sub)

    fn.__name__ = f"{metric.__name__}_{part}"
    return fn


def register_all(register) -> None:
    register("auc", auc, description="mean per-user AUC of the held-out item over all candidates")
    register("hr@10_sampled", on("sampled", ranking.recall_at(K)),
             description="hit rate at 10 among the held-out item and 99 sampled negatives")
    register("ndcg@10_sampled", on("sampled", ranking.ndcg_at(K)),
             description="NDCG at 10 among the held-out item and 99 sampled negatives")
    register("cold_start_hr@10", on("cold_start", ranking.recall_at(K)),
             description="hit rate at 10 (full ranking) for items with no training interactions")
    register("cold_start_ndcg@10", on("cold_start", ranking.ndcg_at(K)),
             description="NDCG at 10 (full ranking) for items with no training interactions")
