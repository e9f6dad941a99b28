"""Tagging with a token-classification transformer: windows, alignment, merging, decoding.

Words are split into subwords by the model's fast tokenizer. A word's label sits on its
first subword; the other subwords are ignored (-100) in training and in prediction.
Sentences longer than ``max_length`` subwords are cut into windows that overlap by
``stride`` subwords; each word takes its prediction from the window where it is most
central (farthest from a window edge), so no input is ever truncated.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .tags import repair, spans, viterbi


@dataclass
class Window:
    """One model input: subword ids and the word each word-start position labels."""

    sentence: int
    features: dict[str, list[int]]  # input_ids, attention_mask (, token_type_ids)
    starts: list[tuple[int, int]]  # (position, word) of each word's first subword

    def margin(self, position: int) -> int:
        """Distance of ``position`` to the nearer edge of the window."""
        return min(position, len(self.features["input_ids"]) - 1 - position)


def tag_labels(types: Sequence[str]) -> list[str]:
    """The model's label set: O, then B-/I- of each type."""
    return ["O"] + [f"{p}-{kind}" for kind in types for p in ("B", "I")]


def windows(tokenizer: Any, sentences: Sequence[Sequence[str]], max_length: int,
            stride: int) -> list[Window]:
    """Overlapping windows of every sentence (one window for most)."""
    if not sentences:
        return []
    encoded = tokenizer([list(s) for s in sentences], is_split_into_words=True,
                        truncation=True, max_length=max_length, stride=stride,
                        return_overflowing_tokens=True, return_offsets_mapping=True)
    keys = [k for k in ("input_ids", "attention_mask", "token_type_ids") if k in encoded]
    out = []
    for k, sentence in enumerate(encoded["overflow_to_sample_mapping"]):
        word_ids, offsets = encoded.word_ids(k), encoded["offset_mapping"][k]
        starts, previous = [], None
        for position, word in enumerate(word_ids):
            # offsets are relative to the word, so 0 marks its first subword (a window can
            # begin in the middle of a word)
            if word is not None and word != previous and offsets[position][0] == 0:
                starts.append((position, word))
            previous = word
        out.append(Window(sentence, {key: encoded[key][k] for key in keys}, starts))
    return out


def training_features(tokenizer: Any, sentences: Sequence[Sequence[str]],
                      tags: Sequence[Sequence[str]], labels: Sequence[str], max_length: int,
                      stride: int) -> list[dict[str, list[int]]]:
    """Trainer rows: window features + ``labels`` (the tag id on first subwords, else -100)."""
    index = {label: i for i, label in enumerate(labels)}
    rows = []
    for window in windows(tokenizer, sentences, max_length, stride):
        target = [-100] * len(window.features["input_ids"])
        for position, word in window.starts:
            target[position] = index[tags[window.sentence][word]]
        rows.append({**window.features, "labels": target})
    return rows


def word_probabilities(model: Any, tokenizer: Any, sentences: Sequence[Sequence[str]],
                       max_length: int, stride: int, batch_size: int = 64,
                       bf16: bool = False, max_tokens: int = 4096) -> list[np.ndarray]:
    """(words, labels) probabilities per sentence, merged over windows.

    A word that yields no subword at all (say a lone control character) gets ``O``.
    """
    import torch

    n_labels = model.config.num_labels
    probs = [np.zeros((len(s), n_labels), dtype=np.float32) for s in sentences]
    for p in probs:
        p[:, 0] = 1.0  # O until a window says otherwise
    best = [np.full(len(s), -1) for s in sentences]
    parts = windows(tokenizer, sentences, max_length, stride)
    order = sorted(range(len(parts)), key=lambda i: -len(parts[i].features["input_ids"]))
    pad = tokenizer.pad_token_id or 0
    model.eval()
    device = next(model.parameters()).device
    with torch.inference_mode(), torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
        for batch in _batches(order, parts, batch_size, max_tokens):
            width = len(parts[batch[0]].features["input_ids"])
            inputs = {key: torch.tensor([parts[i].features[key] + [pad if key == "input_ids" else 0]
                                         * (width - len(parts[i].features[key])) for i in batch])
                      for key in parts[batch[0]].features}
            inputs = {key: value.to(device) for key, value in inputs.items()}
            out = torch.softmax(model(**inputs).logits.float(), -1).cpu().numpy()  # (B, T, L)
            for row, i in enumerate(batch):
                window = parts[i]
                for position, word in window.starts:
                    margin = window.margin(position)
                    if margin > best[window.sentence][word]:
                        best[window.sentence][word] = margin
                        probs[window.sentence][word] = out[row, position]
    return probs


def _batches(order: list[int], parts: list[Window], batch_size: int, max_tokens: int):
    batch: list[int] = []
    for i in order:  # longest first, so the first row of a batch sets its width
        width = len(parts[batch[0]].features["input_ids"]) if batch else 0
        if batch and (len(batch) >= batch_size or (len(batch) + 1) * width > max_tokens):
            yield batch
            batch = []
        batch.append(i)
    if batch:
        yield batch


def decode(probs: np.ndarray, labels: Sequence[str], method: str = "viterbi") -> list[str]:
    """Valid IOB2 tags from (words, labels) probabilities.

    ``viterbi``: the most probable path with no I-X after O or another type;
    ``argmax``: each word's best tag, then an I-X that continues nothing opens an entity.
    """
    if method == "viterbi":
        return [labels[i] for i in viterbi(np.log(np.clip(probs, 1e-12, 1.0)), labels)]
    return repair([labels[i] for i in probs.argmax(-1)])


def entities(tags: Sequence[str], probs: np.ndarray, labels: Sequence[str],
             text: str, offsets: Sequence[tuple[int, int]]) -> list[dict[str, Any]]:
    """Entity records with character offsets into ``text`` and a score (the mean
    probability of the entity's tags)."""
    index = {label: i for i, label in enumerate(labels)}
    out = []
    for start, end, kind in spans(tags):
        score = float(np.mean([probs[w, index[tags[w]]] for w in range(start, end)]))
        first, last = offsets[start][0], offsets[end - 1][1]
        out.append({"type": kind, "text": text[first:last], "start": first, "end": last,
                    "score": round(score, 4)})
    return out
