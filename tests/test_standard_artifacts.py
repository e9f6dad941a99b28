"""A fine-tuned classifier is a standard one: the version's own model folder loads with
transformers' ``pipeline("text-classification")`` and ``AutoModelForSequenceClassification``
and answers with the labels and probabilities of ``app predict`` (where transformers has
the same computation: a causal decoder's last token, BERT's pooler); a mean-pooled encoder
or a LoRA version gets there through ``app models export`` (sentence-transformers, or a
merged ``*ForSequenceClassification``)."""
from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

import tunehub
from tunehub.core.artifacts import hub
from tunehub.core.cli import main

from conftest import tiny_overrides

TEXTS = ["Profit rose sharply in the quarter.", "The firm cut 500 jobs.",
         "The annual meeting is on 4 May, the company said in a statement on Tuesday."]
LABELS = {0: "negative", 1: "neutral", 2: "positive"}


@pytest.fixture(autouse=True)
def _fp32(monkeypatch):
    monkeypatch.setenv("TUNEHUB_PRECISION", "fp32")  # as plain transformers runs it


def _run(model, data, **settings):
    return tunehub.run_task("financial-sentiment", data=str(data), model=str(model),
                            overrides=tiny_overrides(**{"train.epochs": "2", **settings}))


def _same_as_predict(folder):
    from transformers import AutoModelForSequenceClassification, pipeline

    served = tunehub.predict("financial-sentiment", TEXTS)
    model = AutoModelForSequenceClassification.from_pretrained(folder)
    assert model.config.id2label == LABELS
    classify = pipeline("text-classification", model=str(folder), top_k=None)
    for text, answer in zip(TEXTS, served):
        scores = {item["label"]: item["score"] for item in classify([text])[0]}
        assert max(abs(scores[k] - v) for k, v in answer["probabilities"].items()) < 1e-4
        assert max(scores, key=scores.get) == answer["label"]
    return type(model).__name__


def test_a_fully_fine_tuned_decoder_is_a_standard_classifier(tiny_llama, labelled_csv):
    result = _run(tiny_llama, labelled_csv, **{"train.peft": "none"})
    folder = hub.artifact_for(result.artifact).model_dir
    assert json.loads((folder / "config.json").read_text())["architectures"] == [
        "LlamaForSequenceClassification"]
    assert _same_as_predict(folder) == "LlamaForSequenceClassification"


def test_a_bert_pooler_classifier_is_a_standard_classifier(tiny_model, labelled_csv):
    result = _run(tiny_model, labelled_csv, **{"head.pooling": "pooler"})
    folder = hub.artifact_for(result.artifact).model_dir
    assert _same_as_predict(folder) == "BertForSequenceClassification"
    assert json.loads((folder / "head.json").read_text())["pooling"] == "pooler"
    again = tunehub.evaluate("financial-sentiment", model=result.artifact)
    assert again.metrics["accuracy"] == pytest.approx(result.metrics["accuracy"], abs=1e-6)


def test_a_mean_pooled_encoder_exports_as_sentence_transformers(tiny_model, labelled_csv, tmp_path):
    import numpy as np
    from sentence_transformers import SentenceTransformer

    _run(tiny_model, labelled_csv)
    served = tunehub.predict("financial-sentiment", TEXTS)
    shown = CliRunner().invoke(main, ["models", "export", "financial-sentiment@latest",
                                      str(tmp_path / "st"), "--json"])
    assert shown.exit_code == 0, shown.output
    logits = SentenceTransformer(str(tmp_path / "st"), device="cpu").encode(TEXTS)
    probs = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    labels = json.loads((tmp_path / "st" / "labels.json").read_text())
    for row, answer in zip(probs, served):
        assert max(abs(p - answer["probabilities"][k]) for k, p in zip(labels, row)) < 1e-4


def test_pooler_pooling_needs_a_model_with_a_pooler(tiny_llama, labelled_csv):
    shown = CliRunner().invoke(main, ["run-task", "financial-sentiment", "--data", str(labelled_csv),
                                      "--base-model", str(tiny_llama), "--set", "head.pooling=pooler",
                                      *[a for kv in tiny_overrides() for a in ("--set", kv)]])
    assert shown.exit_code == 2 and "llama has none" in shown.output, shown.output
