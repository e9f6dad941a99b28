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
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tunehub.core.errors import ModelError


def export_classifier(model_dir: Path, dest: Path) -> dict[str, Any]:
    """Write ``dest`` (must not exist yet) as a sentence-transformers folder."""
    import torch
    from safetensors.torch import load_file
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Dense, Pooling, Transformer

    from tunehub.core.engine import quiet_transformers

    quiet_transformers()
    meta_path = model_dir / "head.json"
    if not meta_path.is_file():
        raise ModelError(f"{model_dir} has no head.json; not a sequence-classification model.")
    meta = json.loads(meta_path.read_text())
    labels, pooling = meta["labels"], meta["pooling"]
    state = load_file(str(model_dir / "head.safetensors"))  # weight (C, H), bias (C,)
    from tunehub.core.safety import refuse_remote_code

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
