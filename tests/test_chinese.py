"""Chinese end to end on the bundled samples: the Chinese tasks run with no flags on a
multilingual default, a character n-gram baseline that needs no word segmentation, the
Chinese FAQ and entity samples load, and a tiny Gemma trained on Chinese serves UTF-8
JSON."""
from __future__ import annotations

import json

import httpx
import pytest

import tunehub
from tunehub.core.running import runner
from tunehub.core.serving.serve import BackgroundServer, ServeSettings

from conftest import tiny_overrides


def test_the_chinese_sentiment_task_needs_no_flags_and_defaults_to_a_multilingual_model():
    config = runner.resolve_config(runner.load_catalog(),
                                   runner.load_catalog().task("financial-sentiment-zh"))
    assert config["model"] == "gemma3-270m"
    data = tunehub.validate_data("financial-sentiment-zh")
    assert len(data.train.texts) == 288 and len(data.eval.texts) == 72
    assert all(any("\u4e00" <= ch <= "\u9fff" for ch in t) for t in data.eval.texts)


def test_the_character_ngram_baseline_reads_chinese_without_segmentation():
    from tunehub.core.running.metrics import accuracy
    from tunehub.plugins.classification import char_tfidf_lr, majority_class

    data = tunehub.validate_data("financial-sentiment-zh")
    config = {}
    ngrams = accuracy(char_tfidf_lr(data, config))
    assert ngrams > accuracy(majority_class(data, config)) + 0.2  # 1/3 for a balanced sample


def test_the_chinese_faq_and_entity_samples_load():
    qa = tunehub.validate_data("customer-service-qa", overrides=[
        "dataset.name=customer-service-zh-sample"])
    faq = qa.info["faq"]
    assert len(faq) == 30 and faq.answers[0].startswith("请")
    assert len(qa.train.train) + len(qa.train.calibration) + len(qa.eval) == 270
    ner = tunehub.validate_data("entity-extraction", overrides=[
        "dataset.name=entity-extraction-zh-sample"])
    assert ner.summary["train sentences"] + ner.summary["eval sentences"] == 600
    assert set(ner.info["labels"]) >= {"PER", "ORG", "LOC", "PRODUCT"} or ner.summary["eval entities"]


@pytest.fixture(scope="module")
def chinese_model(tiny_gemma, tmp_path_factory):
    home = tmp_path_factory.mktemp("zh-home")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TUNEHUB_HOME", str(home))
        result = tunehub.run_task("financial-sentiment-zh", model=str(tiny_gemma),
                                  overrides=tiny_overrides(**{"train.max_steps": "4"}))
        yield result, home


def test_a_chinese_run_reports_beside_the_character_baseline_and_serves_utf8(chinese_model,
                                                                            monkeypatch):
    result, home = chinese_model
    assert set(result.baselines) == {"majority-class", "char-tfidf-lr"}
    monkeypatch.setenv("TUNEHUB_HOME", str(home))
    loaded = runner.load("financial-sentiment-zh")
    with BackgroundServer([loaded], ServeSettings(port=0)) as server:
        answer = httpx.post(f"{server.url}/v1/predict", timeout=60,
                            json={"inputs": ["公司净利润大幅下降。"], "task": "financial-sentiment-zh"})
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "application/json"  # UTF-8 by RFC 8259
    label = json.loads(answer.content.decode("utf-8"))["outputs"][0]["label"]
    assert label in {"negative", "neutral", "positive"}
