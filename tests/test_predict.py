"""Predict and evaluate with saved models: files stream in batches, order is kept."""
from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from tunehub.core.running import runner
from tunehub.core.cli import main
from tunehub.core.errors import ConfigError, DataError, PluginError
from tunehub.core.extending.heads import RegisteredHead
from tunehub.core.models.inference import load_predictor, run_batches, token_batches
from tunehub.core.serving.predict_io import batches, open_source

from _trained import shared_artifact
from conftest import write_csv

TEXTS = ["Profit rose sharply in the quarter.", "Down.", "The meeting is on 4 May, in Oslo.",
         "Sales fell, and the outlook was cut again for the full year.", "Up 5%", "Neutral news"]


@pytest.fixture(scope="module")
def artifact(tiny_model, tmp_path_factory) -> str:
    return shared_artifact(tiny_model, tmp_path_factory)


def invoke(*args: str):
    result = CliRunner().invoke(main, list(args))
    assert result.exit_code == 0, result.output
    return result


def test_file_round_trip_keeps_order_count_and_columns(artifact, tmp_path):
    rows = [[str(i), TEXTS[i % len(TEXTS)] + f" ({i})"] for i in range(23)]
    source = write_csv(tmp_path / "in.csv", ["id", "sentence"], rows)
    expected = runner.predict("financial-sentiment", [r[1] for r in rows], model=artifact)
    out = tmp_path / "out.csv"
    invoke("predict", "financial-sentiment", "--model", artifact, "--input", str(source),
           "--output", str(out), "--column", "sentence", "--batch-size", "4")
    import csv

    written = list(csv.DictReader(out.open()))
    assert [r["id"] for r in written] == [r[0] for r in rows]  # order and count
    assert [r["prediction_label"] for r in written] == [e["label"] for e in expected]
    assert json.loads(written[0]["prediction_probabilities"]) == expected[0]["probabilities"]
    assert not list(tmp_path.glob(".*partial"))

    jsonl = tmp_path / "in.jsonl"
    jsonl.write_text("".join(json.dumps({"text": r[1], "n": int(r[0])}) + "\n" for r in rows))
    out_jsonl = tmp_path / "out.jsonl"
    summary = json.loads(invoke("predict", "financial-sentiment", "--model", artifact, "--input",
                                str(jsonl), "--output", str(out_jsonl), "--json").stdout)
    assert summary["rows"] == 23 and summary["column"] == "text"  # the task's text column
    lines = [json.loads(line) for line in out_jsonl.read_text().splitlines()]
    assert [x["n"] for x in lines] == list(range(23))
    assert [x["prediction"] for x in lines] == expected
    to_stdout = invoke("predict", "financial-sentiment", "--model", artifact, "--input", str(jsonl))
    assert [json.loads(line)["prediction"] for line in to_stdout.stdout.splitlines()] == expected


def test_texts_and_json_output(artifact):
    data = json.loads(invoke("predict", "financial-sentiment", "--model", artifact,
                             "--json", *TEXTS[:2]).stdout)
    assert [d["input"] for d in data] == TEXTS[:2] and "label" in data[0]


def test_predict_errors_name_the_fix(artifact, tmp_path):
    source = write_csv(tmp_path / "in.csv", ["id", "body"], [["1", "x"]])
    result = CliRunner().invoke(main, ["predict", "financial-sentiment", "--model", artifact,
                                       "--input", str(source)])
    assert result.exit_code == 2 and "--column" in result.output
    result = CliRunner().invoke(main, ["predict", "financial-sentiment", "--model", artifact])
    assert result.exit_code == 2 and "TEXT" in result.output
    empty = write_csv(tmp_path / "gap.csv", ["id", "text"], [["1", "a"], ["2", " "], ["3", "b"]])
    result = CliRunner().invoke(main, ["predict", "financial-sentiment", "--model", artifact,
                                       "--input", str(empty), "--output", str(tmp_path / "o.csv")])
    assert result.exit_code == 2 and "row 3" in result.output
    assert not (tmp_path / "o.csv").exists()  # no half-written output


