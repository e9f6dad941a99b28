"""Hub operations: versions, @latest, rm (safe, confirmed), export that loads without tunehub."""
from __future__ import annotations

import json
import threading

import pytest
from click.testing import CliRunner

from tunehub.core.artifacts import hub
from tunehub.core.running import runner
from tunehub.core.cli import main
from tunehub.core.errors import ModelError

from _trained import shared_artifact
from conftest import PROBABILITY_TOLERANCE


def fake_artifact(task: str = "demo", value: float = 0.5) -> hub.Artifact:
    """A published artifact without a model (enough for hub operations)."""
    with hub.staging(task) as folder:
        hub.write_json(folder / "manifest.json", {"task": task, "base_model": "minilm",
                                                  "primary_metric": "accuracy",
                                                  "primary_value": value, "created": "now"})
        hub.write_json(folder / "metrics.json", {"metrics": {"accuracy": value}, "baselines": {}})
        (folder / "model").mkdir()
        (folder / "model" / "weights.bin").write_bytes(b"0" * 1000)
        return hub.publish(folder, task)


def test_concurrent_publishes_get_distinct_versions():
    results: list[str] = []
    threads = [threading.Thread(target=lambda: results.append(fake_artifact().version))
               for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results, key=lambda v: int(v[1:])) == [f"v{i}" for i in range(1, 9)]


def test_latest_is_the_newest_complete_version(tunehub_home):
    for _ in range(2):
        fake_artifact()
    (tunehub_home / "artifacts" / "demo" / "v10").mkdir()  # incomplete: no manifest
    (tunehub_home / "artifacts" / "demo" / ".staging-x").mkdir()
    assert hub.find_artifact("demo@latest").version == "v2"
    assert [a.version for a in hub.list_artifacts("demo")] == ["v1", "v2"]


def test_rm_needs_yes_and_leaves_other_versions(tunehub_home):
    for _ in range(3):
        fake_artifact()
    refused = CliRunner().invoke(main, ["models", "rm", "demo@v2"])
    assert refused.exit_code != 0 and "--yes" in refused.output
    assert [a.version for a in hub.list_artifacts("demo")] == ["v1", "v2", "v3"]
    done = CliRunner().invoke(main, ["models", "rm", "demo@v2", "--yes"])
    assert done.exit_code == 0, done.output
    assert [a.version for a in hub.list_artifacts("demo")] == ["v1", "v3"]
    assert (tunehub_home / "artifacts" / "demo" / "v1" / "model" / "weights.bin").is_file()
    assert not list((tunehub_home / "artifacts" / "demo").glob(".trash-*"))
    CliRunner().invoke(main, ["models", "rm", "demo@v3", "-y"])
    assert hub.find_artifact("demo@latest").version == "v1"
    missing = CliRunner().invoke(main, ["models", "rm", "demo@v7", "--yes"])
    assert missing.exit_code == 2 and "v1" in missing.output


def test_rm_hides_the_version_before_deleting(tunehub_home, monkeypatch):
    fake_artifact()
    second = fake_artifact()
    monkeypatch.setattr(hub.shutil, "rmtree", lambda *a, **k: None)  # deletion "crashes"
    hub.remove_artifact(second)
    assert hub.find_artifact("demo@latest").version == "v1"  # never a half-deleted latest
    assert len(list((tunehub_home / "artifacts" / "demo").glob(".trash-v2-*"))) == 1


def test_models_listing_and_show(tunehub_home):
    fake_artifact(value=0.75)
    data = json.loads(CliRunner().invoke(main, ["models", "--json"]).stdout)
    row = data["fine_tuned"][0]
    assert row["ref"] == "demo@v1" and row["value"] == 0.75 and row["size_bytes"] >= 1000
    assert {m["alias"] for m in data["base_models"]} >= {"minilm"}
    shown = json.loads(CliRunner().invoke(main, ["models", "show", "demo@1", "--json"]).stdout)
    assert shown["version"] == "v1" and shown["metrics"] == {"accuracy": 0.75}
    assert CliRunner().invoke(main, ["models"]).exit_code == 0


