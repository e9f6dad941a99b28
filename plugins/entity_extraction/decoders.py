"""Token classification on decoders that transformers ships no such class for (Gemma 3).

transformers builds ``*ForTokenClassification`` for most decoders (Llama, Qwen, Gemma 1/2)
from one generic class: the base model, dropout and a linear ``score`` layer over each
position. Gemma 3's text model has none, so `register` declares the same composition for it
and registers it with ``AutoModelForTokenClassification``; its saved folders then load with
``AutoModelForTokenClassification.from_pretrained`` once ``register()`` has run.
"""
from __future__ import annotations

from functools import lru_cache


@lru_cache(maxsize=1)
def register() -> None:
    """Make ``AutoModelForTokenClassification`` know Gemma 3 text models (idempotent)."""
    from transformers import (AutoModelForTokenClassification, Gemma3TextConfig,
                              MODEL_FOR_TOKEN_CLASSIFICATION_MAPPING)

    if Gemma3TextConfig in MODEL_FOR_TOKEN_CLASSIFICATION_MAPPING:  # a newer transformers
        return
    from transformers.modeling_layers import GenericForTokenClassification
    from transformers.models.gemma3.modeling_gemma3 import Gemma3PreTrainedModel

    class Gemma3TextForTokenClassification(GenericForTokenClassification, Gemma3PreTrainedModel):
        config_class = Gemma3TextConfig
        input_modalities = ("text",)

    # exist_ok: transformers skips registrations for its own config classes without it
    AutoModelForTokenClassification.register(Gemma3TextConfig, Gemma3TextForTokenClassification,
                                             exist_ok=True)