def test_file_is_read_in_batches_not_at_once(tmp_path):
    path = write_csv(tmp_path / "big.csv", ["text"], [[f"row {i} " + "x" * 50] for i in range(20000)])
    source = open_source(path)
    seen: list[int] = []
    first = next(batches(source, "text", 100, seen.append))
    assert len(first) == 100 and first[0][1].startswith("row 0 ")
    assert seen and max(seen) < source.size / 4  # only the start of the file was read
    with pytest.raises(DataError, match="row 3"):
        bad = write_csv(tmp_path / "bad.csv", ["id", "text"], [["1", "a"], ["2", ""]])
        list(batches(open_source(bad), "text", 10))


def test_run_batches_keeps_input_order_and_matches_single_forwards(tiny_model):
    import torch
    from transformers import AutoModel, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    model = AutoModel.from_pretrained(tiny_model).eval()

    def forward(batch):
        hidden = model(**batch).last_hidden_state  # (B, T, H)
        mask = batch["attention_mask"].unsqueeze(-1).float()
        return (hidden * mask).sum(1) / mask.sum(1)  # (B, H)

    together = run_batches(TEXTS, tokenizer, forward, batch_size=4)
    with torch.inference_mode():
        alone = [forward(dict(tokenizer([t], return_tensors="pt")))[0].numpy() for t in TEXTS]
    for row, ref in zip(together, alone):
        assert abs(row - ref).max() < 1e-4
    tokenizer.padding_side = "left"  # ignored: encoders pad on the right
    assert abs(run_batches(TEXTS, tokenizer, forward, batch_size=4) - together).max() < 1e-4


