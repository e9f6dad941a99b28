"""Does the base model's tokenizer read the data's script? Measured before training.

A tokenizer that lacks a script maps its characters to the unknown token (WordPiece
models such as MiniLM: Chinese text comes out mostly ``[UNK]``), or, byte-level, splits
each character into several byte tokens. Either way the model cannot learn the text, and
the run would train without a word. `measure` counts both on a sample of the training
texts; `verdict` turns a measurement into one warning, naming a packaged model that covers
more scripts. Thresholds: more than `MAX_UNKNOWN` of the tokens unknown, or more than
`MAX_TOKENS_PER_CHAR` tokens per character (English runs at about 0.25, Chinese in a
tokenizer that covers it at about 0.7-1.0, in one that falls back to bytes at 2-3).
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MAX_UNKNOWN = 0.05
MAX_TOKENS_PER_CHAR = 1.5
SAMPLE = 2000  # texts measured at most (evenly spaced over the data)
MULTILINGUAL = "gemma3-270m"  # the packaged model whose 262k-token vocabulary covers most scripts


@dataclass(frozen=True)
class Coverage:
    texts: int
    tokens: int
    characters: int
    unknown: int

    @property
    def unknown_share(self) -> float:
        return self.unknown / self.tokens if self.tokens else 0.0

    @property
    def tokens_per_char(self) -> float:
        return self.tokens / self.characters if self.characters else 0.0

    def note(self) -> str:
        return (f"{self.unknown_share:.1%} of {self.tokens} tokens unknown, "
                f"{self.tokens_per_char:.2f} tokens per character ({self.texts} texts)")


def measure(tokenizer: Any, texts: Sequence[str], sample: int = SAMPLE) -> Coverage:
    """Unknown-token share and tokens per character of up to ``sample`` texts."""
    texts = [t for t in texts if isinstance(t, str) and t.strip()]
    if len(texts) > sample:
        step = len(texts) / sample
        texts = [texts[int(i * step)] for i in range(sample)]
    if not texts:
        return Coverage(0, 0, 0, 0)
    ids = tokenizer(list(texts), add_special_tokens=False)["input_ids"]
    unk = tokenizer.unk_token_id
    tokens = sum(len(row) for row in ids)
    unknown = sum(row.count(unk) for row in ids) if unk is not None else 0
    characters = sum(len("".join(t.split())) for t in texts)
    return Coverage(len(texts), tokens, characters, unknown)


def verdict(found: Coverage, model: str) -> str | None:
    """One warning when the tokenizer does not cover the data's script, else None."""
    if found.unknown_share > MAX_UNKNOWN:
        what = (f"{found.unknown_share:.0%} of the data's tokens are unknown to the tokenizer of "
                f"'{model}' (its unknown token)")
    elif found.tokens_per_char > MAX_TOKENS_PER_CHAR:
        what = (f"the tokenizer of '{model}' splits the data into {found.tokens_per_char:.1f} "
                "tokens per character (bytes, not words)")
    else:
        return None
    hint = (f"use a model that covers the script, e.g. --base-model {MULTILINGUAL} (multilingual)"
            if model != MULTILINGUAL else "use a model whose vocabulary covers the script")
    return (f"{what}: the model can hardly read this text, and its predictions will be poor; "
            f"{hint}. (Thresholds: {MAX_UNKNOWN:.0%} unknown, {MAX_TOKENS_PER_CHAR:g} tokens "
            "per character; `app --strict` makes this an error.)")


def check(base_model: Path, texts: Sequence[str], model: str) -> tuple[Coverage, str | None]:
    """Measure ``texts`` with the tokenizer in ``base_model``; (coverage, warning or None)."""
    from transformers import AutoTokenizer

    from .engine import quiet_transformers

    quiet_transformers()
    tokenizer = AutoTokenizer.from_pretrained(base_model, trust_remote_code=False)
    found = measure(tokenizer, texts)
    return found, verdict(found, model)
