"""Parameter-efficient fine-tuning (LoRA, with PEFT) as a setting of the one engine.

``train.peft`` chooses: ``"lora"`` trains low-rank adapters on the backbone's linear
layers while the head's new layers train fully; ``"none"`` trains every weight; ``"auto"``
(the default) picks LoRA for decoder backbones (GPT-style language models, 100M+
parameters here) and full fine-tuning for small encoders, which is what measured best on
validation slices (README, "Large models"). ``train.lora.*`` holds the adapter settings:

- ``r`` (rank), ``alpha`` (scale = alpha / r), ``dropout``;
- ``target_modules``: ``"auto"`` is every linear layer of the transformer blocks (PEFT's
  ``"all-linear"``), or a comma-separated list of module names (``q_proj,v_proj``);
- ``learning_rate``: adapters learn at a higher rate than full fine-tuning; with LoRA this
  replaces ``train.learning_rate``;
- ``max_epochs``: with LoRA, ``train.epochs = "auto"`` takes at most this many epochs (an
  epoch of a 135M decoder costs about six of MiniLM's on CPU, and LoRA converges in fewer).

A LoRA artifact holds the adapter (PEFT's ``adapter_config.json`` and
``adapter_model.safetensors``) and the head, and names its base model with the SHA-256 of
its weights (`base_record`); `tunehub.core.artifacts.hub.export_artifact` with ``merged=True`` folds
the adapter in (``merge_and_unload``) and writes one plain folder.
"""
from __future__ import annotations

import hashlib
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any

from ..errors import ConfigError, ModelError

PEFTS = ("auto", "none", "lora")
LORA_DEFAULTS: dict[str, Any] = {
    "r": 16,
    "alpha": 32,
    "dropout": 0.0,
    "target_modules": "auto",
    "learning_rate": 5e-4,
    "max_epochs": 3,
}
ADAPTER_CONFIG = "adapter_config.json"


def is_decoder(config: Any) -> bool:
    """True for a GPT-style (causal-only) language model config: Llama, Gemma, Qwen, GPT-2...

    Encoders such as BERT also have a causal-LM class in transformers, so a model counts as
    a decoder when it has a causal-LM class and no masked-LM class.
    """
    from transformers import MODEL_FOR_CAUSAL_LM_MAPPING, MODEL_FOR_MASKED_LM_MAPPING

    if getattr(config, "is_encoder_decoder", False):
        return False
    kind = type(config)
    return kind in MODEL_FOR_CAUSAL_LM_MAPPING and kind not in MODEL_FOR_MASKED_LM_MAPPING


ATTENTIONS = ("auto", "causal", "bidirectional")


def can_attend_both_ways(config: Any) -> bool:
    """True for a decoder whose causal mask transformers can switch off: the Gemma family's
    ``use_bidirectional_attention`` (what EmbeddingGemma turns on to make Gemma 3 an
    encoder)."""
    return is_decoder(config) and hasattr(config, "use_bidirectional_attention")


def bidirectional(config: Any, setting: str = "auto", where: str = "head.attention") -> bool:
    """Whether to switch a decoder's causal mask off for a task that reads a whole text at
    once (tagging each token, embedding a sentence): ``setting`` is ``"auto"`` (yes when the
    model can, `can_attend_both_ways`), ``"causal"`` (no) or ``"bidirectional"`` (yes, or a
    `ConfigError` naming the model). Encoders already attend both ways: always False."""
    if setting not in ATTENTIONS:
        raise ConfigError(f"{where} must be one of {', '.join(ATTENTIONS)}, got '{setting}'.")
    if not is_decoder(config) or setting == "causal":
        return False
    able = can_attend_both_ways(config)
    if setting == "bidirectional" and not able:
        raise ConfigError(f"{where} = bidirectional: transformers cannot switch the causal "
                          f"mask of '{config.model_type}' off (only the Gemma family can); "
                          f"use {where} = causal or auto.")
    return able


def attention_kwargs(config: Any, setting: str = "auto", where: str = "head.attention") -> dict:
    """Config overrides for ``from_pretrained`` (or sentence-transformers' ``config_kwargs``)
    that give `bidirectional`'s answer: ``{"use_bidirectional_attention": True}`` or ``{}``."""
    return {"use_bidirectional_attention": True} if bidirectional(config, setting, where) else {}


def resolve_peft(peft: str, model_config: Any) -> str:
    """``auto`` -> ``lora`` for decoder backbones, ``none`` for encoders."""
    if peft not in PEFTS:
        raise ConfigError(f"train.peft must be one of {', '.join(PEFTS)}, got '{peft}'.")
    if peft != "auto":
        return peft
    return "lora" if is_decoder(model_config) else "none"


def lora_settings(settings: Any) -> dict[str, Any]:
    """``train.lora`` with defaults filled in."""
    return {**LORA_DEFAULTS, **dict(getattr(settings, "lora", {}) or {})}


def _block_linears(model: Any) -> list[str]:
    """Names of the linear layers inside the transformer itself (not a task head on top)."""
    import torch

    inner = getattr(model, getattr(model, "base_model_prefix", ""), None)
    inner = inner if isinstance(inner, torch.nn.Module) else model
    return sorted({name.rsplit(".", 1)[-1] for name, module in inner.named_modules()
                   if isinstance(module, torch.nn.Linear) and "lm_head" not in name})


