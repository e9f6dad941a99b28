"""Exporting a fine-tuned classifier as a folder that loads without tunehub.

The ``sequence-classification`` head exports a sentence-transformers model whose output
is the logits (B, C): Transformer -> Pooling (the head's mean or CLS pooling) -> Dense
(the trained classifier, identity activation). ``labels.json`` lists the classes in
logit order::

    model = SentenceTransformer(folder)            # sentence-transformers
    logits = model.encode(texts, convert_to_tensor=True)
    labels = json.load(open(f"{folder}/labels.json"))
    predicted = [labels[i] for i in logits.argmax(-1)]

In plain transformers, ``AutoModel.from_pretrained(folder)`` loads the encoder, and
``2_Dense/model.safetensors`` holds the classifier (``linear.weight`` (C, H),
``linear.bias`` (C,)) to apply to the pooled vector.

A classifier on a decoder LLM (last-token pooling) exports as transformers'
``*ForSequenceClassification`` (``LlamaForSequenceClassification``...) with ``id2label``,
which pools the same last token, so ``pipeline("text-classification", model=folder)``
gives the labels and probabilities of ``app predict``. A LoRA version is exported with its
adapter merged into the base weights: one plain folder.
"""
from __future__ import annotations

import json
import shutil
import uuid
from pathlib import Path
from typing import Any

from tunehub.plugin import lora
from tunehub.plugin import ModelError


def export_classifier(model_dir: Path, dest: Path) -> dict[str, Any]:
    """Write ``dest`` (must not exist yet) as a sentence-transformers folder."""
    import torch
    from safetensors.torch import load_file
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Dense, Pooling, Transformer

    from tunehub.plugin import quiet_transformers

    quiet_transformers()
    meta_path = model_dir / "head.json"
    if not meta_path.is_file():
        raise ModelError(f"{model_dir} has no head.json; not a sequence-classification model.")
    meta = json.loads(meta_path.read_text())
    if meta["pooling"] in ("last", "pooler") or lora.is_adapter(model_dir):
        from .head import TextClassifier

        model, tokenizer = TextClassifier.load(model_dir)  # LoRA adapters merged
        if standard_class(model) is not None:
            return _sequence_classification(model, tokenizer, dest, meta)
        plain = dest.parent / f".{dest.name}.merged-{uuid.uuid4().hex[:8]}"
        try:
            model.base = None
            model.save(plain, tokenizer)
            return export_classifier(plain, dest)
        finally:
            shutil.rmtree(plain, ignore_errors=True)
    labels, pooling = meta["labels"], meta["pooling"]
    state = load_file(str(model_dir / "head.safetensors"))  # weight (C, H), bias (C,)
    from tunehub.plugin import refuse_remote_code

    refuse_remote_code(model_dir)
    no_code = {"trust_remote_code": False}
    transformer = Transformer(str(model_dir), model_kwargs=no_code, processor_kwargs=no_code,
                              config_kwargs=no_code)
    hidden = transformer.get_embedding_dimension() if hasattr(transformer, "get_embedding_dimension") \
        else state["weight"].shape[1]
    dense = Dense(hidden, len(labels), bias=True, activation_function=torch.nn.Identity(),
                  init_weight=state["weight"], init_bias=state["bias"])
    model = SentenceTransformer(modules=[transformer, Pooling(hidden, pooling_mode=pooling), dense],
                                device="cpu")
    model.save(str(dest), create_model_card=False, safe_serialization=True)
    (dest / "labels.json").write_text(json.dumps(labels, indent=2) + "\n")
    (dest / "head.json").write_text(meta_path.read_text())
    return {"format": "sentence-transformers", "output": "logits",
            "outputs": "logits (softmax for probabilities)",
            "labels": labels, "pooling": pooling}


POOLER_CLASSIFIERS = ("bert", "ernie")  # *ForSequenceClassification: dropout + linear on the pooler


def standard_class(model: Any) -> type | None:
    """The transformers ``*ForSequenceClassification`` that computes what ``model`` (a
    `TextClassifier`) computes, or None: a causal decoder pooled at its last real token
    (the class's ``score``), or BERT pooled by its pooler (the class's ``classifier``)."""
    from transformers.models.auto.modeling_auto import MODEL_FOR_SEQUENCE_CLASSIFICATION_MAPPING_NAMES

    config = model.encoder.config
    name = MODEL_FOR_SEQUENCE_CLASSIFICATION_MAPPING_NAMES.get(config.model_type)
    decoder = lora.is_decoder(config)
    same = ((model.pooling == "last" and decoder and model.attention == "causal")
            or (model.pooling == "pooler" and config.model_type in POOLER_CLASSIFIERS))
    if not (name and same):
        return None
    import transformers

    return getattr(transformers, name, None)


def save_sequence_classification(model: Any, tokenizer: Any, dest: Path) -> str:
    """Save ``model`` (a plain `TextClassifier`, no adapter) as its transformers
    ``*ForSequenceClassification`` with ``id2label``; returns the class name."""
    import torch

    cls = standard_class(model)
    if cls is None:
        raise ModelError(f"a {model.encoder.config.model_type} classifier with {model.pooling} "
                         "pooling has no transformers *ForSequenceClassification equivalent.")
    labels = model.labels
    config = model.encoder.config.__class__.from_dict(model.encoder.config.to_dict())
    config.num_labels = len(labels)
    config.id2label = dict(enumerate(labels))
    config.label2id = {label: i for i, label in enumerate(labels)}
    if tokenizer.pad_token_id is not None:
        config.pad_token_id = tokenizer.pad_token_id
    config.architectures = [cls.__name__]
    with torch.device("meta"):  # no random initialisation: every weight is copied below
        classifier = cls(config)
    backbone = getattr(classifier, classifier.base_model_prefix)
    backbone.load_state_dict(model.encoder.state_dict(), assign=True)
    layer = classifier.score if hasattr(classifier, "score") else classifier.classifier
    layer.load_state_dict(model.classifier.state_dict(), assign=True)
    classifier.tie_weights()
    classifier.save_pretrained(dest, safe_serialization=True)
    return cls.__name__


def _sequence_classification(model: Any, tokenizer: Any, dest: Path, meta: dict) -> dict[str, Any]:
    """A classifier as transformers' ``AutoModelForSequenceClassification`` folder."""
    name = save_sequence_classification(model, tokenizer, dest)
    tokenizer.save_pretrained(dest)
    labels = meta["labels"]
    (dest / "labels.json").write_text(json.dumps(labels, indent=2) + "\n")
    return {"format": f"transformers {name}", "output": "logits",
            "outputs": "logits (softmax for probabilities); pipeline('text-classification')",
            "labels": labels, "pooling": model.pooling}
