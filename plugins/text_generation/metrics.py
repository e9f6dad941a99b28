"""Scores of generated text against a reference, per pair and averaged.

Words are lower-cased runs of letters and digits (what `rouge-score` reads, so ROUGE-L
here equals its ``rougeL`` F-measure without stemming; a test checks it against the
library). Outputs are ``{"y_true": [references], "y_pred": [generated]}``.
"""
from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

WORD = re.compile(r"[a-z0-9]+")


def words(text: str) -> list[str]:
    return WORD.findall(str(text).lower())


def token_f1_pair(reference: str, generated: str) -> float:
    """F1 of the words two texts share (each word counted as often as both have it)."""
    ref, gen = words(reference), words(generated)
    if not ref or not gen:
        return float(ref == gen)
    shared = sum((Counter(ref) & Counter(gen)).values())
    if not shared:
        return 0.0
    precision, recall = shared / len(gen), shared / len(ref)
    return 2 * precision * recall / (precision + recall)


def lcs(a: Sequence[str], b: Sequence[str]) -> int:
    """Length of the longest common subsequence (one row of the table at a time)."""
    if len(a) < len(b):
        a, b = b, a
    row = [0] * (len(b) + 1)
    for x in a:
        previous = 0
        for j, y in enumerate(b, start=1):
            current = row[j]
            row[j] = previous + 1 if x == y else max(row[j], row[j - 1])
            previous = current
    return row[-1]


def rouge_l_pair(reference: str, generated: str) -> float:
    """ROUGE-L F-measure: the longest common word subsequence over both lengths."""
    ref, gen = words(reference), words(generated)
    if not ref or not gen:
        return 0.0
    common = lcs(ref, gen)
    if not common:
        return 0.0
    precision, recall = common / len(gen), common / len(ref)
    return 2 * precision * recall / (precision + recall)


def _mean(outputs: Mapping[str, Any], pair) -> float:
    pairs = list(zip(outputs["y_true"], outputs["y_pred"]))
    return sum(pair(r, g) for r, g in pairs) / len(pairs) if pairs else 0.0


def token_f1(outputs: Mapping[str, Any]) -> float:
    return _mean(outputs, token_f1_pair)


def rouge_l(outputs: Mapping[str, Any]) -> float:
    return _mean(outputs, rouge_l_pair)


def exact_match(outputs: Mapping[str, Any]) -> float:
    return _mean(outputs, lambda r, g: float(words(r) == words(g)))
