"""The inference path shared by evaluation, predict and serve.

Texts are sorted by length so each batch pads little, run under ``torch.inference_mode``
(with bf16 autocast only where the hardware is fast at it), and the results are put back
in input order.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np


def length_order(texts: Sequence[str]) -> list[int]:
    """Indices of ``texts`` from longest to shortest (a cheap proxy for token count)."""
    return sorted(range(len(texts)), key=lambda i: -len(texts[i]))


def run_batches(
    texts: Sequence[str],
    tokenizer: Any,
    forward: Callable[[dict[str, Any]], Any],
    batch_size: int = 128,
    max_length: int = 128,
    bf16: bool = False,
) -> np.ndarray:
    """Apply ``forward(batch) -> Tensor (B, ...)`` to all texts; rows in input order."""
    import torch

    if not len(texts):
        return np.zeros((0,), dtype=np.float32)
    order = length_order(texts)
    chunks: list[np.ndarray] = []
    with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        for start in range(0, len(order), batch_size):
            batch_texts = [texts[i] for i in order[start:start + batch_size]]
            batch = tokenizer(batch_texts, padding=True, truncation=True,
                              max_length=max_length, return_tensors="pt")
            chunks.append(forward(dict(batch)).float().cpu().numpy())
    sorted_rows = np.concatenate(chunks)
    rows = np.empty_like(sorted_rows)
    rows[np.asarray(order)] = sorted_rows  # undo the length sort
    return rows
