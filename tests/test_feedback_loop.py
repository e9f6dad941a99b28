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
from tunehub.core.artifacts import hub, rows
from tunehub.core.running import runner
from tunehub.core.cli import main
from tunehub.core.running.compare import compare_versions
from tunehub.core.errors import ConfigError
from tunehub.core.operations.feedback import FeedbackStore
from tunehub.core.serving.serve import BackgroundServer, ServeSettings

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


# small data, many epochs: a tiny model memorises its training rows, so a correction it
# learned shows in its predictions
MEMORISE = {"train.epochs": "30", "train.learning_rate": "5e-3", "train.batch_size": "4",
            "dataset.validation_fraction": "0"}


def trained_on(task: str, version: str, key: str) -> bool:
    return rows.hashed([key])[0] in rows.read(hub.find_artifact(f"{task}@{version}").path)["train"]


# -- classification ------------------------------------------------------------------------
def test_classification_loop(tiny_model, labelled_csv):
    tunehub.run_task("financial-sentiment", data=labelled_csv, model=str(tiny_model),
                     overrides=tiny_overrides(**MEMORISE))
    held = rows.read(hub.find_artifact("financial-sentiment@v1").path)
    texts = [t for group in SENTENCES.values() for t in group]
    evaluation = [t for t in texts if rows.hashed([t])[0] in held["eval"]]
    training = [t for t in texts if t not in evaluation]
    relabelled = next(t for t in training if t in SENTENCES["positive"])
    before = runner.predict("financial-sentiment", [relabelled])[0]["label"]
    answers = send_feedback("financial-sentiment", [
        {"input": "Shares plunged after the recall.", "label": "negative"},  # new
        {"input": relabelled, "label": "neutral"},  # a training row, relabelled
        {"input": evaluation[0], "label": "positive"},  # an evaluation row: never trained on
        {"input": "Odd text.", "label": "angry"},  # refused: not a label of the model
    ])
    assert [a.status_code for a in answers] == [201, 201, 201, 422]
    assert "label: 'angry' is not one of" in answers[3].json()["detail"]
    done = retrain("financial-sentiment")
    counts = done["feedback"]
    assert counts["added"] == 1 and counts["retrained"] == "financial-sentiment@v1"
    assert counts["skipped (an evaluation row: scored on, never trained on)"] == 1
    assert counts["overrode a training label"] == 1
    assert trained_on("financial-sentiment", "v2", "Shares plunged after the recall.")
    assert not trained_on("financial-sentiment", "v2", evaluation[0])
    check_fair_and_promoted("financial-sentiment", done)
    after = runner.predict("financial-sentiment", [relabelled], model="financial-sentiment@v2")
    assert (before, after[0]["label"]) == ("positive", "neutral")  # the correction is learned
    report = (hub.find_artifact("financial-sentiment@v2").path / "report.md").read_text()
    assert "overrode a training label" in report


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
def test_entity_extraction_loop(tiny_model, tmp_path):
    from tunehub.plugins.entity_extraction import DATA

    sample = tmp_path / "sentences.jsonl"
    sample.write_text("".join((DATA / "sample.jsonl").read_text().splitlines(keepends=True)[:24]))
    tunehub.run_task("entity-extraction", data=sample, model=str(tiny_model),
                     overrides=tiny_overrides(**{"train.max_length": "32", **MEMORISE}))
    text = "Mira Holt joined Zentrix Labs."
    before = runner.predict("entity-extraction", [text])[0]["entities"]
    answers = send_feedback("entity-extraction", [
        {"input": text, "entities": [{"start": 0, "end": 9, "label": "PER"},  # as data files
                                     {"start": 17, "end": 29, "type": "ORG"}]},  # as predicted
        {"input": "Oslo.", "entities": [{"start": 0, "label": "LOC"}]},  # refused: no end
    ])
    assert [a.status_code for a in answers] == [201, 422]
    assert "entities[0]: 'end' is a required property" in answers[1].json()["detail"]
    done = retrain("entity-extraction")
    assert done["feedback"]["added"] == 1
    assert trained_on("entity-extraction", "v2", text)
    check_fair_and_promoted("entity-extraction", done)
    after = runner.predict("entity-extraction", [text], model="entity-extraction@v2")[0]["entities"]
    found = [(e["start"], e["end"], e["type"]) for e in after]
    assert found == [(0, 9, "PER"), (17, 29, "ORG")] != [(e["start"], e["end"], e["type"])
                                                         for e in before]  # learned


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


