"""What every retriever here shares: the texts indexed per FAQ entry, the hand-off threshold,
the evaluation outputs, the no-answer metrics, and the Okapi BM25 baseline.

A *search* is any function ``texts, k -> (entries (Q, k) int, -1 padded; scores (Q, k))``
over the FAQ's entry numbers, so the fine-tuned model, the untuned model and BM25 are
evaluated and calibrated the same way.
"""
from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from tunehub.plugin import CJK_CHARACTERS, ConfigError

from .data import Faq, QASplits, Queries

Search = Callable[[list[str], int], tuple[np.ndarray, np.ndarray]]
DOCUMENTS = ("question", "answer", "question+answer")


def entry_texts(faq: Faq, document: str) -> list[str]:
    """The text that stands for each entry (what queries are trained to match)."""
    if document not in DOCUMENTS:
        raise ConfigError(f"head.document must be one of {', '.join(DOCUMENTS)}, got '{document}'.")
    if document == "question":
        return list(faq.questions)
    if document == "answer":
        return list(faq.answers)
    return [f"{q} {a}" if a != q else q for q, a in zip(faq.questions, faq.answers)]


def documents(faq: Faq, train: Queries, head: Mapping[str, Any]) -> tuple[list[str], list[int]]:
    """(texts, owners) to index: each entry's text, plus its training queries as known
    paraphrases when ``head.index_paraphrases`` is on."""
    texts, owners = entry_texts(faq, head["document"]), list(range(len(faq)))
    if head["index_paraphrases"]:
        position = faq.position()
        seen = set()
        for text, entry in zip(train.texts, train.faq_ids):
            if entry and (text, entry) not in seen:
                seen.add((text, entry))
                texts.append(text)
                owners.append(position[entry])
    return texts, owners


def calibrate(best: np.ndarray, right: np.ndarray,
              weights: np.ndarray | None = None) -> tuple[float, str]:
    """The score under which to hand off, from held-out queries.

    ``best`` (N,) is each query's top score, ``right`` (N,) whether its top answer is
    correct (False for out-of-scope queries). The threshold maximises right outcomes: a
    correct answer given, or a hand-off where the answer would be wrong or none exists.
    ``weights`` (N,) counts each query that many times (`mix_weights`); None counts each once."""
    n = len(best)
    if n == 0:
        return 0.0, "no held-out queries to calibrate on: threshold 0 (hand off only with no match)"
    w = np.ones(n) if weights is None else np.asarray(weights, dtype=float)
    order = np.argsort(best, kind="stable")
    s, r, w = best[order].astype(float), right[order].astype(bool), w[order]
    wrong_below = np.concatenate([[0], np.cumsum(w * ~r)])  # hand off the j lowest: (n+1,)
    right_above = np.concatenate([np.cumsum((w * r)[::-1])[::-1], [0]])
    good = wrong_below + right_above
    j = int(np.argmax(good))  # ties: the fewest hand-offs
    # halfway between the last score handed off and the first answered; at either end, half
    # the nearest gap beyond it, so that a query scoring as a held-out one did (give or take
    # another batch's rounding) is decided the same way
    def half_gap(a: int, b: int) -> float:
        return max(float(s[b] - s[a]) if n > 1 else 0.0, 2e-6) / 2

    if j == 0:
        threshold = s[0] - half_gap(0, 1)
    elif j == n:
        threshold = s[-1] + half_gap(-2, -1)
    else:
        threshold = (s[j - 1] + s[j]) / 2
    weighted = "" if weights is None else ", weighted to the query data's share of out-of-scope queries"
    note = (f"{threshold:.4f}: the score that gives the most right outcomes (a correct top "
            f"answer, or a hand-off where the top answer is wrong or out of scope) on {n} "
            f"held-out queries never trained on ({int((~r).sum())} with no right top answer"
            f"{weighted}); {good[j] / w.sum():.1%} right, {w[:j].sum() / w.sum():.1%} handed off")
    return float(threshold), note


def mix_weights(calibration: Queries, in_scope_share: float | None) -> np.ndarray | None:
    """Weights that give the calibration queries the mix of in-scope and out-of-scope
    queries that ``in_scope_share`` says the query data has.

    Every out-of-scope training query is held out for calibration (nothing can train on
    it), so the calibration set holds far more of them than the traffic does (the FAQ
    sample: 28 of 83 against 28 of 342); counted as they come, they would buy hand-offs with
    right answers. None (count each once) when the share is unknown or one kind is missing."""
    scope = np.asarray([bool(f) for f in calibration.faq_ids])
    if in_scope_share is None or not len(scope) or scope.all() or not scope.any():
        return None
    here = scope.mean()
    return np.where(scope, in_scope_share / here, (1 - in_scope_share) / (1 - here))


