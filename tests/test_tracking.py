"""Experiment tracking (train.report_to) and the training log kept in every artifact."""
from __future__ import annotations

import importlib.util
import json
import math
from pathlib import Path
from types import SimpleNamespace

import pytest

import tunehub
from tunehub.core.errors import ConfigError
from tunehub.core.running import report, tracking
from tunehub.core.running.config import CORE_SCHEMA, check_settings, resolve
from tunehub.core.running.engine import TrainSettings
from tunehub.core.running.training import LOG_POINTS, log_every

from conftest import tiny_overrides, write_csv


def losses(history: list[dict]) -> list[tuple[int, float]]:
    return [(e["step"], e["loss"]) for e in history if "loss" in e]


@pytest.fixture
def plotted(monkeypatch) -> list[list[dict]]:
    """The log histories the run report draws its loss curve from."""
    seen: list[list[dict]] = []
    original = report._plot_loss

    def spy(log_history, path):
        seen.append(list(log_history))
        return original(log_history, path)

    monkeypatch.setattr(report, "_plot_loss", spy)
    return seen


def state_of(artifact: Path, part: str = "") -> dict:
    return json.loads((artifact / "logs" / part / "trainer_state.json").read_text())


def no_work_left(home: Path) -> bool:
    work = home / "work"
    return not work.exists() or not any(work.rglob("*"))


# -- the setting ----------------------------------------------------------------------


@pytest.mark.parametrize("written, expected", [
    ("none", "none"), ("tensorboard", "tensorboard"),
    ("tensorboard,mlflow", ["tensorboard", "mlflow"]),
    (["mlflow", "tensorboard"], ["mlflow", "tensorboard"]),
    (["tensorboard", "tensorboard"], "tensorboard"), ([], "none"),
])
def test_report_to_takes_a_name_or_a_list(written, expected):
    """As transformers' report_to: one name or a list; from TOML, --set or the API."""
    flat = resolve(CORE_SCHEMA, {"train": {"report_to": written}})
    check_settings(flat, "task 't'")
    assert flat["train"]["report_to"] == expected
    assert tracking.requested(expected) == ([] if expected == "none" else
                                            [expected] if isinstance(expected, str) else expected)


@pytest.mark.parametrize("written, message", [
    ("tensorbord", "Did you mean 'tensorboard'?"),
    ("wandb", "must be none, tensorboard, mlflow or a list of them, got 'wandb'"),
    (["none", "mlflow"], "give 'none' alone"),
])
def test_report_to_names_the_setting_and_choices(written, message):
    config = resolve(CORE_SCHEMA, {"train": {"report_to": written}})
    with pytest.raises(ConfigError, match="train.report_to") as error:
        check_settings(config, "task 't'")
    assert message in str(error.value)


def test_a_missing_tracker_package_names_the_pip_extra(monkeypatch):
    monkeypatch.setattr(tracking, "installed", lambda tracker: tracker != "mlflow")
    tracking.check_installed("tensorboard")
    with pytest.raises(ConfigError, match=r"pip install 'tunehub\[mlflow\]'"):
        tracking.check_installed(["tensorboard", "mlflow"])


def settings_for(max_steps: int = -1, logging_steps: int = 0):
    from transformers import TrainingArguments

    args = TrainingArguments("unused", per_device_train_batch_size=4, num_train_epochs=3,
                             max_steps=max_steps, use_cpu=True, report_to="none")
    trainer = SimpleNamespace(args=args, train_dataset=list(range(40)))  # 10 steps an epoch
    return trainer, TrainSettings(logging_steps=logging_steps)


@pytest.mark.parametrize("max_steps, every", [(-1, 1), (99, 1), (100, 2), (600, 12), (10_000, 200)])
def test_auto_logging_gives_every_run_about_fifty_points(max_steps, every):
    trainer, settings = settings_for(max_steps)
    assert log_every(trainer, settings) == every == trainer.args.logging_steps
    steps = 30 if max_steps == -1 else max_steps
    assert math.ceil(steps / every) >= min(steps, LOG_POINTS)


def test_logging_steps_setting_wins():
    trainer, settings = settings_for(600, logging_steps=7)
    assert log_every(trainer, settings) == 7 == trainer.args.logging_steps


# -- what runs write --------------------------------------------------------------------


