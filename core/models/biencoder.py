"""Bi-encoders (sentence-transformers): load, encode, and fine-tune on (anchor, positive) pairs.

Training is contrastive with in-batch negatives (``MultipleNegativesRankingLoss``): for
each anchor, its positive must score above every other positive in the batch. The
no-duplicates batch sampler keeps a text (so a target shared by many anchors) out of a
batch twice, so no in-batch "negative" is secretly a positive. The training loop is the
engine's (`tunehub.core.running.engine.run_trainer` with ``SentenceTransformerTrainer``).
"""
from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ConfigError, ModelError

BASE_RECORD = "tunehub-base.json"  # a LoRA bi-encoder's base model: name, path, SHA-256


def load_encoder(path: str | Path, max_length: int | None = None):
    """A SentenceTransformer from a local folder (safetensors only, no remote code).

    A plain Hugging Face encoder folder gets mean pooling, as sentence-transformers does."""
    from sentence_transformers import SentenceTransformer

    from ..running.engine import quiet_transformers

    quiet_transformers()
    from ..artifacts.safety import safe_model_folder

    folder = safe_model_folder(path)
    import torch

    from . import lora

    adapter = lora.is_adapter(folder)
    if adapter:  # a LoRA fine-tune: the base it names, with the adapter merged in
        record = json.loads((folder / BASE_RECORD).read_text()) if (folder / BASE_RECORD).is_file() else {}
        base = lora.base_folder(record, folder)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    source = base if adapter else folder
    model = SentenceTransformer(str(source), device=device, trust_remote_code=False,
                                model_kwargs={"use_safetensors": True},
                                config_kwargs=_both_ways(source))
    if adapter:
        model[0].model = lora.load_adapter(model[0].model, folder)
    tokenizer = model.tokenizer
    if tokenizer.pad_token is None:  # decoder LLMs may ship without one
        tokenizer.pad_token = tokenizer.eos_token or tokenizer.unk_token
    if max_length:
        model.max_seq_length = int(max_length)
    return model


def _both_ways(folder: Path) -> dict[str, Any]:
    """A decoder that can attend both ways (Gemma 3) embeds with its causal mask off, as
    EmbeddingGemma does: a sentence vector must see every token from every position."""
    config = folder / "config.json"
    if (folder / "modules.json").is_file() or not config.is_file():
        return {}  # a sentence-transformers folder keeps the config it was saved with
    from transformers import AutoConfig

    from . import lora

    return lora.attention_kwargs(AutoConfig.from_pretrained(folder, trust_remote_code=False))


def encode(model: Any, texts: Sequence[str], batch_size: int = 128) -> np.ndarray:
    """(N, D) unit-length float32 embeddings, rows in input order.

    Runs the model's own modules through the shared inference path (length-sorted,
    token-budgeted batches); the vectors equal ``model.encode(..., normalize_embeddings=True)``.
    """
    import torch

    from .inference import run_batches

    if not len(texts):
        dimension = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
        return np.zeros((0, dimension() or 0), dtype=np.float32)
    model.eval()
    device = model.device

    def forward(batch: dict[str, Any]) -> Any:
        features = {key: value.to(device) for key, value in batch.items()}
        return torch.nn.functional.normalize(model(features)["sentence_embedding"].float(), dim=-1)

    vectors = run_batches(list(texts), model.tokenizer, forward, batch_size=batch_size,
                          max_length=model.max_seq_length)
    return np.ascontiguousarray(vectors, dtype=np.float32)


def mine_hard_negatives(model: Any, anchors: Sequence[str], positives: Sequence[str],
                        corpus: Sequence[str], count: int, margin: float = 0.05,
                        batch_size: int = 128) -> dict[str, list[str]]:
    """(anchor, positive, negative_1..count) columns, one row per anchor.

    Each anchor's negatives are the corpus texts ``model`` scores highest among those at
    least ``margin`` (relative) below its positive: NV-Retriever's TopK-PercPos, whose
    margin keeps unlabelled paraphrases of the positive out. When too few texts pass the
    margin, the least similar remaining texts fill in, so no anchor is dropped."""
    texts = list(dict.fromkeys(corpus))
    if count < 1 or len(texts) <= count:
        raise ModelError(f"mining {count} hard negatives needs a corpus of more than {count} "
                         f"distinct texts, got {len(texts)}.")
    corpus_vectors = encode(model, texts, batch_size)  # (C, D)
    anchor_vectors = encode(model, anchors, batch_size)  # (A, D)
    position = {text: i for i, text in enumerate(texts)}
    columns: dict[str, list[str]] = {"anchor": list(anchors), "positive": list(positives)}
    columns.update({f"negative_{n + 1}": [] for n in range(count)})
    look = min(len(texts), 8 * count + 1)  # candidates looked at per anchor, best first
    for start in range(0, len(anchors), 1024):  # bounded memory: (1024, C) scores at a time
        scores = anchor_vectors[start:start + 1024] @ corpus_vectors.T
        for row, positive in zip(scores, positives[start:start + 1024]):
            own = position.get(positive)
            ceiling = row[own] - margin * abs(row[own]) if own is not None else np.inf
            top = np.argpartition(-row, look - 1)[:look] if look < len(row) else np.arange(len(row))
            ranked = [int(i) for i in top[np.argsort(-row[top], kind="stable")] if i != own]
            picked = [i for i in ranked if row[i] <= ceiling][:count]
            if len(picked) < count:  # look at every text; then the least similar fill in
                ranked = [int(i) for i in np.argsort(-row, kind="stable") if i != own]
                picked = [i for i in ranked if row[i] <= ceiling][:count]
                picked += [i for i in reversed(ranked) if i not in picked][:count - len(picked)]
            for n, i in enumerate(picked):
                columns[f"negative_{n + 1}"].append(texts[i])
    return columns