# -- a third-party multi-label head ----------------------------------------------------------
class MultiLabelHead:
    """Texts with any number of labels ("a|b"); the model answers with the label set of
    the most similar training text (word overlap). Declares its own correction shape."""

    name = "keyword-multilabel"

    def load_data(self, config, files):
        from tunehub.plugin import TaskData, read_table, stratified_split

        table = read_table(files["train"])
        texts = [str(r["text"]).strip() for r in table.rows]
        labels = [sorted(filter(None, str(r["labels"]).split("|"))) for r in table.rows]
        keep, held = stratified_split(["|".join(x) for x in labels], 0.25, 0)
        pick = lambda idx: {"texts": [texts[i] for i in idx], "labels": [labels[i] for i in idx]}  # noqa: E731
        return TaskData(pick(keep), pick(held), dict(files))

    def row_keys(self, data, config):
        return {"train": list(data.train["texts"]), "eval": list(data.eval["texts"])}

    corrections = {"labels": {"type": "array", "items": {"type": "string", "minLength": 1},
                              "uniqueItems": True, "description": "Every label of the text."}}

    def join_feedback(self, data, items, config, held_out):
        from tunehub.plugin import latest_corrections

        latest, counts = latest_corrections(items, held_out)
        for text, item in latest.items():
            data.train["texts"].append(text)
            data.train["labels"].append(sorted(item["labels"]))
            counts["added"] += 1
        return dict(counts)

    def fit(self, run):
        from tunehub.plugin import FitOutput

        run.model_dir.mkdir(parents=True)
        (run.model_dir / "memory.json").write_text(json.dumps(run.data.train))
        return FitOutput(self._outputs(run.data.train, run.data.eval))

    def load(self, model_dir, config):
        head = self

        class Predictor:
            memory = json.loads((model_dir / "memory.json").read_text())

            def predict(self, inputs):
                return [{"labels": head._nearest(self.memory, text)} for text in inputs]

            def evaluate(self, data):
                return head._outputs(self.memory, data.eval)

        return Predictor()

    @staticmethod
    def _nearest(memory, text):
        words = set(text.lower().split())
        overlap = [len(words & set(t.lower().split())) for t in memory["texts"]]
        return memory["labels"][max(range(len(overlap)), key=overlap.__getitem__)]

    def _outputs(self, memory, evaluation):
        return {"y_true": ["|".join(x) for x in evaluation["labels"]],
                "y_pred": ["|".join(self._nearest(memory, t)) for t in evaluation["texts"]]}


class MultiLabelPlugin:
    from tunehub.plugin import hookimpl

    @hookimpl
    def register_heads(self, register):
        register(MultiLabelHead())

    @hookimpl
    def register_metrics(self, register):
        register("subset_accuracy", lambda o: sum(t == p for t, p in zip(o["y_true"], o["y_pred"]))
                 / max(len(o["y_true"]), 1))

    @hookimpl
    def register_tasks(self, register):
        register({"name": "ticket-tags", "head": {"name": "keyword-multilabel"},
                  "metrics": ["subset_accuracy"], "baselines": []})


def test_a_plugin_multi_label_head_takes_feedback(tmp_path):
    from tunehub.core.artifacts.promotion import promote_if_better
    from tunehub.core.operations.retrain import previous_serving

    from test_hooks_meta import with_plugin

    catalog = with_plugin(MultiLabelPlugin())
    words = ["card", "fee", "app", "login", "refund", "travel"]
    data = write_csv(tmp_path / "tickets.csv", ["text", "labels"],
                     [[f"{a} issue number {i}", f"{a}|{b}" if i % 2 else a]
                      for i in range(8) for a, b in [(words[i % 6], words[(i + 1) % 6])]] * 2)
    runner.run_task("ticket-tags", data=data, catalog=catalog)
    store = FeedbackStore()
    loaded = runner.load("ticket-tags", catalog=catalog)
    with BackgroundServer([loaded], ServeSettings(port=0), store=store) as server:
        good = httpx.post(f"{server.url}/v1/feedback", timeout=60, json={
            "task": "ticket-tags", "input": "wallet stolen abroad", "labels": ["card", "travel"]})
        bad = httpx.post(f"{server.url}/v1/feedback", timeout=60, json={
            "task": "ticket-tags", "input": "x", "labels": "card"})
        documented = httpx.get(f"{server.url}/openapi.json", timeout=60).json()
    store.close()
    assert good.status_code == 201 and bad.status_code == 422
    assert "labels: 'card' is not of type 'array'" in bad.json()["detail"]
    schema = documented["components"]["schemas"]["FeedbackRequest"]["properties"]["labels"]
    assert schema["type"] == "array" and "ticket-tags" in schema["description"]
    previous = previous_serving("ticket-tags")
    result = runner.run_task("ticket-tags", catalog=catalog, with_feedback=True)
    assert result.notes["feedback"]["added"] == 1
    decision = promote_if_better("ticket-tags", result.version, previous, catalog)
    assert decision["promoted"] and "none trained on" in decision["rows"]
    answer = runner.predict("ticket-tags", ["wallet stolen abroad"], catalog=catalog)
    assert answer[0]["labels"] == ["card", "travel"]  # both labels learned, from @serving