def test_tensorboard_events_and_the_trainer_state_are_saved_with_the_artifact(
        tiny_model, tunehub_home, plotted):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    overrides = tiny_overrides(**{"train.report_to": "tensorboard", "train.epochs": "2"})
    result = tunehub.run_task("financial-sentiment", model=str(tiny_model), overrides=overrides)
    artifact = Path(result.artifact)
    state = state_of(artifact)
    logged = losses(state["log_history"])
    assert state["global_step"] == state["max_steps"] > 20  # the sample: 326 rows, batch 16
    assert len(logged) >= min(state["max_steps"], LOG_POINTS) and logged[0][0] == 1
    assert any("eval_accuracy" in e for e in state["log_history"])  # each epoch's evaluation
    assert losses(plotted[0]) == logged  # the report's curve is drawn from every point

    events = EventAccumulator(str(artifact / "logs" / "tensorboard"))
    events.Reload()
    scalars = events.Scalars("train/loss")
    assert [(s.step, round(s.value, 4)) for s in scalars] == [(s, round(v, 4)) for s, v in logged]
    assert "eval/accuracy" in events.Tags()["scalars"]
    assert result.notes["tensorboard"] == "logs/tensorboard"
    assert result.notes["training log"] == "logs/trainer_state.json"
    assert "logs/tensorboard" in (artifact / "report.md").read_text()
    assert no_work_left(tunehub_home)


def test_without_a_tracker_the_trainer_state_is_still_kept(tiny_model, tunehub_home):
    result = tunehub.run_task("financial-sentiment", model=str(tiny_model),
                              overrides=tiny_overrides())
    artifact = Path(result.artifact)
    assert len(losses(state_of(artifact)["log_history"])) > 1
    assert sorted(p.name for p in (artifact / "logs").iterdir()) == ["trainer_state.json"]


def test_a_failed_run_leaves_no_logs_behind(tiny_model, tunehub_home, monkeypatch):
    import tunehub.core.running.runner as runner

    def fail(*args, **kwargs):
        raise RuntimeError("disk gone while scoring")

    monkeypatch.setattr(runner, "_score_and_write", fail)
    with pytest.raises(RuntimeError, match="disk gone"):
        tunehub.run_task("financial-sentiment", model=str(tiny_model),
                         overrides=tiny_overrides(**{"train.report_to": "tensorboard"}))
    assert not list(tunehub_home.rglob("trainer_state.json"))
    assert not list(tunehub_home.rglob("events.out.tfevents.*"))
    assert no_work_left(tunehub_home)


