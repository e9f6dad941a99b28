"""Chinese entities and FAQ answers on a multilingual decoder: Gemma 3 reads both ways
(``head.attention``), tags every CJK character with exact offsets, embeds questions for the
bi-encoder, and the ``bm25`` baseline indexes unsegmented Chinese."""
from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

import tunehub
from tunehub.core.cli import main
from tunehub.core.artifacts import hub
from tunehub.core.running import runner
from tunehub.plugin import ConfigError, lora

from conftest import tiny_overrides

SENTENCE = "澜星银行在上海开设分行，张伟出席。"


def _config(path):
    from transformers import AutoConfig

    return AutoConfig.from_pretrained(path)


def test_attention_settings_follow_what_the_model_can_do(tiny_gemma, tiny_llama, tiny_model):
    gemma, llama, bert = _config(tiny_gemma), _config(tiny_llama), _config(tiny_model)
    assert lora.can_attend_both_ways(gemma) and not lora.can_attend_both_ways(llama)
    assert lora.attention_kwargs(gemma) == {"use_bidirectional_attention": True}
    assert lora.attention_kwargs(gemma, "causal") == {}
    assert lora.attention_kwargs(llama) == {} and lora.attention_kwargs(bert, "bidirectional") == {}
    with pytest.raises(ConfigError, match="head.attention = bidirectional.*llama"):
        lora.bidirectional(llama, "bidirectional")
    with pytest.raises(ConfigError, match="head.attention must be one of"):
        lora.bidirectional(gemma, "sideways")


def test_a_bidirectional_gemma_tagger_reads_the_characters_after_each_one(tiny_gemma):
    """The first character's logits change with the last character only when the causal
    mask is off."""
    import torch

    from tunehub.plugins.entity_extraction.head import _load_model

    ids = torch.tensor([[5, 6, 7, 8, 9]])
    changed = ids.clone()
    changed[0, -1] = 10
    for attention, moves in (("bidirectional", True), ("causal", False)):
        model = _load_model(tiny_gemma, ["O", "B-PER", "I-PER"], attention).eval()
        with torch.no_grad():
            first = model(input_ids=ids).logits[0, 0]
            other = model(input_ids=changed).logits[0, 0]
        assert (not torch.allclose(first, other, atol=1e-6)) is moves, attention


@pytest.fixture(scope="module")
def chinese_tagger(tiny_gemma, tmp_path_factory):
    home = tmp_path_factory.mktemp("zh-ner-home")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TUNEHUB_HOME", str(home))
        result = tunehub.run_task("entity-extraction-zh", model=str(tiny_gemma),
                                  overrides=tiny_overrides(**{"train.max_steps": "3",
                                                              "train.peft": "lora"}))
        yield result, home


def test_the_chinese_entity_task_defaults_to_gemma_reading_both_ways(chinese_tagger, monkeypatch):
    catalog = runner.load_catalog()
    config = runner.resolve_config(catalog, catalog.task("entity-extraction-zh"))
    assert config["model"] == "gemma3-270m" and config["head"]["attention"] == "auto"
    # the schedule chosen on validation slices (docs/tasks/entity-extraction.md)
    assert config["train"]["batch_size"] == 16 and config["train"]["lora"]["learning_rate"] == 1e-3
    result, home = chinese_tagger
    monkeypatch.setenv("TUNEHUB_HOME", str(home))
    assert result.notes["attention direction"].startswith("bidirectional")
    assert set(result.baselines) == {"gazetteer", "all-o"}
    model_dir = hub.artifact_for(result.artifact).model_dir
    assert json.loads((model_dir / "entities.json").read_text())["attention"] == "bidirectional"
    assert lora.is_adapter(model_dir)  # the base is loaded reading both ways again
    again = tunehub.evaluate("entity-extraction-zh", model=result.artifact)
    assert again.metrics["f1"] == pytest.approx(result.metrics["f1"], abs=1e-6)


def test_chinese_entities_come_back_with_exact_character_offsets(chinese_tagger, monkeypatch):
    _, home = chinese_tagger
    monkeypatch.setenv("TUNEHUB_HOME", str(home))
    texts = [SENTENCE, "Apple 与 澜星银行 合作"]
    found = [(text, entity) for text, out in zip(texts, tunehub.predict("entity-extraction-zh", texts))
             for entity in out["entities"]]
    assert found  # a barely trained tagger still tags some characters
    for text, entity in found:
        assert text[entity["start"]:entity["end"]] == entity["text"] == entity["text"].strip()


