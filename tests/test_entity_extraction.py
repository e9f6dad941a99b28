"""Entity extraction with a tiny model: windows, training, predict, evaluate, CLI and serve."""
from __future__ import annotations

import json
from pathlib import Path

import httpx
import numpy as np
import pytest
from click.testing import CliRunner

import tunehub
from tunehub.core.running import runner
from tunehub.core.cli import main
from tunehub.core.serving.serve import BackgroundServer, ServeSettings
from tunehub.plugins.entity_extraction.model import tag_labels, windows, word_probabilities

from conftest import tiny_overrides

TEXTS = ["Alice from Acme flew to Paris", "  Ticket:\tmy Nova Pro broke in  Oslo.\n", "ok"]


def tokenizer_of(tiny_model):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_model)


def test_long_sentences_are_windowed_never_truncated(tiny_model):
    tokenizer = tokenizer_of(tiny_model)
    sentence = [f"word{i}" for i in range(60)]  # several subwords each: far over 16
    parts = windows(tokenizer, [sentence, ["short"]], max_length=16, stride=4)
    assert len([w for w in parts if w.sentence == 0]) > 3
    covered = {word for w in parts if w.sentence == 0 for _, word in w.starts}
    assert covered == set(range(60))  # every word starts in some window
    assert all(len(w.features["input_ids"]) <= 16 for w in parts)
    for w in parts:  # a start is a word's first subword
        for position, word in w.starts:
            piece = tokenizer.convert_ids_to_tokens(w.features["input_ids"][position])
            assert not piece.startswith("##")


def test_each_word_takes_the_window_where_it_is_most_central(tiny_model):
    from transformers import AutoModelForTokenClassification

    tokenizer = tokenizer_of(tiny_model)
    labels = tag_labels(["PER"])
    model = AutoModelForTokenClassification.from_pretrained(tiny_model, num_labels=len(labels))
    sentence = [f"w{i}" for i in range(40)]
    windowed = word_probabilities(model, tokenizer, [sentence], max_length=16, stride=6)[0]
    assert windowed.shape == (40, 3)
    assert np.allclose(windowed.sum(-1), 1, atol=1e-5)
    assert not (windowed == np.eye(3)[0]).all(-1).any()  # no word left at its default
    parts = windows(tokenizer, [sentence], 16, 6)
    best = {}
    for k, w in enumerate(parts):
        for position, word in w.starts:
            if word not in best or w.margin(position) > best[word][1]:
                best[word] = (k, w.margin(position))
    import torch

    for word in (0, 17, 39):
        k, _ = best[word]
        ids = torch.tensor([parts[k].features["input_ids"]])
        with torch.inference_mode():
            alone = torch.softmax(model(input_ids=ids).logits, -1)[0].numpy()
        position = dict((w, p) for p, w in parts[k].starts)[word]
        assert np.allclose(windowed[word], alone[position], atol=1e-5)