def test_a_resumed_run_keeps_the_log_of_its_first_part(tiny_model, tunehub_home):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from transformers import TrainerCallback

    class Interrupt(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            if state.epoch and state.epoch > 1.5:
                raise KeyboardInterrupt

    overrides = tiny_overrides(**{"train.epochs": "2", "train.save_checkpoints": "true",
                                  "train.checkpoint_minutes": "0",  # a checkpoint every epoch
                                  "train.report_to": "tensorboard"})
    with pytest.raises(KeyboardInterrupt):
        tunehub.run_task("financial-sentiment", model=str(tiny_model), overrides=overrides,
                         callbacks=[Interrupt()])
    result = tunehub.run_task("financial-sentiment", model=str(tiny_model), overrides=overrides,
                              resume=True)
    artifact = Path(result.artifact)
    state = state_of(artifact)
    steps = [s for s, _ in losses(state["log_history"])]
    assert steps[0] == 1 and steps[-1] == state["max_steps"] and steps == sorted(steps)
    events = EventAccumulator(str(artifact / "logs" / "tensorboard"))
    events.Reload()
    assert {s.step for s in events.Scalars("train/loss")} == set(steps)  # both parts' events
    assert len(list((artifact / "logs" / "tensorboard").glob("events.out.tfevents.*"))) == 2
    assert no_work_left(tunehub_home)


FAQ = [["card-lost", "What should I do if I lost my card?", "Report it lost in the app."],
       ["pin-reset", "How do I reset my PIN?", "Go to Cards > PIN and choose a new one."],
       ["fees", "What are the monthly fees?", "The standard account is free."],
       ["abroad", "Can I use my card abroad?", "Yes, in over 150 countries."]]
QUERIES = {
    "card-lost": ["i lost my card", "my card is missing", "cannot find my debit card",
                  "card gone, help", "dropped my card somewhere", "where is my card"],
    "pin-reset": ["forgot my pin", "change pin number", "new PIN please", "reset the pin code",
                  "what's my pin", "pin does not work"],
    "fees": ["how much does the account cost", "monthly charge?", "are there fees",
             "price of the account", "do you charge me", "is it free"],
    "abroad": ["using card in spain", "does my card work overseas", "travelling to japan",
               "card abroad fees", "pay in dollars", "card in another country"],
}


def test_customer_service_curve_has_a_point_per_step_and_the_re_ranker_its_own_log(
        tiny_model, tmp_path, tunehub_home, plotted):
    """The bi-encoder's short run logs every step (it was one point); the re-ranker,
    trained second in its own folder, gets its own trainer state and TensorBoard run."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    faq = write_csv(tmp_path / "faq.csv", ["id", "question", "answer"], FAQ)
    queries = write_csv(tmp_path / "queries.csv", ["query", "faq_id"],
                        [[q, entry] for entry, texts in QUERIES.items() for q in texts])
    result = tunehub.run_task("customer-service-qa", data=queries, model=str(tiny_model),
                              overrides=tiny_overrides(**{
                                  "dataset.faq": str(faq), "dataset.eval_fraction": "0.3",
                                  "train.batch_size": "4", "train.epochs": "3",
                                  "head.rerank": "true", "head.rerank_epochs": "1",
                                  "train.report_to": "tensorboard"}))
    artifact = Path(result.artifact)
    state = state_of(artifact)
    assert state["max_steps"] > 3
    assert [s for s, _ in losses(state["log_history"])] == list(range(1, state["max_steps"] + 1))
    assert losses(plotted[0]) == losses(state["log_history"])

    rerank = state_of(artifact, "reranker")
    assert len(losses(rerank["log_history"])) == rerank["max_steps"] > 1
    runs = {p.parent.relative_to(artifact / "logs" / "tensorboard").as_posix()
            for p in (artifact / "logs" / "tensorboard").rglob("events.out.tfevents.*")}
    assert runs == {".", "reranker"}
    events = EventAccumulator(str(artifact / "logs" / "tensorboard" / "reranker"))
    events.Reload()
    assert len(events.Scalars("train/loss")) == rerank["max_steps"]
    assert result.notes["training log"] == ("logs/reranker/trainer_state.json, "
                                            "logs/trainer_state.json")
    assert no_work_left(tunehub_home)


def test_a_head_without_the_trainer_says_nothing_was_tracked(tmp_path, capsys):
    work, folder = tmp_path / "work", tmp_path / "artifact"
    work.mkdir()
    folder.mkdir()
    assert tracking.keep(work, folder, "tensorboard", "recommendation-scoring", "two-tower") == {}
    assert "head 'two-tower' trains without the engine's Trainer" in capsys.readouterr().err
    assert tracking.keep(work, folder, "none", "recommendation-scoring", "two-tower") == {}
    assert capsys.readouterr().err == "" and not (folder / "logs").exists()


# -- MLflow (a large install: these run where it is installed) --------------------------

needs_mlflow = pytest.mark.skipif(importlib.util.find_spec("mlflow") is None,
                                  reason="mlflow is not installed (pip install 'tunehub[mlflow]')")


def mlflow_runs(uri: str, experiment: str) -> list:
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=uri)
    found = client.get_experiment_by_name(experiment)
    assert found is not None, experiment
    return [(run, client.get_metric_history(run.info.run_id, "loss"))
            for run in client.search_runs([found.experiment_id])]


@needs_mlflow
def test_mlflow_writes_a_store_in_the_artifact_by_default(tiny_model, tunehub_home, tmp_path,
                                                          monkeypatch):
    import os

    for key in [k for k in os.environ if k.startswith("MLFLOW_")]:
        monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)
    result = tunehub.run_task("financial-sentiment", model=str(tiny_model),
                              overrides=tiny_overrides(**{"train.report_to": "mlflow"}))
    artifact = Path(result.artifact)
    store = artifact / "logs" / "mlflow.db"
    assert store.is_file() and result.notes["mlflow"] == ("logs/mlflow.db, experiment "
                                                          "'financial-sentiment'")
    [(run, history)] = mlflow_runs(f"sqlite:///{store}", "financial-sentiment")
    logged = losses(state_of(artifact)["log_history"])
    assert [(m.step, round(m.value, 4)) for m in history] == [(s, round(v, 4)) for s, v in logged]
    assert run.info.status == "FINISHED"
    assert not [k for k in os.environ if k.startswith("MLFLOW_")]  # the environment as it was
    assert not list(tmp_path.glob("mlruns")) and not list(tmp_path.glob("mlflow.db"))


@needs_mlflow
def test_mlflow_honours_the_users_tracking_uri_and_experiment(tiny_model, tunehub_home, tmp_path,
                                                              monkeypatch):
    uri = f"sqlite:///{tmp_path / 'team.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.setenv("MLFLOW_EXPERIMENT_NAME", "sentiment-sweep")
    result = tunehub.run_task("financial-sentiment", model=str(tiny_model),
                              overrides=tiny_overrides(**{"train.report_to": "mlflow"}))
    assert not (Path(result.artifact) / "logs" / "mlflow.db").exists()
    assert result.notes["mlflow"] == ("the store of MLFLOW_TRACKING_URI, experiment "
                                      "'sentiment-sweep'")
    [(run, history)] = mlflow_runs(uri, "sentiment-sweep")
    assert len(history) > 1