def test_export_loads_in_plain_libraries(tiny_model, tmp_path_factory, tmp_path, precision):
    import numpy as np
    import torch
    from safetensors.torch import load_file
    from sentence_transformers import SentenceTransformer
    from transformers import AutoModel, AutoTokenizer

    artifact = shared_artifact(tiny_model, tmp_path_factory)
    texts = ["Profit rose sharply.", "The plant will close next year.", "Hi"]
    ours = runner.predict("financial-sentiment", texts, model=artifact)
    dest = tmp_path / "exported"
    done = CliRunner().invoke(main, ["models", "export", artifact, str(dest)])
    assert done.exit_code == 0, done.output
    labels = json.loads((dest / "labels.json").read_text())
    assert (dest / "tunehub" / "manifest.json").is_file()
    assert not list(dest.rglob("*.bin")) and not list(dest.rglob("*.pt"))

    model = SentenceTransformer(str(dest), device="cpu")  # sentence-transformers
    probs = torch.softmax(model.encode(texts, convert_to_tensor=True), -1).numpy()
    expected = np.array([[o["probabilities"][name] for name in labels] for o in ours])
    tolerance = PROBABILITY_TOLERANCE[precision]  # the export runs fp32, `predict` as forced
    assert np.abs(probs - expected).max() < tolerance
    if precision == "fp32":
        assert [labels[i] for i in probs.argmax(-1)] == [o["label"] for o in ours]

    encoder = AutoModel.from_pretrained(dest).eval()  # plain transformers + safetensors
    dense = load_file(str(dest / "2_Dense" / "model.safetensors"))
    batch = AutoTokenizer.from_pretrained(dest)(texts, padding=True, return_tensors="pt")
    with torch.inference_mode():
        hidden = encoder(**batch).last_hidden_state  # (B, T, H)
        mask = batch["attention_mask"].unsqueeze(-1).float()
        pooled = (hidden * mask).sum(1) / mask.sum(1)
        logits = pooled @ dense["linear.weight"].T + dense["linear.bias"]
    assert np.abs(torch.softmax(logits, -1).numpy() - expected).max() < tolerance

    again = CliRunner().invoke(main, ["models", "export", artifact, str(dest)])
    assert again.exit_code == 2 and "already exists" in again.output


def test_export_onnx_runs_in_onnxruntime(tiny_model, tmp_path_factory, tmp_path, precision):
    import numpy as np
    import onnxruntime
    from scipy.special import softmax
    from transformers import AutoTokenizer

    artifact = shared_artifact(tiny_model, tmp_path_factory)
    texts = ["Profit rose sharply.", "The plant will close next year and 200 jobs go.", "Hi"]
    ours = runner.predict("financial-sentiment", texts, model=artifact)
    dest = tmp_path / "exported"
    done = CliRunner().invoke(main, ["models", "export", artifact, str(dest), "--onnx", "--json"])
    assert done.exit_code == 0, done.output
    info = json.loads(done.stdout)
    assert info["onnx"] == "model.onnx" and info["onnx_output"] == "logits"
    assert info["onnx_max_abs_difference"] < 1e-4  # checked at fp32, whatever the machine picks
    assert json.loads((dest / "tunehub" / "export.json").read_text())["onnx"] == "model.onnx"

    session = onnxruntime.InferenceSession(str(dest / "model.onnx"))
    batch = AutoTokenizer.from_pretrained(dest)(texts, padding=True, return_tensors="np")
    (logits,) = session.run(None, {i.name: batch[i.name] for i in session.get_inputs()})
    labels = json.loads((dest / "labels.json").read_text())
    expected = np.array([[o["probabilities"][name] for name in labels] for o in ours])
    assert np.abs(softmax(logits, -1) - expected).max() < PROBABILITY_TOLERANCE[precision]


def test_export_onnx_without_the_packages_says_what_to_install(tiny_model, tmp_path_factory,
                                                               tmp_path, monkeypatch):
    import sys

    artifact = shared_artifact(tiny_model, tmp_path_factory)
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # as if not installed
    dest = tmp_path / "exported"
    done = CliRunner().invoke(main, ["models", "export", artifact, str(dest), "--onnx"])
    assert done.exit_code == 2 and "pip install onnx onnxscript onnxruntime" in done.output
    assert not dest.exists() and not list(tmp_path.iterdir())  # nothing half-written


def test_find_artifact_errors_are_clear():
    with pytest.raises(ModelError, match="run-task"):
        hub.find_artifact("nothing@latest")