def test_a_saved_gemma_tagger_is_a_plain_token_classification_folder(tiny_gemma, tmp_path):
    """Exported merged, the folder loads with AutoModelForTokenClassification (after the
    plugin's register) and keeps reading both ways."""
    from transformers import AutoModelForTokenClassification

    from tunehub.plugins.entity_extraction import decoders
    from tunehub.plugins.entity_extraction.head import _load_model

    model = _load_model(tiny_gemma, ["O", "B-PER", "I-PER"], "bidirectional")
    model.save_pretrained(tmp_path)
    decoders.register()
    loaded = AutoModelForTokenClassification.from_pretrained(tmp_path)
    assert type(loaded).__name__ == "Gemma3TextForTokenClassification"
    assert loaded.config.use_bidirectional_attention and loaded.config.id2label[1] == "B-PER"


def test_bm25_indexes_unsegmented_chinese_by_characters_and_pairs():
    from tunehub.plugins.customer_service.retrieval import tokens

    assert tokens("挂失 ATM card's PIN") == ["挂", "失", "挂失", "atm", "card's", "pin"]
    assert tokens("银行卡丢了") == ["银", "行", "卡", "丢", "了", "银行", "行卡", "卡丢", "丢了"]


def test_the_chinese_faq_task_trains_a_gemma_bi_encoder(tiny_gemma, tmp_path, monkeypatch):
    monkeypatch.setenv("TUNEHUB_HOME", str(tmp_path))
    catalog = runner.load_catalog()
    assert runner.resolve_config(catalog, catalog.task("customer-service-qa-zh"))["model"] \
        == "gemma3-270m"
    result = tunehub.run_task("customer-service-qa-zh", model=str(tiny_gemma),
                              overrides=tiny_overrides(**{"train.max_steps": "3"}))
    assert set(result.baselines) == {"untuned", "bm25"}
    # character BM25 finds most FAQ entries of paraphrased Chinese questions
    assert result.baselines["bm25"]["recall@5"] > 0.5
    model_dir = hub.artifact_for(result.artifact).model_dir
    assert lora.is_adapter(model_dir)
    top = tunehub.predict("customer-service-qa-zh", ["银行卡丢了怎么挂失"])[0]
    assert top["answers"] or top.get("handoff")


def test_a_one_way_decoder_is_still_refused_as_a_bi_encoder(tiny_llama):
    result = CliRunner().invoke(main, ["run-task", "customer-service-qa-zh", "--base-model",
                                       str(tiny_llama), *sum((["--set", o] for o in tiny_overrides()), [])])
    assert result.exit_code == 2
    assert "only attends one way" in result.stderr and "Traceback" not in result.stderr


def test_the_gazetteer_finds_long_chinese_names_character_by_character():
    from tunehub.plugins.entity_extraction import build_gazetteer, gazetteer_tags

    name = list("中国共产党中央委员会")  # ten characters, one organisation
    gazetteer = build_gazetteer([name + list("开会")], [["B-ORG"] + ["I-ORG"] * 9 + ["O", "O"]])
    assert gazetteer_tags(list("今天") + name, gazetteer) == ["O", "O", "B-ORG"] + ["I-ORG"] * 9


def test_a_gemma_classifier_reads_one_way_unless_told_both_ways(tiny_gemma, tiny_llama):
    from tunehub.plugins.classification.head import TextClassifier

    causal = TextClassifier.from_encoder(tiny_gemma, ["a", "b"])
    assert (causal.attention, causal.pooling) == ("causal", "last")
    both = TextClassifier.from_encoder(tiny_gemma, ["a", "b"], attention="bidirectional")
    assert (both.attention, both.pooling) == ("bidirectional", "mean")
    assert TextClassifier.from_encoder(tiny_gemma, ["a", "b"], attention="auto").attention == "bidirectional"
    llama = TextClassifier.from_encoder(tiny_llama, ["a", "b"], attention="auto")
    assert (llama.attention, llama.pooling) == ("causal", "last")


def test_the_chinese_sentiment_default_reads_one_way(tiny_gemma, tmp_path, monkeypatch):
    monkeypatch.setenv("TUNEHUB_HOME", str(tmp_path))
    result = tunehub.run_task("financial-sentiment-zh", model=str(tiny_gemma),
                              overrides=tiny_overrides(**{"train.max_steps": "2"}))
    meta = json.loads((hub.artifact_for(result.artifact).model_dir / "head.json").read_text())
    assert (meta["attention"], meta["pooling"]) == ("causal", "last")


def test_a_sentiment_version_trained_both_ways_reloads_both_ways(tiny_gemma, tmp_path, monkeypatch):
    monkeypatch.setenv("TUNEHUB_HOME", str(tmp_path))
    result = tunehub.run_task("financial-sentiment-zh", model=str(tiny_gemma), overrides=tiny_overrides(
        **{"train.max_steps": "2", "head.attention": "bidirectional"}))
    model_dir = hub.artifact_for(result.artifact).model_dir
    meta = json.loads((model_dir / "head.json").read_text())
    assert (meta["attention"], meta["pooling"]) == ("bidirectional", "mean")
    again = tunehub.evaluate("financial-sentiment-zh", model=result.artifact)
    assert again.metrics["accuracy"] == pytest.approx(result.metrics["accuracy"], abs=1e-6)
