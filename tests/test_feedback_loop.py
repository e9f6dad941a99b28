"""The feedback loop of every built-in task, judged fairly: serve v1, send corrections to
POST /v1/feedback, `run-task --with-feedback --promote-if-better`, and check that the
correction is learned, that v2 is scored on v1's evaluation rows only, and that @serving
moves only on a fair comparison."""
from __future__ import annotations

import json

import httpx
import pytest
from click.testing import CliRunner

import tunehub
from tunehub.core import hub, rows, runner
from tunehub.core.cli import main
from tunehub.core.compare import compare_versions
from tunehub.core.errors import ConfigError
from tunehub.core.feedback import FeedbackStore
from tunehub.core.serve import BackgroundServer, ServeSettings

from conftest import SENTENCES, tiny_overrides, write_csv
from test_customer_service import faq_files  # noqa: F401 (fixture)
from test_recommendation import items_csv, tiny_rec  # noqa: F401 (fixtures)


def send_feedback(task: str, bodies: list[dict]) -> list[httpx.Response]:
    """Serve the task's latest version and post ``bodies`` to /v1/feedback."""
    loaded = runner.load(task)
    store = FeedbackStore()
    try:
        with BackgroundServer([loaded], ServeSettings(port=0), store=store) as server:
            return [httpx.post(f"{server.url}/v1/feedback", json={"task": task, **body}, timeout=60)
                    for body in bodies]
    finally:
        store.close()


def retrain(task: str) -> dict:
    out = CliRunner().invoke(main, ["run-task", task, "--with-feedback", "--promote-if-better",
                                    "--json"])
    assert out.exit_code == 0, out.output
    return json.loads(out.stdout)


def eval_rows(task: str, version: str) -> list[str]:
    return rows.read(hub.find_artifact(f"{task}@{version}").path)["eval"]


def check_fair_and_promoted(task: str, done: dict) -> None:
    """v2 scored on v1's rows, compared on them, @serving moved unless v2 was worse."""
    assert eval_rows(task, "v2") == eval_rows(task, "v1")
    v1, v2 = (hub.find_artifact(f"{task}@{v}").manifest()["evaluation"] for v in ("v1", "v2"))
    assert v1["digest"] == v2["digest"]
    decision = done["promotion"]
    assert decision["against"] == f"{task}@v1" and "none trained on" in decision["rows"]
    expected = "v1" if decision["verdict"] == "B worse" else "v2"
    assert hub.find_artifact(f"{task}@serving").version == expected
    assert decision["promoted"] == (expected == "v2")


def trained_on(task: str, version: str, key: str) -> bool:
    return rows.hashed([key])[0] in rows.read(hub.find_artifact(f"{task}@{version}").path)["train"]


# -- classification ------------------------------------------------------------------------
def test_classification_loop(tiny_model, labelled_csv):
    tunehub.run_task("financial-sentiment", data=labelled_csv, model=str(tiny_model),
                     overrides=tiny_overrides(**{"train.max_steps": "2"}))
    held = rows.read(hub.find_artifact("financial-sentiment@v1").path)
    texts = [t for group in SENTENCES.values() for t in group]
    evaluation = [t for t in texts if rows.hashed([t])[0] in held["eval"]]
    training = [t for t in texts if t not in evaluation]
    answers = send_feedback("financial-sentiment", [
        {"input": "Shares plunged after the recall.", "label": "negative"},  # new
        {"input": training[0], "label": "neutral"},  # a training row, relabelled
        {"input": evaluation[0], "label": "positive"},  # an evaluation row: never trained on
        {"input": "Odd text.", "label": "angry"},  # refused: not a label of the model
    ])
    assert [a.status_code for a in answers] == [201, 201, 201, 422]
    assert "label: 'angry' is not one of" in answers[3].json()["detail"]
    done = retrain("financial-sentiment")
    counts = done["feedback"]
    assert counts["added"] == 1 and counts["retrained"] == "financial-sentiment@v1"
    assert counts["skipped (an evaluation row: scored on, never trained on)"] == 1
    assert counts["overrode a training label"] + counts.get("agreed with training", 0) == 1
    assert trained_on("financial-sentiment", "v2", "Shares plunged after the recall.")
    assert not trained_on("financial-sentiment", "v2", evaluation[0])
    check_fair_and_promoted("financial-sentiment", done)
    report = (hub.find_artifact("financial-sentiment@v2").path / "report.md").read_text()
    assert "overrode a training label" in report or "agreed with training" in report


def test_compare_refuses_rows_a_version_trained_on(tiny_model, labelled_csv):
    """The unfair test set of old: a version scored on rows it trained on."""
    tunehub.run_task("financial-sentiment", data=labelled_csv, model=str(tiny_model),
                     overrides=tiny_overrides(**{"train.max_steps": "1"}))
    tunehub.run_task("financial-sentiment", data=labelled_csv, model=str(tiny_model),
                     overrides=tiny_overrides(**{"train.max_steps": "1", "dataset.split_seed": "7"}))
    with pytest.raises(ConfigError, match=r"financial-sentiment@v\d trained on \d+ of the \d+ rows"):
        compare_versions("financial-sentiment", "financial-sentiment@v1", "financial-sentiment@v2")
    with pytest.raises(ConfigError, match="trained on"):
        compare_versions("financial-sentiment", "financial-sentiment@v1", "financial-sentiment@v2",
                         data=labelled_csv)
    out = CliRunner().invoke(main, ["models", "compare", "financial-sentiment@v1",
                                    "financial-sentiment@v2", "--data", str(labelled_csv)])
    assert out.exit_code == 2 and "Compare on rows neither version trained on" in out.output
    held = write_csv(labelled_csv.parent / "held.csv", ["text", "label"],
                     [["Quarterly profit doubled.", "positive"], ["The plant shut.", "negative"],
                      ["The meeting is on Monday.", "neutral"]])
    fair = compare_versions("financial-sentiment", "financial-sentiment@v1",
                            "financial-sentiment@v2", data=held, rounds=50)
    assert fair["fairness"] == "3 rows, none trained on by either version"


