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


def test_monitoring_chinese_posts_alerts_on_a_chinese_entity_with_its_examples(tmp_path, monkeypatch):
    """A planted surge of negative posts about one Chinese company: one alert naming it, its
    Chinese examples intact in the UTF-8 alert file and in the report."""
    import random
    from datetime import datetime, timedelta, timezone

    from tunehub.core.operations.monitor_run import run_monitor

    negative, other = "澜星银行股价大跌，商誉减值。", "公司发布季度营收公告。"

    class Keyword:  # stands in for a loaded Chinese classifier: 大跌 is negative
        class artifact:
            ref = "financial-sentiment-zh@v1"

        class predictor:
            labels = ["negative", "neutral", "positive"]

        def predict(self, texts):
            return [{"label": "negative" if "大跌" in t else "neutral",
                     "probabilities": {"negative": 0.9 if "大跌" in t else 0.05,
                                       "neutral": 0.1 if "大跌" in t else 0.9, "positive": 0.0}}
                    for t in texts]

    monkeypatch.setattr(runner, "load", lambda task, **kwargs: Keyword())
    rng, rows = random.Random(3), []
    start = datetime(2024, 3, 1, tzinfo=timezone.utc)
    for day in range(10):
        for entity in ("澜星银行", "华泰科技", "东方能源"):
            share = 0.7 if (entity, day) == ("华泰科技", 7) else 0.1
            for i in range(30):
                moment = start + timedelta(days=day, minutes=rng.randrange(24 * 60))
                rows.append({"time": moment.isoformat(), "entity": entity,
                             "text": f"{negative if rng.random() < share else other}#{i}"})
    rows.sort(key=lambda r: r["time"])
    data = tmp_path / "posts.jsonl"
    data.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    alerts = tmp_path / "alerts.jsonl"
    result = run_monitor("financial-sentiment-zh", str(data), sinks=[f"file:{alerts}"],
                         report_dir=tmp_path / "report")
    found = [json.loads(line) for line in alerts.read_text(encoding="utf-8").splitlines()]
    assert result.counts.alerts == 1 and [a["entity"] for a in found] == ["华泰科技"]
    assert all("大跌" in text for text in found[0]["examples"])
    report = (tmp_path / "report" / "report.md").read_text(encoding="utf-8")
    assert "华泰科技" in report