def calibrate_search(search: Search, faq: Faq, splits: QASplits) -> tuple[float, str]:
    """`calibrate` on ``search``'s top answers to the calibration queries, weighted by
    `mix_weights` to the mix of all the training queries (`QASplits.in_scope_share`)."""
    calibration = splits.calibration
    if not len(calibration):
        return calibrate(np.zeros(0), np.zeros(0, dtype=bool))
    entries, scores = search(calibration.texts, 1)
    truth = np.asarray([faq.position().get(f, -2) for f in calibration.faq_ids])
    return calibrate(scores[:, 0], entries[:, 0] == truth,
                     mix_weights(calibration, splits.in_scope_share()))


def outputs(search: Search, faq: Faq, queries: Queries, threshold: float, k: int = 10,
            handoff_message: str = "") -> dict[str, Any]:
    """Evaluation outputs: ranked ids (best first), relevant ids ([] when out of scope),
    top scores, which queries would be handed off, and the reply each would get (the top
    entry's answer, or ``handoff_message``) beside the right entry's answer ("" when out of
    scope) and the ids the reply rests on."""
    entries, scores = search(queries.texts, k)
    ranked = [[faq.ids[e] for e in row if e >= 0] for row in entries]
    top = [float(row[0]) if len(row) and np.isfinite(row[0]) else float("-inf") for row in scores]
    handoff = [t < threshold for t in top]
    position = faq.position()
    return {"ranked": ranked, "relevant": [[f] if f else [] for f in queries.faq_ids],
            "scores": [[round(float(v), 6) for v in row if np.isfinite(v)] for row in scores],
            "threshold": threshold, "handoff": handoff,
            "answer_true": [faq.answers[position[f]] if f in position else "" for f in queries.faq_ids],
            "answer_pred": [handoff_message if h or not ids else faq.answers[position[ids[0]]]
                            for h, ids in zip(handoff, ranked)],
            "cited": [[] if h or not ids else ids[:1] for h, ids in zip(handoff, ranked)]}


def _should_hand_off(outputs: Mapping[str, Any]) -> list[bool]:
    return [not relevant or not ranked or ranked[0] not in relevant
            for ranked, relevant in zip(outputs["ranked"], outputs["relevant"])]


def no_answer_precision(outputs: Mapping[str, Any]) -> float:
    """Of the queries handed off, the share that had no right top answer (out of scope or
    wrong); 1.0 when none was handed off."""
    pairs = [s for s, h in zip(_should_hand_off(outputs), outputs["handoff"]) if h]
    return sum(pairs) / len(pairs) if pairs else 1.0


def no_answer_recall(outputs: Mapping[str, Any]) -> float:
    """Of the queries with no right top answer (out of scope or wrong), the share handed
    off; 1.0 when there were none."""
    pairs = [h for s, h in zip(_should_hand_off(outputs), outputs["handoff"]) if s]
    return sum(pairs) / len(pairs) if pairs else 1.0


TOKEN = re.compile(rf"[a-z0-9]+(?:'[a-z]+)?|[{CJK_CHARACTERS}]+")
CJK_RUN = re.compile(f"[{CJK_CHARACTERS}]")


def tokens(text: str) -> list[str]:
    """BM25's terms: lower-cased words, and for unsegmented CJK runs each character and each
    pair of adjacent characters (the usual word-free indexing of Chinese)."""
    out: list[str] = []
    for run in TOKEN.findall(text.lower()):
        if CJK_RUN.match(run):
            out += list(run) + [run[i:i + 2] for i in range(len(run) - 1)]
        else:
            out.append(run)
    return out


class BM25:
    """Okapi BM25 (k1=1.5, b=0.75) over documents owned by entries; best document per entry.

    Scored by `bm25s` with ``method="lucene"``: IDF ``log(1 + (N - df + 0.5) / (df + 0.5))``,
    term weight ``tf / (tf + k1 (1 - b + b |d| / avgdl))``, a query term counted as often
    as it occurs (as Lucene, Elasticsearch and rank_bm25 do)."""

    def __init__(self, texts: list[str], owners: list[int], k1: float = 1.5, b: float = 0.75):
        import bm25s

        self.owners = np.asarray(owners, dtype=np.int64)
        self.entries = int(self.owners.max()) + 1 if len(owners) else 0
        self.index = bm25s.BM25(k1=k1, b=b, method="lucene", dtype="float64")
        self.index.index([tokens(t) for t in texts], show_progress=False)

    def scores(self, query: str) -> np.ndarray:
        """(E,) best document score per entry."""
        doc = self.index.get_scores_from_ids(self.index.get_tokens_ids(tokens(query)))  # (N,)
        best = np.full(self.entries, -np.inf)
        np.maximum.at(best, self.owners, doc)
        return best

    def search(self, texts: list[str], k: int) -> tuple[np.ndarray, np.ndarray]:
        k = max(1, min(k, self.entries))
        entries = np.zeros((len(texts), k), dtype=np.int64)
        scores = np.zeros((len(texts), k), dtype=np.float32)
        for row, text in enumerate(texts):
            best = self.scores(text)
            top = np.argsort(-best, kind="stable")[:k]
            entries[row], scores[row] = top, best[top]
        return entries, scores
