"""The shipped scorer: text, collaborative and popularity signals fused, cold items included.

``score = sum_s w_s * z(signal_s) + w_pop * z(log1p popularity)`` for warm items and
``sum_s c_s * z(signal_s) + c_pop * z(...) + cold_bias`` for cold ones (each set of
weights summing to 1), with ``z`` a per-user standardisation. A cold item (no training interaction) has no
collaborative score or popularity of its own: both are imputed from the warm items whose
text vectors are nearest to it (`collab.neighbour_weights`), so it is ranked on the same
scale as every other item rather than left at the bottom.

Weights are chosen on a validation split built from training data only (`validation`):
each user's last three training positives are warm cases, and a seeded share of the
training items is held out entirely to give cold cases. The signal weights maximise warm NDCG@10
(coordinate ascent over a grid); cold items get weights of their own, which maximise the
cold cases' NDCG@10 among cold items, and a bias: the one with the best warm NDCG@10
among those whose cold-start HR@10 is at least a reference (the untuned text tower's
on the same cases), so fusing keeps new items as findable as text alone does, unless that
costs warm NDCG@10 below a baseline's (below).

The model never ships below its baselines on validation. Each baseline that is a part of
the scorer (EASE, ItemKNN, transitions, popularity) is scored on the same cases as it ranks
on its own (cold items where its own scores put them, nothing imputed); the best of them
sets a floor on warm NDCG@10. Beside the fused mix (with each cold bias), each baseline
alone is a candidate (with the cold items' weights and a bias, with its imputed scores, and
as it ranks); the shipped one has the best warm NDCG@10 among those at the floor that keep
cold HR@10 at the reference, or, when none does, the best cold HR@10 among those at the
floor (the best baseline as it ranks always is).
"""
from __future__ import annotations

import math
import random
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from .dataset import Split
from .scoring import popularity, standardize

Scorer = Callable[[Sequence[str]], np.ndarray]
GRID = (0.0, 0.1, 0.25, 0.5, 1.0, 2.0, 4.0)
COLD_BIASES = (-1.0, -0.5, -0.25, 0.0, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0)  # in z units
COLD_FIRST = 100.0  # a bias that ranks every cold item first: cold weights order them alone
COLLABORATIVE = ("ease", "transitions", "itemknn")  # signals imputed for cold items
CELLS = 25_000_000  # (validation users x items) scored at once, caps selection memory


# -- validation split and metrics ---------------------------------------------------------


@dataclass
class Validation:
    """A split of the training data with warm and cold held-out cases (no test data)."""

    split: Split
    warm: list[tuple[str, int]]
    cold: list[tuple[str, int]]


def validation(split: Split, cold_fraction: float, seed: int, holdout: int = 3) -> Validation:
    """Hold out each user's last ``holdout`` positives (fewer for short histories: one
    stays), and a seeded share of items entirely (their latest positive per user is a cold
    case). Several cases per user steady the choices made on them."""
    warm_items = sorted(set().union(*split.history.values())) if split.history else []
    n_cold = int(round(len(warm_items) * cold_fraction))
    cold_items = set(random.Random(seed + 1).sample(warm_items, n_cold)) if n_cold else set()
    history, seen, warm, cold = {}, {}, [], []
    for user, items in split.history.items():
        kept = [i for i in items if i not in cold_items]
        on_cold = [i for i in items if i in cold_items]
        out = max(0, min(holdout, len(kept) - 1))
        held = kept[len(kept) - out:]
        warm += [(user, item) for item in held]
        kept = kept[:len(kept) - out]
        history[user] = kept
        seen[user] = split.seen[user] - set(held) - cold_items
        if on_cold and kept:
            cold.append((user, on_cold[-1]))
    return Validation(Split(split.catalog, history, seen), warm, cold)


def target_ranks(scores: np.ndarray, split: Split, cases: Sequence[tuple[str, int]]) -> np.ndarray:
    """1-based rank of each case's target among unseen items (ties count half)."""
    scores = np.array(scores, dtype=np.float32)
    for row, (user, _) in enumerate(cases):
        scores[row, list(split.seen.get(user, ()))] = -np.inf
    target = scores[np.arange(len(cases)), [t for _, t in cases]][:, None]
    higher = (scores > target).sum(axis=1)
    tied = (scores == target).sum(axis=1) - 1
    return 1.0 + higher + tied / 2.0


def ndcg(ranks: np.ndarray, k: int = 10) -> float:
    return float(np.where(ranks <= k, 1.0 / np.log2(ranks + 1), 0.0).mean()) if len(ranks) else 0.0