def lora_config(settings: Any, task_type: str | None = None, modules_to_save=None,
                model: Any = None):
    """A `peft.LoraConfig` from ``train.lora``."""
    try:
        from peft import LoraConfig
    except ImportError:
        raise ConfigError("train.peft=lora needs the 'peft' package: pip install peft.") from None
    lora = lora_settings(settings)
    targets = lora["target_modules"]
    if isinstance(targets, str):
        auto = targets.strip() in ("auto", "all-linear")
        targets = [t.strip() for t in targets.split(",") if t.strip()]
        if auto:
            targets = _block_linears(model) if model is not None else "all-linear"
    return LoraConfig(r=int(lora["r"]), lora_alpha=int(lora["alpha"]),
                      lora_dropout=float(lora["dropout"]), target_modules=targets,
                      task_type=task_type, modules_to_save=modules_to_save)


def train_settings(settings: Any) -> Any:
    """``settings`` for a LoRA run: the LoRA learning rate, and the auto schedule capped at
    ``train.lora.max_epochs``."""
    from dataclasses import replace

    lora = lora_settings(settings)
    cap = int(lora["max_epochs"])
    return replace(settings, learning_rate=float(lora["learning_rate"]),
                   max_epochs=min(settings.max_epochs, cap),
                   min_epochs=min(settings.min_epochs, cap))


def apply(backbone: Any, settings: Any, base: Path, name: str, task_type: str | None = None):
    """``train.peft`` and ``train.gradient_checkpointing`` on a backbone before training.

    Returns (backbone to train, settings to train with, the base model's record): with LoRA
    a PEFT model, `train_settings` and `base_record` (store it beside the adapter); for
    full fine-tuning the backbone and settings as given, and None."""
    if settings.gradient_checkpointing:
        enable_checkpointing(backbone)
    if resolve_peft(settings.peft, backbone.config) != "lora":
        return backbone, settings, None
    return wrap(backbone, settings, task_type), train_settings(settings), base_record(base, name)


def wrap(backbone: Any, settings: Any, task_type: str | None = None, modules_to_save=None):
    """``backbone`` with LoRA adapters (only the adapters, and ``modules_to_save``, train)."""
    from peft import get_peft_model

    try:
        return get_peft_model(backbone, lora_config(settings, task_type, modules_to_save, backbone))
    except ValueError as exc:
        raise ConfigError(f"train.lora.target_modules: {exc}".splitlines()[0]) from None


def enable_checkpointing(backbone: Any) -> None:
    """Gradient checkpointing (``train.gradient_checkpointing``): recompute activations in
    the backward pass, trading about a third more compute for much less memory."""
    backbone.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    if hasattr(backbone, "config"):
        backbone.config.use_cache = False


def trainable_summary(model: Any) -> str:
    """``"1.2M of 135.7M parameters (0.9%)"``."""
    total = sum(p.numel() for p in model.parameters())
    trained = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return f"{trained / 1e6:.2f}M of {total / 1e6:.1f}M parameters ({trained / max(total, 1):.2%})"


@lru_cache(maxsize=8)
def _weights_sha256(folder: str, stamp: tuple) -> str:
    digest = hashlib.sha256()
    for path in sorted(Path(folder).glob("*.safetensors")):
        with path.open("rb") as handle:
            while block := handle.read(1 << 20):
                digest.update(block)
    return digest.hexdigest()


def weights_sha256(folder: Path) -> str:
    """SHA-256 over a model folder's safetensors files (sorted by name)."""
    files = sorted(Path(folder).glob("*.safetensors"))
    stamp = tuple((p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in files)
    return _weights_sha256(str(Path(folder).resolve()), stamp)


def base_record(base: Path, name: str | None = None) -> dict[str, Any]:
    """What a LoRA artifact stores about its base model: name, folder, weights' SHA-256."""
    return {"name": name or str(base), "path": str(Path(base).resolve()),
            "sha256": weights_sha256(Path(base))}


def base_folder(record: Mapping[str, Any], where: Path) -> Path:
    """The base model folder a LoRA artifact names, checked against its recorded SHA-256."""
    path = Path(str(record.get("path", "")))
    if not (path / "config.json").is_file():
        raise ModelError(
            f"{where}: this LoRA adapter's base model '{record.get('name')}' is not at {path}. "
            f"Run any command with --base-model {record.get('name')} to restore it (packaged "
            "models are converted again), or export the version with --merged on a machine "
            "that has it.")
    if record.get("sha256") and weights_sha256(path) != record["sha256"]:
        raise ModelError(
            f"{where}: the base model at {path} is not the one this adapter was trained on "
            "(its weights' SHA-256 differs); retrain the task on the current base model.")
    return path


def is_adapter(folder: Path) -> bool:
    return (Path(folder) / ADAPTER_CONFIG).is_file()


def load_adapter(backbone: Any, folder: Path, merge: bool = True):
    """``backbone`` with the adapter in ``folder``; merged into plain weights by default
    (faster inference, no PEFT wrapper)."""
    from peft import PeftModel

    model = PeftModel.from_pretrained(backbone, str(folder), is_trainable=False)
    return model.merge_and_unload() if merge else model