@pytest.fixture(scope="module")
def artifact(tiny_model, tmp_path_factory):
    """One tiny entity-extraction run on the bundled sample, shared by this module."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TUNEHUB_HOME", str(tmp_path_factory.mktemp("entity-home")))
        return tunehub.run_task("entity-extraction", model=str(tiny_model),
                                overrides=tiny_overrides(**{"train.max_length": "24"}))


def check_entities(texts, outputs):
    assert len(outputs) == len(texts)
    for text, out in zip(texts, outputs):
        assert set(out) == {"entities"}
        for e in out["entities"]:
            assert set(e) == {"type", "text", "start", "end", "score"}
            assert text[e["start"]:e["end"]] == e["text"] and e["text"].strip() == e["text"]
            assert e["type"] in ("PER", "ORG", "LOC", "PRODUCT") and 0 <= e["score"] <= 1


def test_run_reports_entity_metrics_beside_baselines(artifact):
    assert set(artifact.metrics) == {"f1", "precision", "recall", "macro_f1", "token_accuracy"}
    assert set(artifact.baselines) == {"gazetteer", "all-o"}
    assert artifact.baselines["all-o"]["f1"] == 0.0
    assert 0.5 < artifact.baselines["all-o"]["token_accuracy"] < 1
    assert set(artifact.details["per_type"]) == {"PER", "ORG", "LOC", "PRODUCT"}
    report = (Path(artifact.artifact) / "report.md").read_text()
    assert "gazetteer" in report and "all-o" in report
    assert "| PRODUCT |" in report  # the per-type table


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_predict_returns_entities_with_offsets_into_the_input(artifact, precision):
    loaded = runner.load("entity-extraction", model=artifact.artifact,
                         overrides=[f"train.precision={precision}", "train.max_length=16"])
    long_text = " ".join(["Alice Moreau visited the Acme Labs office in Paris."] * 12)
    texts = [*TEXTS, long_text]
    outputs = loaded.predict(texts)
    check_entities(texts, outputs)
    again = loaded.predict([long_text])  # batch composition does not change the answer
    assert [e["start"] for e in again[0]["entities"]] == [e["start"] for e in outputs[-1]["entities"]]


def test_cli_predict_json_file_streaming_and_evaluate(artifact, tmp_path):
    cli = CliRunner()
    result = cli.invoke(main, ["predict", "entity-extraction", "--model", artifact.artifact,
                               "--json", *TEXTS])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert [d["input"] for d in data] == TEXTS
    check_entities(TEXTS, [{"entities": d["entities"]} for d in data])
    source = tmp_path / "in.jsonl"
    source.write_text("".join(json.dumps({"id": i, "text": t}) + "\n" for i, t in enumerate(TEXTS)))
    out = tmp_path / "out.jsonl"
    result = cli.invoke(main, ["predict", "entity-extraction", "--model", artifact.artifact,
                               "--input", str(source), "--output", str(out), "--batch-size", "2"])
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["id"] for r in rows] == [0, 1, 2]
    check_entities(TEXTS, [r["prediction"] for r in rows])
    conll = tmp_path / "new.conll"
    conll.write_text("Alice B-PER\nflew O\nto O\nParis B-LOC\n\nAcme B-ORG\nrose O\n")
    result = cli.invoke(main, ["evaluate", "entity-extraction", "--model", artifact.artifact,
                               "--data", str(conll), "--json"])
    assert result.exit_code == 0, result.output
    assert 0 <= json.loads(result.output)["metrics"]["f1"] <= 1
    result = cli.invoke(main, ["evaluate", "entity-extraction", "--model", artifact.artifact,
                               "--data", str(conll), "--quantize", "int8", "--json"])
    assert result.exit_code == 0, result.output
    assert 0 <= json.loads(result.output)["metrics"]["f1"] <= 1  # int8 ran (else exit 2)
    bad = tmp_path / "bad.conll"
    bad.write_text("Alice O\nMoreau I-PER\n")
    result = cli.invoke(main, ["evaluate", "entity-extraction", "--model", artifact.artifact,
                               "--data", str(bad)])
    assert result.exit_code == 2 and "line 2 ('Moreau'): 'I-PER' follows 'O'" in result.output


def test_serve_answers_entities(artifact):
    loaded = runner.load("entity-extraction", model=artifact.artifact)
    with BackgroundServer([loaded], ServeSettings(port=0)) as server:
        answer = httpx.post(f"{server.url}/v1/predict", json={"inputs": TEXTS}, timeout=60)
    assert answer.status_code == 200, answer.text
    served = [o["entities"] for o in answer.json()["outputs"]]  # less ids
    for entity in (e for entities in served for e in entities):  # Hugging Face's keys too
        assert entity.pop("entity_group") == entity["type"] and entity.pop("word") == entity["text"]
    outputs = [{"entities": entities} for entities in served]
    assert outputs == loaded.predict(TEXTS)
    check_entities(TEXTS, outputs)