def hit_rate(ranks: np.ndarray, k: int = 10) -> float:
    return float((ranks <= k).mean()) if len(ranks) else 0.0


def validation_ndcg(fn: Scorer, split: Split, cases: Sequence[tuple[str, int]]) -> float:
    """NDCG@10 of a scorer on validation cases, in chunks of users."""
    values = []
    for start in range(0, len(cases), 512):
        block = cases[start:start + 512]
        values.append(ndcg(target_ranks(fn([u for u, _ in block]), split, block)) * len(block))
    return sum(values) / max(len(cases), 1)


# -- the fused scorer ---------------------------------------------------------------------


@dataclass
class Fusion:
    weights: dict[str, float] = field(default_factory=lambda: {"text": 1.0})
    cold_bias: float = 0.0
    cold_weights: dict[str, float] | None = None  # for cold items; None: ``weights``
    impute_cold: bool = True  # False: cold items keep each signal's own scores (as baselines do)

    def as_dict(self) -> dict[str, Any]:
        return {"weights": dict(self.weights), "cold_bias": self.cold_bias,
                "cold_weights": None if self.cold_weights is None else dict(self.cold_weights),
                "impute_cold": self.impute_cold}


class FusedScorer:
    """``fn(users) -> (U, I)`` fused scores; see the module docstring."""

    def __init__(self, signals: Mapping[str, Scorer], split: Split, item_vectors: np.ndarray,
                 fusion: Fusion) -> None:
        from .collab import neighbour_weights, warm_items

        self.signals, self.split, self.fusion = dict(signals), split, fusion
        warm = warm_items(split)
        self.cold = np.setdiff1d(np.arange(len(split.catalog.ids)), warm)
        self.impute = neighbour_weights(item_vectors, warm, self.cold)[:, self.cold].tocsc()
        prior = np.log1p(popularity(split)).astype(np.float32)
        self.own_prior = standardize(prior)  # cold items at zero interactions
        prior[self.cold] = prior @ self.impute if len(self.cold) else prior[self.cold]
        self.prior = standardize(prior)

    def parts(self, users: Sequence[str], impute_cold: bool = True) -> dict[str, np.ndarray]:
        """Each signal (and "pop"), z-scored per user, cold items' collaborative scores
        imputed (unless ``impute_cold`` is False: each signal's own scores, ranked as its
        baseline ranks)."""
        return {name: self.part(name, users, impute_cold) for name in [*self.signals, "pop"]}

    def part(self, name: str, users: Sequence[str], impute_cold: bool = True) -> np.ndarray:
        """(U, I) scores of one part, as in `parts`."""
        if name == "pop":
            prior = self.prior if impute_cold else self.own_prior
            return np.broadcast_to(prior, (len(users), len(prior)))
        scores = np.asarray(self.signals[name](users), dtype=np.float32)
        if impute_cold and name in COLLABORATIVE and len(self.cold):
            scores[:, self.cold] = np.asarray(self.impute.T @ scores.T).T
        return standardize(scores)

    def combine(self, parts: Mapping[str, np.ndarray], fusion: Fusion) -> np.ndarray:
        """Weighted means of the z-scored parts (weights scaled to sum to 1, so warm and
        cold scores share one scale and the cold bias is in standard deviations)."""
        total = np.zeros(next(iter(parts.values())).shape, dtype=np.float32)
        norm = sum(abs(w) for w in fusion.weights.values()) or 1.0
        for name, weight in fusion.weights.items():
            if weight:
                total += np.float32(weight / norm) * parts[name]
        if not len(self.cold):
            return total
        if fusion.cold_weights is not None:
            cold = np.zeros((total.shape[0], len(self.cold)), dtype=np.float32)
            norm = sum(abs(w) for w in fusion.cold_weights.values()) or 1.0
            for name, weight in fusion.cold_weights.items():
                if weight:
                    cold += np.float32(weight / norm) * parts[name][:, self.cold]
            total[:, self.cold] = cold
        if fusion.cold_bias:
            total[:, self.cold] += np.float32(fusion.cold_bias)
        return total

    def __call__(self, users: Sequence[str]) -> np.ndarray:
        return self.combine(self.parts(users, self.fusion.impute_cold), self.fusion)


# -- choosing the weights on validation ---------------------------------------------------


def _sample(cases: list[tuple[str, int]], limit: int, seed: int) -> list[tuple[str, int]]:
    return cases if len(cases) <= limit else random.Random(seed).sample(cases, limit)