def train_pairs(model: Any, anchors: Sequence[str], positives: Sequence[str], settings: Any,
                work_dir: Path, resume: bool = False, callbacks: Sequence[Any] = (),
                scale: float = 20.0, negatives: Mapping[str, Sequence[str]] | None = None,
                symmetric: bool = False):
    """Fine-tune ``model`` in place on (anchor, positive) pairs; returns (the trained model,
    the engine's FitResult).

    ``negatives`` adds hard-negative columns (``negative_1``...: one text per anchor each),
    scored against each anchor beside the in-batch negatives. ``symmetric`` adds the
    reverse direction (each positive must pick its anchor among the batch's anchors), as in
    MultipleNegativesSymmetricRankingLoss. ``settings`` is a
    `TrainSettings`; the (global) batch is capped at the number of distinct positives,
    since the no-duplicates sampler cannot fill a larger batch, and then at a size this
    run's processes share evenly."""
    from dataclasses import replace

    from datasets import Dataset
    from sentence_transformers import SentenceTransformerTrainer, SentenceTransformerTrainingArguments
    from sentence_transformers.base.sampler import BatchSamplers
    from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss

    from ..running.distributed import nearest_batches, world_size
    from ..running.engine import run_trainer

    if len(anchors) != len(positives) or not len(anchors):
        raise ModelError(f"train_pairs needs as many positives as anchors (>0), got "
                         f"{len(anchors)} and {len(positives)}.")
    distinct = len(set(positives))
    if distinct < 2:
        raise ModelError("contrastive training needs at least two distinct positives.")
    processes = world_size()
    if settings.batch_size > distinct:  # the largest batch up to the cap the processes share
        below = nearest_batches(distinct + 1, processes, settings.max_device_batch)[0]
        settings = replace(settings, batch_size=max(below or 0, 2 * processes))
    columns = {"anchor": list(anchors), "positive": list(positives)}
    for name, texts in (negatives or {}).items():
        if len(texts) != len(anchors):
            raise ModelError(f"hard-negative column '{name}' has {len(texts)} texts for "
                             f"{len(anchors)} anchors; give one per anchor.")
        columns[name] = list(texts)
    dataset = Dataset.from_dict(columns)
    directions = {"directions": ("query_to_doc", "doc_to_query"),
                  "partition_mode": "per_direction"} if symmetric else {}
    # in-batch negatives from the whole global batch, not one process's share of it
    loss = MultipleNegativesRankingLoss(model, scale=scale, gather_across_devices=processes > 1,
                                        **directions)
    model.model_card_data.widget = [{"text": ""}]  # no model card: skip its example pass

    def make_trainer(args):
        return SentenceTransformerTrainer(model=model, args=args, train_dataset=dataset, loss=loss)

    overrides = {"batch_sampler": BatchSamplers.NO_DUPLICATES,
                 "train_sampling_strategy": "random"}
    trainer, result = run_trainer(
        make_trainer, settings, work_dir, None, True, resume, callbacks,
        args_overrides=overrides, args_class=SentenceTransformerTrainingArguments,
    )
    return trainer.model, result


def prepare_peft(model: Any, settings: Any, base: Path, name: str) -> tuple[Any, dict | None]:
    """Apply ``train.peft`` to a bi-encoder before training: LoRA adapters on its
    transformer (and the LoRA learning rate), or nothing for full fine-tuning. Returns
    (settings to train with, the base model's record for `save_encoder` or None).

    Decoders train with their causal mask off (`load_encoder` does that for the Gemma
    family); other decoder LLMs are refused: their causal states are not sentence vectors,
    and a bi-encoder needs both sides of a text in every position."""
    from . import lora

    transformer = model[0].model  # (its auto_model property reads this attribute)
    config = transformer.config
    if lora.is_decoder(config) and not getattr(config, "use_bidirectional_attention", False):
        raise ConfigError(
            f"'{name}' is a decoder LLM ({config.model_type}) that only attends one way; a "
            "bi-encoder needs a model whose mean-pooled states are sentence vectors. Use an "
            "encoder such as minilm, or a Gemma 3 decoder (gemma3-270m), which attends both "
            "ways here.")
    model[0].model, settings, record = lora.apply(transformer, settings, base, name)
    return settings, record


def save_encoder(model: Any, folder: Path, base: Mapping[str, Any] | None = None) -> Path:
    """Write the model in sentence-transformers format (safetensors weights); with LoRA
    (``base``, from `prepare_peft`), the adapter and the base model's record."""
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(folder), create_model_card=False, safe_serialization=True)
    if base is not None:
        (folder / BASE_RECORD).write_text(json.dumps(dict(base), indent=2) + "\n")
    return folder
