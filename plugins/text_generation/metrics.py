"""Scores of generated text against a reference, averaged over pairs.

Words are lower-cased runs of ASCII letters and digits (what `rouge-score` reads, so
ROUGE-L here equals its ``rougeL`` F-measure without stemming; a test checks it against the
library), and each CJK character on its own (so Chinese answers are scored by characters,
where `rouge-score` would drop them). Outputs are ``{"y_true": [references], "y_pred": [generated]}``; the per-pair
scores are `tunehub.plugin.generation`'s.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tunehub.plugin import generation

words = generation.words
token_f1_pair, rouge_l_pair = generation.token_f1, generation.rouge_l


def _mean(outputs: Mapping[str, Any], pair) -> float:
    pairs = list(zip(outputs["y_true"], outputs["y_pred"]))
    return sum(pair(r, g) for r, g in pairs) / len(pairs) if pairs else 0.0


def token_f1(outputs: Mapping[str, Any]) -> float:
    return _mean(outputs, generation.token_f1)


def rouge_l(outputs: Mapping[str, Any]) -> float:
    return _mean(outputs, generation.rouge_l)


def exact_match(outputs: Mapping[str, Any]) -> float:
    return _mean(outputs, generation.exact_match)
