"""Bi-encoders (sentence-transformers): load, encode, and fine-tune on (anchor, positive) pairs.

Training is contrastive with in-batch negatives (``MultipleNegativesRankingLoss``): for
each anchor, its positive must score above every other positive in the batch. The
no-duplicates batch sampler keeps a text (so a target shared by many anchors) out of a
batch twice, so no in-batch "negative" is secretly a positive. The training loop is the
engine's (`tunehub.core.engine.run_trainer` with ``SentenceTransformerTrainer``).
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .errors import ModelError


def load_encoder(path: str | Path, max_length: int | None = None):
    """A SentenceTransformer from a local folder (safetensors only, no remote code).

    A plain Hugging Face encoder folder gets mean pooling, as sentence-transformers does."""
    from sentence_transformers import SentenceTransformer

    from .engine import quiet_transformers

    quiet_transformers()
    folder = Path(path)
    if not any(folder.glob("*.safetensors")):
        raise ModelError(f"{folder}: no .safetensors weights; tunehub loads safetensors only.")
    import torch

    device = "cuda" if torch.cuda.is_available() else "cpu"
    model = SentenceTransformer(str(folder), device=device, trust_remote_code=False,
                                model_kwargs={"use_safetensors": True})
    if max_length:
        model.max_seq_length = int(max_length)
    return model


def encode(model: Any, texts: Sequence[str], batch_size: int = 128) -> np.ndarray:
    """(N, D) unit-length float32 embeddings, rows in input order.

    Runs the model's own modules through the shared inference path (length-sorted,
    token-budgeted batches); the vectors equal ``model.encode(..., normalize_embeddings=True)``.
    """
    import torch

    from .inference import run_batches

    dimension = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
    dim = dimension() or 0
    if not len(texts):
        return np.zeros((0, dim), dtype=np.float32)
    model.eval()
    device = model.device

    def forward(batch: dict[str, Any]) -> Any:
        features = {key: value.to(device) for key, value in batch.items()}
        return torch.nn.functional.normalize(model(features)["sentence_embedding"].float(), dim=-1)

    vectors = run_batches(list(texts), model.tokenizer, forward, batch_size=batch_size,
                          max_length=model.max_seq_length)
    return np.ascontiguousarray(vectors, dtype=np.float32)


def train_pairs(model: Any, anchors: Sequence[str], positives: Sequence[str], settings: Any,
                work_dir: Path, resume: bool = False, callbacks: Sequence[Any] = (),
                scale: float = 20.0):
    """Fine-tune ``model`` in place on (anchor, positive) pairs; returns the engine's FitResult.

    ``settings`` is a `TrainSettings`; the batch size is capped at the number of distinct
    positives, since the no-duplicates sampler cannot fill a larger batch."""
    from dataclasses import replace

    from datasets import Dataset
    from sentence_transformers import SentenceTransformerTrainer, SentenceTransformerTrainingArguments
    from sentence_transformers.base.sampler import BatchSamplers
    from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss

    from .engine import run_trainer

    if len(anchors) != len(positives) or not len(anchors):
        raise ModelError(f"train_pairs needs as many positives as anchors (>0), got "
                         f"{len(anchors)} and {len(positives)}.")
    distinct = len(set(positives))
    if distinct < 2:
        raise ModelError("contrastive training needs at least two distinct positives.")
    settings = replace(settings, batch_size=max(2, min(settings.batch_size, distinct)))
    dataset = Dataset.from_dict({"anchor": list(anchors), "positive": list(positives)})
    loss = MultipleNegativesRankingLoss(model, scale=scale)

    def make_trainer(args):
        return SentenceTransformerTrainer(model=model, args=args, train_dataset=dataset, loss=loss)

    overrides = {"batch_sampler": BatchSamplers.NO_DUPLICATES,
                 "train_sampling_strategy": "random"}
    trainer, result = run_trainer(
        make_trainer, settings, work_dir, None, True, resume, callbacks,
        args_overrides=overrides, args_class=SentenceTransformerTrainingArguments,
    )
    return trainer.model, result


def save_encoder(model: Any, folder: Path) -> Path:
    """Write the model in sentence-transformers format (safetensors weights)."""
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(folder), create_model_card=False, safe_serialization=True)
    return folder
