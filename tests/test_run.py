"""End to end with a tiny model: artifacts, JSON output, atomicity, resume, predict order."""
from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

import tunehub
from tunehub.core.artifacts import hub
from tunehub.core.cli import main
from tunehub.core.errors import ModelError

from conftest import PROBABILITY_TOLERANCE, tiny_overrides


def test_run_task_writes_a_complete_versioned_artifact(tiny_model, tunehub_home):
    result = tunehub.run_task("financial-sentiment", model=str(tiny_model),
                              overrides=tiny_overrides())
    folder = tunehub_home / "artifacts" / "financial-sentiment" / "v1"
    assert result.artifact == str(folder) and result.version == "v1"
    for name in ("model/model.safetensors", "model/config.json", "model/tokenizer.json",
                 "model/head.safetensors", "model/head.json", "config.toml", "metrics.json",
                 "manifest.json", "report.md", "confusion_matrix.png", "loss_curve.png"):
        assert (folder / name).is_file(), name
    assert not list(folder.rglob("*.bin")) and not list(folder.rglob("*.pt"))
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["task"] == "financial-sentiment"
    assert manifest["data_hash"].startswith("sha256:") and "torch" in manifest["versions"]
    assert set(result.metrics) == {"accuracy", "macro_f1"}
    assert set(result.baselines) == {"majority-class", "finance-lexicon"}
    assert 0.0 <= result.metrics["accuracy"] <= 1.0
    report = (folder / "report.md").read_text()
    assert "majority-class" in report and "![confusion matrix]" in report
    again = tunehub.run_task("financial-sentiment", model=str(tiny_model), overrides=tiny_overrides())
    assert again.version == "v2" and hub.find_artifact("financial-sentiment@latest").version == "v2"


def test_cli_json_prints_exactly_one_object(tiny_model, labelled_csv):
    args = ["run-task", "financial-sentiment", "--data", str(labelled_csv), "--model",
            str(tiny_model), "--json"]
    for item in tiny_overrides():
        args += ["--set", item]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    assert set(data) == {"task", "artifact", "version", "primary_metric", "metrics", "baselines",
                         "below_baseline", "details", "notes"}
    assert set(data["details"]) == {"classification_report", "confusion_matrix"}
    assert data["primary_metric"] == "accuracy"
    assert set(data["metrics"]) == {"accuracy", "macro_f1"}
    assert set(data["baselines"]["majority-class"]) == {"accuracy", "macro_f1"}

    evaluated = CliRunner().invoke(main, ["evaluate", "financial-sentiment", "--data",
                                          str(labelled_csv), "--json"])
    assert evaluated.exit_code == 0, evaluated.stderr
    assert json.loads(evaluated.stdout)["artifact"] == data["artifact"]


def test_failure_while_saving_leaves_no_artifact(tiny_model, tunehub_home, monkeypatch):
    import tunehub.core.running.report as report

    def boom(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(report, "write_report", boom)
    with pytest.raises(OSError, match="disk full"):
        tunehub.run_task("financial-sentiment", model=str(tiny_model), overrides=tiny_overrides())
    task_dir = tunehub_home / "artifacts" / "financial-sentiment"
    assert not task_dir.exists()  # no vN, no staging leftovers, no empty task folder
    assert hub.list_artifacts() == []


def test_resume_continues_from_last_checkpoint(tiny_model, tunehub_home):
    from transformers import TrainerCallback

    class Interrupt(TrainerCallback):
        first_epoch_steps = 0

        def on_epoch_end(self, args, state, control, **kwargs):
            Interrupt.first_epoch_steps = Interrupt.first_epoch_steps or state.global_step

        def on_step_end(self, args, state, control, **kwargs):
            if state.epoch and state.epoch > 1.5:
                raise KeyboardInterrupt

    overrides = tiny_overrides(**{"train.epochs": "3", "train.save_checkpoints": "true",
                                  "train.checkpoint_minutes": "0"})  # a checkpoint every epoch
    with pytest.raises(KeyboardInterrupt):
        tunehub.run_task("financial-sentiment", model=str(tiny_model), overrides=overrides,
                         callbacks=[Interrupt()])
    assert hub.list_artifacts() == []
    result = tunehub.run_task("financial-sentiment", model=str(tiny_model),
                              overrides=overrides, resume=True)
    assert Interrupt.first_epoch_steps > 0
    assert result.notes["resumed from"].endswith(f"checkpoint-{Interrupt.first_epoch_steps}")
    assert result.version == "v1"
    assert not (tunehub_home / "work").exists() or not any((tunehub_home / "work").iterdir())


def test_resume_without_checkpoint_is_a_clear_error(tiny_model):
    with pytest.raises(tunehub.TunehubError, match="no interrupted run"):
        tunehub.run_task("financial-sentiment", model=str(tiny_model),
                         overrides=tiny_overrides(), resume=True)


def test_predictions_come_back_in_input_order(tiny_model, labelled_csv, precision):
    tunehub.run_task("financial-sentiment", data=labelled_csv, model=str(tiny_model),
                     overrides=tiny_overrides())
    texts = ["Up.", "The board approved a much higher dividend after a record year.",
             "Down a lot.", "Revenue fell short of forecasts for the third quarter in a row."]
    together = tunehub.predict("financial-sentiment", texts)
    one_by_one = [tunehub.predict("financial-sentiment", [t])[0] for t in texts]
    for a, b in zip(together, one_by_one):
        assert a["probabilities"] == pytest.approx(b["probabilities"],
                                                   abs=PROBABILITY_TOLERANCE[precision])


def test_pickle_only_model_is_refused(tmp_path):
    folder = tmp_path / "pickled"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    (folder / "pytorch_model.bin").write_bytes(b"not loaded")
    with pytest.raises(ModelError, match="never loads pickle"):
        hub.resolve_model(str(folder), {})


def test_missing_hub_model_offline_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelError, match="not in the local Hugging Face cache"):
        hub.resolve_model("acme-corp/no-such-model", {})


def test_unknown_model_alias_suggests(labelled_csv):
    result = CliRunner().invoke(main, ["run-task", "financial-sentiment", "--data",
                                       str(labelled_csv), "--model", "minilmm"])
    assert result.exit_code == 2 and "Did you mean 'minilm'?" in result.stderr


def test_a_finished_run_writes_no_checkpoint_it_does_not_need(tiny_model, labelled_csv):
    """Resume checkpoints come at most every train.checkpoint_minutes, never at the last step."""
    overrides = tiny_overrides(**{"train.epochs": "2", "train.save_checkpoints": "true"})
    result = tunehub.run_task("financial-sentiment", data=labelled_csv, model=str(tiny_model),
                              overrides=overrides)
    assert result.notes["checkpoint bytes written"] == 0
    assert result.notes["schedule"] == "2 epochs (train.epochs)"
    every_epoch = tiny_overrides(**{"train.epochs": "2", "train.save_checkpoints": "true",
                                    "train.checkpoint_minutes": "0"})
    again = tunehub.run_task("financial-sentiment", data=labelled_csv, model=str(tiny_model),
                             overrides=every_epoch)
    assert again.notes["checkpoint bytes written"] > 0  # epoch 1's, for --resume
