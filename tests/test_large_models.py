"""Decoder LLMs and LoRA on the engine: tiny random Llama and Gemma 3 configs, no download."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from click.testing import CliRunner

import tunehub
from tunehub.core.artifacts import hub
from tunehub.core.models import lora
from tunehub.core.cli import main
from tunehub.core.errors import ModelError

from conftest import PROBABILITY_TOLERANCE, tiny_overrides

TEXTS = ["Profit rose sharply in the quarter.", "The firm cut 500 jobs.",
         "The annual meeting is on 4 May, the company said in a statement on Tuesday."]


def lora_run(model, labelled_csv, **extra):
    return tunehub.run_task("financial-sentiment", data=str(labelled_csv), model=str(model),
                            overrides=tiny_overrides(**{"train.peft": "lora",
                                                        "train.epochs": "2", **extra}))


@pytest.mark.parametrize("decoder", ["tiny_llama", "tiny_gemma"])
def test_lora_artifact_is_adapter_and_head_naming_its_base(decoder, request, labelled_csv):
    base = request.getfixturevalue(decoder)
    result = lora_run(base, labelled_csv)
    model_dir = hub.artifact_for(result.artifact).model_dir
    files = {p.name for p in model_dir.iterdir()}
    assert {"adapter_config.json", "adapter_model.safetensors", "head.safetensors"} <= files
    assert "model.safetensors" not in files  # no copy of the base model
    meta = json.loads((model_dir / "head.json").read_text())
    assert meta["pooling"] == "last"  # decoders pool the last real token
    assert meta["base_model"]["sha256"] == lora.weights_sha256(base)
    assert "LoRA" in result.notes["fine-tuning"]
    assert 0.0 <= result.metrics["accuracy"] <= 1.0


def test_lora_round_trip_predictions_match_the_unmerged_adapter(tiny_llama, labelled_csv, precision):
    """Train, save, reload (adapter merged): the same probabilities as the PEFT model."""
    import torch
    from peft import PeftModel
    from safetensors.torch import load_file
    from transformers import AutoModel

    from tunehub.plugins.classification.head import load_tokenizer

    result = lora_run(tiny_llama, labelled_csv)
    served = tunehub.predict("financial-sentiment", TEXTS)
    model_dir = hub.artifact_for(result.artifact).model_dir
    backbone = PeftModel.from_pretrained(AutoModel.from_pretrained(tiny_llama), str(model_dir)).eval()
    head = load_file(str(model_dir / "head.safetensors"))
    tokenizer = load_tokenizer(model_dir)
    with torch.no_grad():
        for text, answer in zip(TEXTS, served):
            ids = tokenizer([text], return_tensors="pt")
            hidden = backbone(**ids).last_hidden_state[0, -1]  # (H,) the last token, no padding
            probs = torch.softmax(hidden @ head["weight"].T, -1).numpy()
            got = np.array(list(answer["probabilities"].values()))
            assert np.abs(got - probs).max() < PROBABILITY_TOLERANCE[precision]


def test_last_token_pooling_is_the_same_alone_and_padded_in_a_batch(tiny_llama, labelled_csv,
                                                                    precision):
    lora_run(tiny_llama, labelled_csv)
    batch = tunehub.predict("financial-sentiment", TEXTS)  # the short texts get padded
    for text, in_batch in zip(TEXTS, batch):
        alone = tunehub.predict("financial-sentiment", [text])[0]
        diff = max(abs(alone["probabilities"][k] - in_batch["probabilities"][k]) for k in alone["probabilities"])
        assert diff < PROBABILITY_TOLERANCE[precision]


def test_merged_export_loads_in_plain_transformers_with_the_same_outputs(tiny_llama, labelled_csv,
                                                                        tmp_path, monkeypatch):
    from transformers import AutoModelForSequenceClassification, pipeline

    monkeypatch.setenv("TUNEHUB_PRECISION", "fp32")  # as plain transformers runs it

    result = lora_run(tiny_llama, labelled_csv)
    served = tunehub.predict("financial-sentiment", TEXTS)
    adapter = CliRunner().invoke(main, ["models", "export", "financial-sentiment@latest",
                                        str(tmp_path / "adapter"), "--json"])
    assert adapter.exit_code == 0, adapter.output
    assert (tmp_path / "adapter" / "adapter_config.json").is_file()
    merged = CliRunner().invoke(main, ["models", "export", "financial-sentiment@latest",
                                       str(tmp_path / "merged"), "--merged", "--json"])
    assert merged.exit_code == 0, merged.output
    folder = tmp_path / "merged"
    assert not (folder / "adapter_config.json").exists() and (folder / "model.safetensors").is_file()
    model = AutoModelForSequenceClassification.from_pretrained(folder)
    assert type(model).__name__ == "LlamaForSequenceClassification"
    assert model.config.id2label == {0: "negative", 1: "neutral", 2: "positive"}
    classify = pipeline("text-classification", model=str(folder), top_k=None)
    for text, answer in zip(TEXTS, served):
        scores = {item["label"]: item["score"] for item in classify([text])[0]}
        assert max(abs(scores[k] - v) for k, v in answer["probabilities"].items()) < 1e-4
    assert hub.folder_size(tmp_path / "adapter") < hub.folder_size(folder)
    assert result.artifact


def test_full_fine_tuning_of_a_decoder_is_a_setting(tiny_llama, labelled_csv):
    result = tunehub.run_task("financial-sentiment", data=str(labelled_csv), model=str(tiny_llama),
                              overrides=tiny_overrides(**{"train.peft": "none"}))
    model_dir = hub.artifact_for(result.artifact).model_dir
    assert (model_dir / "model.safetensors").is_file()
    assert not (model_dir / "adapter_config.json").exists()
    assert "full fine-tuning" in result.notes["fine-tuning"]


def test_auto_picks_lora_for_decoders_and_full_for_encoders(tiny_llama, tiny_model):
    from transformers import AutoConfig

    assert lora.resolve_peft("auto", AutoConfig.from_pretrained(tiny_llama)) == "lora"
    assert lora.resolve_peft("auto", AutoConfig.from_pretrained(tiny_model)) == "none"
    assert lora.resolve_peft("lora", AutoConfig.from_pretrained(tiny_model)) == "lora"


def test_lora_on_an_encoder_and_gradient_checkpointing(tiny_model, labelled_csv):
    result = lora_run(tiny_model, labelled_csv, **{"train.gradient_checkpointing": "true",
                                                   "train.lora.target_modules": "query,value"})
    model_dir = hub.artifact_for(result.artifact).model_dir
    adapter = json.loads((model_dir / "adapter_config.json").read_text())
    assert sorted(adapter["target_modules"]) == ["query", "value"]
    assert len(tunehub.predict("financial-sentiment", TEXTS)) == 3


def test_a_changed_base_model_is_refused_by_its_adapter(tiny_llama, labelled_csv, tmp_path):
    copy = tmp_path / "base"
    shutil.copytree(tiny_llama, copy)
    lora_run(copy, labelled_csv)
    weights = copy / "model.safetensors"
    from safetensors.torch import load_file, save_file

    state = load_file(str(weights))
    name = next(iter(state))
    state[name] = state[name] + 1
    save_file(state, str(weights), metadata={"format": "pt"})
    with pytest.raises(ModelError, match="not the one this adapter was trained on"):
        tunehub.predict("financial-sentiment", TEXTS)
    shutil.rmtree(copy)
    with pytest.raises(ModelError, match="is not at"):
        tunehub.predict("financial-sentiment", TEXTS)


@pytest.mark.parametrize("setting", ["train.peft=qlora", "train.lora.r=0", "train.lora.dropout=1",
                                     "train.lora.learning_rate=-1"])
def test_bad_lora_settings_are_one_line_before_any_model_loads(setting, labelled_csv):
    result = CliRunner().invoke(main, ["run-task", "financial-sentiment", "--data", str(labelled_csv),
                                       "--base-model", "/nonexistent", "--set", setting])
    assert result.exit_code == 2
    assert setting.split("=")[0] in result.stderr and "Traceback" not in result.stderr


def test_unknown_target_modules_are_one_clear_error(tiny_llama, labelled_csv):
    result = CliRunner().invoke(main, ["run-task", "financial-sentiment", "--data", str(labelled_csv),
                                       "--base-model", str(tiny_llama), "--set", "train.peft=lora",
                                       "--set", "train.lora.target_modules=nope_proj",
                                       *sum((["--set", o] for o in tiny_overrides()), [])])
    assert result.exit_code == 2, result.output
    assert "train.lora.target_modules" in result.stderr and "Traceback" not in result.stderr


def test_entity_extraction_trains_lora_on_a_llama_decoder(tiny_llama):
    result = tunehub.run_task("entity-extraction", model=str(tiny_llama),
                              overrides=tiny_overrides(**{"train.peft": "lora",
                                                          "train.max_length": "32",
                                                          "train.max_steps": "3"}))
    model_dir = hub.artifact_for(result.artifact).model_dir
    assert (model_dir / "adapter_config.json").is_file() and not (model_dir / "model.safetensors").exists()
    text = "Anna Berg joined Nordea in Helsinki."
    [answer] = tunehub.predict("entity-extraction", [text])
    for entity in answer["entities"]:
        assert text[entity["start"]:entity["end"]] == entity["text"]


def test_entity_extraction_refuses_a_decoder_without_a_token_classification_class(tiny_llama,
                                                                                   tmp_path):
    """Cohere has a causal-LM class and no token-classification class in transformers."""
    import shutil

    from transformers import CohereConfig, CohereForCausalLM

    for name in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copy(tiny_llama / name, tmp_path / name)
    CohereForCausalLM(CohereConfig(vocab_size=300, hidden_size=32, intermediate_size=64,
                                   num_hidden_layers=1, num_attention_heads=2,
                                   num_key_value_heads=2)).save_pretrained(tmp_path)
    result = CliRunner().invoke(main, ["run-task", "entity-extraction", "--base-model",
                                       str(tmp_path), *sum((["--set", o] for o in tiny_overrides()), [])])
    assert result.exit_code == 2
    assert "'cohere'" in result.stderr and "Traceback" not in result.stderr


def test_customer_service_bi_encoder_trains_lora_and_reloads(tiny_model):
    result = tunehub.run_task("customer-service-qa", model=str(tiny_model),
                              overrides=tiny_overrides(**{"train.peft": "lora", "train.max_steps": "3",
                                                          "head.rerank": "false"}))
    model_dir = hub.artifact_for(result.artifact).model_dir
    assert (model_dir / "adapter_config.json").is_file() and not (model_dir / "model.safetensors").exists()
    assert json.loads((model_dir / "tunehub-base.json").read_text())["sha256"] == lora.weights_sha256(tiny_model)
    first = tunehub.predict("customer-service-qa", ["How do I reset my password?"])
    again = tunehub.predict("customer-service-qa", ["How do I reset my password?"])
    assert first == again and first[0]


def test_customer_service_refuses_a_decoder_in_one_line(tiny_llama):
    result = CliRunner().invoke(main, ["run-task", "customer-service-qa", "--base-model",
                                       str(tiny_llama), *sum((["--set", o] for o in tiny_overrides()), [])])
    assert result.exit_code == 2
    assert "decoder LLM" in result.stderr and "Traceback" not in result.stderr


def test_lora_runs_use_the_lora_learning_rate_and_epoch_cap():
    from tunehub.plugin import TrainSettings

    settings = TrainSettings(max_epochs=6, min_epochs=3, learning_rate=8e-5,
                             lora={"max_epochs": 2, "learning_rate": 1e-3})
    lora_run_settings = lora.train_settings(settings)
    assert (lora_run_settings.max_epochs, lora_run_settings.min_epochs) == (2, 2)
    assert lora_run_settings.learning_rate == 1e-3
    defaults = lora.train_settings(TrainSettings())
    assert defaults.max_epochs == lora.LORA_DEFAULTS["max_epochs"]
    assert defaults.learning_rate == lora.LORA_DEFAULTS["learning_rate"]