def test_small_calls_run_on_one_thread_and_restore_the_count(tiny_model):
    import torch
    from transformers import AutoTokenizer

    from tunehub.core.models.inference import SMALL_TOKENS

    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    seen: list[int] = []

    def forward(batch):
        seen.append(torch.get_num_threads())
        return batch["input_ids"].float()[:, :1]

    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        run_batches(["a single short question"], tokenizer, forward)
        assert seen == [1] and torch.get_num_threads() == 2
        seen.clear()
        many = ["a longer question about cards and fees"] * (SMALL_TOKENS // 4)
        run_batches(many, tokenizer, forward)
        assert set(seen) == {2}  # a large call keeps every thread
    finally:
        torch.set_num_threads(before)


def test_token_batches_respect_rows_and_padded_tokens():
    lengths = [30, 10, 12, 200, 11, 9, 8]  # text 3 alone exceeds the budget
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    batches = token_batches(order, lengths, batch_size=3, max_tokens=40)
    assert batches == [[3], [0], [2, 4, 1], [5, 6]]
    assert sorted(i for rows in batches for i in rows) == list(range(len(lengths)))
    for rows in batches[1:]:
        assert len(rows) <= 3 and len(rows) * lengths[rows[0]] <= 40
    assert token_batches([], [], 4, 40) == []


def test_bi_encoder_encode_equals_sentence_transformers(tiny_model):
    import numpy as np
    from tunehub.core.models.biencoder import encode, load_encoder

    model = load_encoder(tiny_model, max_length=16)
    ours = encode(model, TEXTS, batch_size=2)
    reference = model.encode(TEXTS, normalize_embeddings=True, convert_to_numpy=True)
    assert ours.shape == reference.shape and ours.dtype == np.float32
    assert np.abs(ours - reference).max() < 1e-5
    assert encode(model, [], batch_size=2).shape == (0, reference.shape[1])


def test_heads_without_load_fall_back_to_predict(tmp_path):
    class PredictOnly:
        name = "predict-only"

        def load_data(self, config, files):
            raise NotImplementedError

        def fit(self, run):
            raise NotImplementedError

        def predict(self, model_dir, inputs, config):
            return [{"n": len(x), "dir": str(model_dir)} for x in inputs]

    head = RegisteredHead(PredictOnly(), "test")
    predictor = load_predictor(head, tmp_path, {})
    assert predictor.predict(["ab", "c"]) == [{"n": 2, "dir": str(tmp_path)},
                                              {"n": 1, "dir": str(tmp_path)}]
    assert (head.description, dict(head.schema), dict(head.baselines)) == ("", {}, {})
    with pytest.raises(ConfigError, match="does not support --quantize"):
        load_predictor(head, tmp_path, {}, quantize="int8")  # refused, never "measured"
    with pytest.raises(ConfigError, match="cannot evaluate"):
        predictor.evaluate(None)


def test_a_head_without_fit_is_refused_at_registration():
    class Incomplete:
        name = "incomplete"

        def load_data(self, config, files):
            return None

    with pytest.raises(PluginError, match="lacks fit, predict or load"):
        RegisteredHead(Incomplete(), "acme")


def test_evaluate_writes_a_report_and_measures_int8(artifact, labelled_csv, precision):
    result = runner.evaluate("financial-sentiment", model=artifact, data=labelled_csv,
                             quantize="int8")
    report = result.notes["report"]
    assert "/evaluations/" in report and report.endswith("report.md")
    text = open(report).read()
    assert "accuracy" in text and str(labelled_csv) in text
    assert "accuracy int8 vs fp32" in result.notes  # the accuracy change is measured
    data = json.loads(invoke("evaluate", "financial-sentiment", "--model", artifact, "--data",
                             str(labelled_csv), "--json").stdout)
    assert set(data["metrics"]) == {"accuracy", "macro_f1"} and data["report"] != report


def test_the_input_column_is_the_heads_input_role(tmp_path):
    from tunehub.core.extending.plugins import load_catalog
    from tunehub.core.serving.predict_io import input_column, open_source

    path = tmp_path / "asked.csv"
    path.write_text("id,question,user_id\n1,lost card,u1\n")
    catalog = load_catalog()
    roles = {name: catalog.head_of(catalog.task(name)).input_role
             for name in ("financial-sentiment", "customer-service-qa", "recommendation-scoring")}
    assert roles == {"financial-sentiment": "text", "customer-service-qa": "query",
                     "recommendation-scoring": "user"}
    source = open_source(path)
    assert input_column(source, None, {"query": "question"}, "query") == "question"
    assert input_column(source, None, {"user": "user_id"}, "user") == "user_id"
    with pytest.raises(DataError, match="no text column found"):
        input_column(source, None, {}, "text")


def test_evaluation_from_predictions_matches_the_predictors_own(artifact, labelled_csv):
    """`eval_inputs`/`eval_outputs` (what `app evaluate --engine ray` uses) build the outputs
    the loaded predictor's `evaluate` gives, from predictions alone."""
    loaded = runner.load("financial-sentiment", model=artifact)
    head, config = loaded.head, loaded.config
    data = head.load_data(config, {"eval": labelled_csv})
    own = loaded.predictor.evaluate(head.load_data(config, {"eval": labelled_csv}))
    built = head.eval_outputs(data, loaded.predict(head.eval_inputs(data, config)), config)
    assert head.evaluates_predictions
    assert (built["labels"], built["y_true"], built["y_pred"]) == (
        own["labels"], own["y_true"], own["y_pred"])
    import numpy as np

    assert np.allclose(built["probs"], own["probs"], atol=1e-6)  # predictions round to 6 places


def test_eval_inputs_without_eval_outputs_is_refused_at_registration():
    class Half:
        name = "half"

        def load_data(self, config, files):
            return None

        def fit(self, run):
            return None

        def predict(self, model_dir, inputs, config):
            return [{} for _ in inputs]

        def eval_inputs(self, data, config):
            return []

    with pytest.raises(PluginError, match="declares eval_inputs without eval_outputs"):
        RegisteredHead(Half(), "acme")
    assert not RegisteredHead(type("Plain", (Half,), {"eval_inputs": None})(), "acme").evaluates_predictions
