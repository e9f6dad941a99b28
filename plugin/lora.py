"""LoRA as a setting (``train.peft``, ``train.lora.*``), for heads: one `apply` call wraps a
backbone when the settings ask for LoRA, and the artifact helpers name and check its base.

    from tunehub.plugin import lora

    backbone, settings, base = lora.apply(backbone, settings, run.base_model, config["model"])

See docs/heads.md (reference: tunehub.plugin.lora).
"""
from __future__ import annotations

from ..core.models.lora import (
    ADAPTER_CONFIG,
    ATTENTIONS,
    LORA_DEFAULTS,
    PEFTS,
    apply,
    attention_kwargs,
    base_folder,
    base_record,
    bidirectional,
    can_attend_both_ways,
    enable_checkpointing,
    is_adapter,
    is_decoder,
    load_adapter,
    lora_config,
    lora_settings,
    resolve_peft,
    train_settings,
    trainable_summary,
    weights_sha256,
    wrap,
)

__all__ = ["PEFTS", "LORA_DEFAULTS", "ADAPTER_CONFIG", "apply", "wrap", "resolve_peft",
           "is_decoder", "ATTENTIONS", "can_attend_both_ways", "bidirectional",
           "attention_kwargs", "lora_settings", "lora_config", "train_settings", "enable_checkpointing",
           "trainable_summary", "base_record", "base_folder", "weights_sha256", "is_adapter",
           "load_adapter"]