def choose_fusion(scorer: FusedScorer, val: Validation, seed: int = 0,
                  cold_reference: float | None = None, baselines: Mapping[str, str] | None = None,
                  mix: Collection[str] | None = None
                  ) -> tuple[Fusion, dict[str, dict[str, float]], str]:
    """Signal weights for warm NDCG@10, cold weights and bias for cold items (see the
    module docstring). ``cold_reference``: the validation cold-start HR@10 the fused
    model must keep (default: the text signal's own).

    ``baselines``: baseline name -> the part of ``scorer`` that ranks as that baseline does
    (``{"ease": "ease", "popularity": "pop"}``). The shipped scorer is never below the best
    baseline's own validation NDCG@10 (see the module docstring); none: the cold-start
    reference first, as before there were baselines to keep up with. ``mix``: the parts the weights mix (default: all); the others are candidates alone only.

    Returns the fusion, a report (validation NDCG@10 and cold-start HR@10 of each part
    alone, of each baseline as it ranks, of the chosen scorer) and one line saying what was
    chosen and why."""
    baselines = dict(baselines or {})
    items = len(val.split.catalog.ids)
    limit = max(100, CELLS // (2 * items))
    warm, cold = _sample(val.warm, limit, seed), _sample(val.cold, limit, seed)
    warm_parts = scorer.parts([u for u, _ in warm])
    cold_parts = scorer.parts([u for u, _ in cold]) if cold else None
    memo: dict[tuple, tuple[float, float]] = {}

    def key(fusion: Fusion) -> tuple:
        return (tuple(sorted(fusion.weights.items())), fusion.cold_bias,
                tuple(sorted((fusion.cold_weights or {}).items())), fusion.impute_cold)

    def ranks(scores: np.ndarray, cases: list[tuple[str, int]]) -> np.ndarray:
        return target_ranks(scores, val.split, cases)

    def measure(fusion: Fusion) -> tuple[float, float]:
        if key(fusion) not in memo:  # (every fusion with imputed cold items)
            w = ndcg(ranks(scorer.combine(warm_parts, fusion), warm))
            c = hit_rate(ranks(scorer.combine(cold_parts, fusion), cold)) if cold else math.nan
            memo[key(fusion)] = (w, c)
        return memo[key(fusion)]

    def as_it_ranks(part: str, cases: list[tuple[str, int]]) -> np.ndarray:
        return ranks(scorer.part(part, [u for u, _ in cases], impute_cold=False), cases)

    as_is = {name: Fusion({part: 1.0}, impute_cold=False) for name, part in baselines.items()}
    for part, fusion in zip(baselines.values(), as_is.values()):  # one part in memory at once
        memo[key(fusion)] = (ndcg(as_it_ranks(part, warm)),
                             hit_rate(as_it_ranks(part, cold)) if cold else math.nan)

    names = list(warm_parts)
    mixed = [name for name in names if mix is None or name in mix]
    alone = {name: measure(Fusion({name: 1.0})) for name in names}
    first = max((n for n in mixed if n != "pop"), key=lambda n: alone[n][0])
    starts = [{name: float(name == first) for name in mixed},
              {name: float(name != "pop") for name in mixed}]
    weights, _ = max((_ascend(start, lambda w: measure(Fusion(w))[0]) for start in starts),
                     key=lambda found: found[1])
    cold_weights, reference = None, None
    if cold:
        reference = alone.get("text", (0, 0))[1] if cold_reference is None else cold_reference
        cold_ndcg = lambda cw: ndcg(ranks(  # noqa: E731 - cold items ranked first
            scorer.combine(cold_parts, Fusion(weights, COLD_FIRST, cw)), cold))
        cold_weights, _ = max((_ascend(start, cold_ndcg) for start in starts),
                              key=lambda found: found[1])
    own = {name: measure(fusion) for name, fusion in as_is.items()}
    best = max(own, key=lambda name: own[name][0]) if own else None
    floor = own[best][0] if best else -math.inf
    candidates = {"the fused mix": weights}
    for name, part in baselines.items():
        candidates.setdefault(f"{name} alone", {part: 1.0})
    label, fusion, rule, eligible = _choose(candidates, cold_weights, as_is, measure, reference,
                                            floor)
    report = {**{f"{name} only": alone[name] for name in names},
              **{f"{name} baseline": own[name] for name in own},
              "fused (chosen)": measure(fusion)}
    rounded = {row: {k: round(v, 4) for k, v in zip(("ndcg@10", "cold_start_hr@10"), values)
                     if not math.isnan(v)} for row, values in report.items()}
    mix_best = max((measure(o)[0] for name, o in eligible if name == "the fused mix"),
                   default=None)
    return fusion, rounded, _explain(label, rule, measure(fusion), mix_best, best, floor,
                                     reference)


def _explain(label: str, rule: str, chosen: tuple[float, float], mix_best: float | None,
             best: str | None, floor: float, reference: float | None) -> str:
    """The line of the run's notes that says which scorer ships and why: its validation
    figures, and how the fused mix fared under the same rule when it is not the one."""
    why = f"{label}: validation NDCG@10 {chosen[0]:.4f}"
    why += f" (best baseline: {best} {floor:.4f})" if best else ""
    if reference is not None:
        why += f", cold-start HR@10 {chosen[1]:.4f} (reference {reference:.4f})"
    kept = [f"NDCG@10 at {best}'s" if best else "",
            "cold-start HR@10 at the reference" if rule == "both" and reference is not None
            else ""]
    kept_text = " and ".join(filter(None, kept))
    if label != "the fused mix":
        why += (f"; the best fused mix: {mix_best:.4f}" if mix_best is not None
                else f"; no fused mix kept {kept_text}")
    if rule == "floor":
        why += "; nothing " + (f"at {best}'s NDCG@10 " if best else "") + \
            "kept cold-start HR@10 at the reference: the closest to it"
    return why


def _biases(cold_weights: Mapping[str, float] | None) -> tuple[float, ...]:
    return COLD_BIASES if cold_weights is not None else (0.0,)


def _ascend(weights: dict[str, float], value: Callable[[dict[str, float]], float],
            rounds: int = 3) -> tuple[dict[str, float], float]:
    """Coordinate ascent over `GRID`, one weight at a time, from ``weights``."""
    best = value(weights)
    for _ in range(rounds):
        changed = False
        for name, option in ((n, v) for n in list(weights) for v in GRID):
            trial = {**weights, name: option}
            if not any(trial.values()) or trial == weights:
                continue
            score = value(trial)
            if score > best + 1e-9:
                weights, best, changed = trial, score, True
        if not changed:
            break
    return weights, best


def _choose(candidates: Mapping[str, dict[str, float]], cold_weights: dict[str, float] | None,
            as_is: Mapping[str, Fusion], measure: Callable[[Fusion], tuple[float, float]],
            reference: float | None, floor: float
            ) -> tuple[str, Fusion, str, list[tuple[str, Fusion]]]:
    """(label, fusion, the rule that chose it, the options it was chosen among). ``candidates``: warm weights by label, the
    fused mix first, then each baseline alone (with the cold items' weights and a bias, or
    its own imputed scores for cold items too); ``as_is``: each baseline as it ranks.
    The best warm NDCG@10 among those keeping NDCG@10 >= ``floor`` (the best baseline's own)
    and cold HR@10 >= ``reference`` ("both"; ties: the mix, then the smallest bias); failing
    that, the best cold HR@10 among those at the floor, which the best baseline as it ranks
    always is ("floor")."""
    labels = list(candidates)
    options = [(label, Fusion(candidates[label], bias, cold_weights))
               for label in labels for bias in _biases(cold_weights)]
    options += [(label, Fusion(candidates[label])) for label in labels[1:]]
    options += [(f"{name} as it ranks", fusion) for name, fusion in as_is.items()]
    at_floor = [o for o in options if measure(o[1])[0] >= floor - 1e-9]
    both = [o for o in at_floor if reference is None or measure(o[1])[1] >= reference]
    if both:
        return (*max(both, key=lambda o: (measure(o[1])[0], -abs(o[1].cold_bias))), "both", both)
    return (*max(at_floor, key=lambda o: (measure(o[1])[1], measure(o[1])[0])), "floor",
            at_floor)


def describe(fusion: Fusion) -> str:
    """The fused score as a formula, for the run's report."""
    def mix(weights: Mapping[str, float]) -> str:
        return " + ".join(f"{v:g}*{k}" for k, v in weights.items() if v) or "0"

    cold = mix(fusion.cold_weights) if fusion.cold_weights is not None else mix(fusion.weights)
    if not fusion.impute_cold:
        return (f"score = {mix(fusion.weights)} (z-scored per user); cold items: {cold} + "
                f"{fusion.cold_bias:g} (their own scores, nothing imputed)")
    return (f"score = {mix(fusion.weights)} (z-scored per user); cold items: {cold} + "
            f"{fusion.cold_bias:g} (their collaborative scores and popularity imputed from the "
            "20 text-nearest warm items)")
