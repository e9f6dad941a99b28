"""Financial sentiment: the English and Chinese tasks, their sample data, and a
finance-lexicon baseline (English)."""
from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from tunehub.plugin import PLUGIN_API_VERSION, hookimpl

TUNEHUB_PLUGIN_API = PLUGIN_API_VERSION
DATA = Path(__file__).parent / "data"

# A small hand-written finance lexicon (in the spirit of Loughran-McDonald): an honest,
# model-free reference point that any fine-tuned model should beat.
POSITIVE = set("""
beat beats exceeded exceeds surpassed rose rise rises risen grew grow grows growth gain gains
gained increase increased increases improved improve improves improvement record strong
stronger robust upgrade upgraded upgrades raised raises higher profit profitable profits win
won wins award awarded outperform outperformed rebound rebounded recovery boost boosted
surge surged jump jumped expand expanded expansion accelerate accelerated positive success
successful approval approved dividend buyback exceed upbeat climbed climb soared
""".split())
NEGATIVE = set("""
miss missed misses fell fall falls fallen drop dropped drops decline declined declines
decrease decreased loss losses lost weak weaker weakness cut cuts downgrade downgraded
downgrades lower lowered warning warned warns layoffs layoff redundancies closure close
closing lawsuit fine fined penalty probe investigation recall recalled default bankruptcy
insolvency impairment writedown write-down slump slumped plunge plunged shrink shrank
negative delay delayed delays suspend suspended terminated halted breach disappointing
disappointed below worse worst slowed slowdown dispute deficit debt shortfall failed fail
""".split())
NEGATIONS = {"not", "no", "never", "without", "didn't", "failed", "nor", "longer"}


def lexicon_label(text: str) -> str:
    """negative / neutral / positive by lexicon hits, flipping a hit right after a negation."""
    words = re.findall(r"[a-z][a-z'\-]*", text.lower())
    score = 0
    for i, word in enumerate(words):
        sign = (word in POSITIVE) - (word in NEGATIVE)
        if sign and any(w in NEGATIONS for w in words[max(0, i - 3):i]):
            sign = -sign
        score += sign
    return "positive" if score > 0 else "negative" if score < 0 else "neutral"


def finance_lexicon(data: Any, config: Mapping[str, Any]) -> dict[str, Any]:
    names = data.info["labels"]
    fallback = names.index("neutral") if "neutral" in names else 0
    predicted = [lexicon_label(text) for text in data.eval.texts]
    return {"labels": names, "y_true": list(data.eval.labels),
            "y_pred": [names.index(p) if p in names else fallback for p in predicted]}


@hookimpl
def register_tasks(register) -> None:
    register(Path(__file__).parent / "financial-sentiment.toml")
    register(Path(__file__).parent / "financial-sentiment-zh.toml")


@hookimpl
def register_datasets(register) -> None:
    register("financial-sentiment-sample", train=DATA / "sample.csv",
             description="407 financial news sentences written for tunehub (text,label)")
    register("financial-sentiment-zh-sample", train=DATA / "sample_zh.csv",
             description="360 Chinese financial news sentences and investor posts written for "
                         "tunehub, 120 per label (text,label)")


@hookimpl
def register_baselines(register) -> None:
    register("finance-lexicon", finance_lexicon,
             description="counts finance words with positive/negative tone, handling negation")
