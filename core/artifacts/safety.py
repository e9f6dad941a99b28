"""What tunehub refuses to load: pickle weights and model folders that bring their own code.

Every loader checks a folder here first, so the refusal is one line before any library
sees the folder (transformers would otherwise ask on a terminal, or import the code).
"""
from __future__ import annotations

import json
from pathlib import Path

from ..errors import ModelError

PICKLE_WEIGHTS = ("pytorch_model.bin", "tf_model.h5", "flax_model.msgpack", "model.ckpt")


def refuse_remote_code(path: Path, name: str | None = None) -> None:
    """Refuse a model folder whose config asks to run its own Python code (``auto_map``).

    transformers would import that code with ``trust_remote_code=True``, and on a terminal
    it even asks; tunehub passes ``trust_remote_code=False`` everywhere and stops earlier,
    with one line, before anything is loaded.
    """
    for file in ("config.json", "tokenizer_config.json", "config_sentence_transformers.json"):
        candidate = Path(path) / file
        if not candidate.is_file():
            continue
        try:
            content = json.loads(candidate.read_text(encoding="utf-8"))
        except (ValueError, UnicodeDecodeError):
            raise ModelError(f"model '{name or path}': {candidate} is not valid JSON.") from None
        if isinstance(content, dict) and "auto_map" in content:
            raise ModelError(
                f"model '{name or path}': {candidate} maps classes to Python code in the folder "
                "(auto_map); tunehub never runs code from a model folder. Use a model of a "
                "standard transformers architecture."
            )


def safe_model_folder(path: str | Path) -> Path:
    """A local model folder that is safe to load: safetensors weights, no code of its own."""
    folder = Path(path)
    refuse_remote_code(folder)
    if not any(folder.glob("*.safetensors")):
        raise ModelError(f"{folder}: no .safetensors weights; tunehub loads safetensors only.")
    return folder
