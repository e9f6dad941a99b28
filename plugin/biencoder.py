"""Sentence-transformers bi-encoders, for heads that embed texts: load a base model or a
fine-tuned folder, encode, mine hard negatives, train on pairs, save (with LoRA too).

    from tunehub.plugin.biencoder import encode, load_encoder

See docs/heads.md (reference: tunehub.plugin.biencoder).
"""
from __future__ import annotations

from ..core.models.biencoder import (
    encode,
    load_encoder,
    mine_hard_negatives,
    prepare_peft,
    save_encoder,
    train_pairs,
)

__all__ = ["load_encoder", "encode", "mine_hard_negatives", "train_pairs", "prepare_peft",
           "save_encoder"]