def test_a_retrain_refuses_other_evaluation_rows(tiny_model, labelled_csv):
    tunehub.run_task("financial-sentiment", data=labelled_csv, model=str(tiny_model),
                     overrides=tiny_overrides(**{"train.max_steps": "1"}))
    store = FeedbackStore()
    store.add({"task": "financial-sentiment", "input": "Profit fell.", "label": "negative"}).result()
    store.close()
    out = CliRunner().invoke(main, ["run-task", "financial-sentiment", "--with-feedback",
                                    "--set", "dataset.split_seed=99"])
    assert out.exit_code == 2 and "evaluation rows, but this data gives" in out.output
    assert hub.find_artifact("financial-sentiment@latest").version == "v1"


def test_with_feedback_needs_a_version_and_feedback(tiny_model, labelled_csv):
    cli = CliRunner()
    none = cli.invoke(main, ["run-task", "financial-sentiment", "--with-feedback"])
    assert none.exit_code == 2 and "there is none yet" in none.output
    tunehub.run_task("financial-sentiment", data=labelled_csv, model=str(tiny_model),
                     overrides=tiny_overrides(**{"train.max_steps": "1"}))
    empty = cli.invoke(main, ["run-task", "financial-sentiment", "--with-feedback"])
    assert empty.exit_code == 2 and "no feedback stored" in empty.output


# -- customer-service QA ---------------------------------------------------------------------
def test_customer_service_loop(tiny_model, faq_files):  # noqa: F811
    faq, queries = faq_files
    tunehub.run_task("customer-service-qa", data=queries, model=str(tiny_model),
                     overrides=tiny_overrides(**{"dataset.faq": str(faq), "train.max_steps": "1",
                                                 "dataset.eval_fraction": "0.3"}))
    new_query = "my plastic went missing on the bus"
    answers = send_feedback("customer-service-qa", [
        {"input": new_query, "faq_id": "card-lost"},
        {"input": "can you book me a taxi", "handoff": True},  # none of these: hand off
        {"input": "x", "faq_id": "card-lost", "handoff": True},  # two answers: refused
    ])
    assert [a.status_code for a in answers] == [201, 201, 422]
    assert "takes: faq_id, handoff" in answers[2].json()["detail"]
    done = retrain("customer-service-qa")
    assert done["feedback"]["added"] == 1 and done["feedback"]["added (hand-off)"] == 1
    check_fair_and_promoted("customer-service-qa", done)
    answer = runner.predict("customer-service-qa", [new_query], model="customer-service-qa@v2")[0]
    assert answer["answers"][0]["id"] == "card-lost"  # learned: a known paraphrase now
    assert trained_on("customer-service-qa", "v2", "can you book me a taxi")


# -- entity extraction -----------------------------------------------------------------------
def test_entity_extraction_loop(tiny_model):
    tunehub.run_task("entity-extraction", model=str(tiny_model),
                     overrides=tiny_overrides(**{"train.max_length": "24", "train.max_steps": "1"}))
    text = "Mira Holt joined Zentrix Labs."
    answers = send_feedback("entity-extraction", [
        {"input": text, "entities": [{"start": 0, "end": 9, "label": "PER"},
                                     {"start": 17, "end": 29, "label": "ORG"}]},
        {"input": "Oslo.", "entities": [{"start": 0, "label": "LOC"}]},  # refused: no end
    ])
    assert [a.status_code for a in answers] == [201, 422]
    assert "entities[0]: 'end' is a required property" in answers[1].json()["detail"]
    done = retrain("entity-extraction")
    assert done["feedback"]["added"] == 1
    assert trained_on("entity-extraction", "v2", text)
    check_fair_and_promoted("entity-extraction", done)


# -- recommendation --------------------------------------------------------------------------
def test_recommendation_loop(tiny_model, tiny_rec):  # noqa: F811
    interactions, items = tiny_rec
    tunehub.run_task("recommendation-scoring", data=interactions, model=str(tiny_model),
                     overrides=tiny_overrides(**{"dataset.items": str(items), "train.max_steps": "1",
                                                 "dataset.cold_start_fraction": "0.2"}))
    before = runner.predict("recommendation-scoring", ["u0"])[0]["results"]
    chosen = before[0]["item_id"]  # the user picked the top recommendation
    answers = send_feedback("recommendation-scoring", [{"input": "u0", "item": chosen}])
    assert [a.status_code for a in answers] == [201]
    done = retrain("recommendation-scoring")
    counts = done["feedback"]
    assert counts.get("added", 0) + counts.get("skipped (a cold-start item, held out of training)", 0) == 1
    check_fair_and_promoted("recommendation-scoring", done)
    if counts.get("added"):
        assert trained_on("recommendation-scoring", "v2", f"u0\t{chosen}")
        after = runner.predict("recommendation-scoring", ["u0"], model="recommendation-scoring@v2")
        assert chosen not in [r["item_id"] for r in after[0]["results"]]  # learned: now seen
