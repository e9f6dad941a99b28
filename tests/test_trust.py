"""Names, paths and outputs that must never reach outside what they name: task names,
version references, promote and rm, `app clean`, CSV exports, what the server shows."""
from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from tunehub.core.artifacts import hub
from tunehub.core.operations import monitor
from tunehub.core.cli import main
from tunehub.core.cli.feedback import spreadsheet_safe
from tunehub.core.errors import ConfigError, ModelError
from tunehub.core.extending.tasks import check_task_name

from test_hub import fake_artifact


def test_an_empty_task_name_never_matches_every_task(tunehub_home):
    fake_artifact("alpha")
    fake_artifact("beta")
    result = CliRunner().invoke(main, ["models", "rm", "@v1", "--yes"])
    assert result.exit_code == 2 and "names no task" in result.stderr
    assert [a.ref for a in hub.list_artifacts()] == ["alpha@v1", "beta@v1"]
    with pytest.raises(ModelError):
        hub.list_artifacts("")


@pytest.mark.parametrize("name", ["../../x", "..", "a/b", "", " x", "x\\y", "a..b", 3, "x" * 101])
def test_task_names_that_could_escape_the_home_are_refused(name):
    with pytest.raises(ConfigError, match="is not allowed"):
        check_task_name(name, "task file t.toml")


@pytest.mark.parametrize("name", ["financial-sentiment", "acme.tickets_v2", "NER2"])
def test_ordinary_task_names_pass(name):
    assert check_task_name(name, "t") == name


def test_a_task_file_naming_a_path_publishes_nothing_outside_the_home(tmp_path, tunehub_home):
    task = tmp_path / "tasks" / "evil.toml"
    task.parent.mkdir()
    task.write_text('name = "../../escaped"\n[head]\nname = "sequence-classification"\n')
    registry = tmp_path / "registry.toml"
    registry.write_text(f'[tasks]\npaths = ["{task.parent}"]\n')
    listed = CliRunner().invoke(main, ["--registry", str(registry), "plugins", "--json"])
    assert "is not allowed" in listed.output
    result = CliRunner().invoke(main, ["--registry", str(registry), "run-task", "../../escaped"])
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert not (tmp_path / "escaped").exists() and not (tunehub_home.parent / "escaped").exists()


def test_promote_takes_versions_of_the_hub_only(tmp_path, tunehub_home):
    outside = tmp_path / "elsewhere" / "v1"
    outside.mkdir(parents=True)
    (outside / "manifest.json").write_text(json.dumps({"task": "../../pwned"}))
    result = CliRunner().invoke(main, ["models", "promote", str(outside)])
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert not list(tmp_path.rglob("serving.json"))
    inside = fake_artifact("demo")
    (inside.path / "manifest.json").write_text(json.dumps({"task": "other"}))
    assert hub.artifact_for(str(inside.path)).task == "demo"  # the hub's layout names the task
    done = CliRunner().invoke(main, ["models", "promote", str(inside.path)])
    assert done.exit_code == 0, done.output
    assert hub.serving_version("demo") == "v1"
    assert not (tunehub_home / "artifacts" / "other").exists()


def test_removing_the_serving_version_needs_force(tunehub_home):
    fake_artifact("demo")
    fake_artifact("demo")
    assert CliRunner().invoke(main, ["models", "promote", "demo@v1"]).exit_code == 0
    refused = CliRunner().invoke(main, ["models", "rm", "demo@v1", "--yes"])
    assert refused.exit_code == 2 and "--force" in refused.stderr
    assert [a.version for a in hub.list_artifacts("demo")] == ["v1", "v2"]
    assert CliRunner().invoke(main, ["models", "rm", "demo@v2", "--yes"]).exit_code == 0
    forced = CliRunner().invoke(main, ["models", "rm", "demo@v1", "--yes", "--force"])
    assert forced.exit_code == 0 and hub.list_artifacts("demo") == []


def test_clean_never_removes_a_folder_it_did_not_create(tunehub_home):
    mine = tunehub_home / "work" / "notes" / "drafts"
    mine.mkdir(parents=True)
    (mine / "important.txt").write_text("keep me")
    import os
    import time

    old = time.time() - 3600
    os.utime(mine, (old, old))
    result = CliRunner().invoke(main, ["clean"])
    assert result.exit_code == 0, result.output
    assert (mine / "important.txt").read_text() == "keep me"


@pytest.mark.parametrize("cell, shown", [("=HYPERLINK(\"x\")", "'=HYPERLINK(\"x\")"),
                                         ("+1", "'+1"), ("-2+3", "'-2+3"), ("@SUM(A1)", "'@SUM(A1)"),
                                         ("\tx", "'\tx"), ("Profit rose.", "Profit rose."), (3, 3)])
def test_csv_cells_never_start_a_spreadsheet_formula(cell, shown):
    assert spreadsheet_safe(cell) == shown


@pytest.mark.parametrize("value, seconds", [(1_700_000_000, 1_700_000_000),
                                            (1_700_000_000_000, 1_700_000_000),
                                            (1_700_000_000_000_000, 1_700_000_000),
                                            (1_700_000_000_000_000_000, 1_700_000_000)])
def test_unix_times_in_any_unit_read_as_seconds(value, seconds):
    assert monitor.parse_time(value) == pytest.approx(seconds)


def test_times_outside_the_calendar_are_refused():
    with pytest.raises(ValueError):
        monitor.parse_time(1e30)


def test_the_server_shows_no_local_paths():
    from tunehub.core.serving.serve import _public_name

    assert _public_name("/home/me/models/bert") == "bert"
    assert _public_name("./models/bert") == "bert"
    assert _public_name("minilm") == "minilm"
    assert _public_name("HuggingFaceTB/SmolLM2-135M") == "HuggingFaceTB/SmolLM2-135M"


def test_evaluating_on_the_training_file_is_warned_about_by_validate_and_run(labelled_csv):
    result = CliRunner().invoke(main, ["validate-data", "financial-sentiment", "--data",
                                       str(labelled_csv), "--eval-data", str(labelled_csv), "--json"])
    assert result.exit_code == 0, result.output
    assert "is the training file" in " ".join(result.stderr.split())
    assert any("training file" in w for w in json.loads(result.stdout)["warnings"])


def test_a_pipe_or_a_link_to_a_device_is_named_for_what_it_is(tmp_path):
    import os

    fifo = tmp_path / "stream.csv"
    os.mkfifo(fifo)
    device = tmp_path / "zero.csv"
    device.symlink_to("/dev/zero")
    for path, words in ((fifo, "named pipe"), (device, "a device")):
        result = CliRunner().invoke(main, ["validate-data", "financial-sentiment", "--data", str(path)])
        assert result.exit_code == 2 and words in result.stderr, result.output


@pytest.mark.parametrize("line, words", [
    ({"text": "Anna Berg", "spans": [{"start": True, "end": 4, "label": "PER"}]}, "integer 'start'"),
    ({"tokens": ["Anna", None], "tags": ["B-PER", "I-PER"]}, "item 2 is None"),
    ({"tokens": ["Anna", 7], "tags": ["B-PER", "O"]}, "item 2 is 7"),
])
def test_entity_rows_that_would_turn_into_garbage_are_refused(line, words, tmp_path):
    good = ({"text": "Nordea rose", "spans": [{"start": 0, "end": 6, "label": "ORG"}]}
            if "spans" in line else {"tokens": ["Nordea", "rose"], "tags": ["B-ORG", "O"]})
    path = tmp_path / "ner.jsonl"
    path.write_text("\n".join(json.dumps(x) for x in [good] * 30 + [line]) + "\n")
    result = CliRunner().invoke(main, ["validate-data", "entity-extraction", "--data", str(path)])
    assert result.exit_code == 2 and words in result.stderr, result.output


def test_an_id_of_zero_is_an_id_and_nan_ratings_are_refused(tmp_path):
    from tunehub.core.running.data import id_text

    assert [id_text(v) for v in (0, 0.0, 12.0, " 7 ", None, float("nan"))] == ["0", "0", "12", "7", "", ""]
    rows = ["user_id,item_id,rating,timestamp"] + [f"{u},{i},4,{1000 + u * 10 + i}"
                                                   for u in range(0, 6) for i in range(0, 6)]
    path = tmp_path / "ratings.csv"
    path.write_text("\n".join(rows + ["3,2,nan,5000"]) + "\n")
    items = tmp_path / "items.csv"
    items.write_text("item_id,title\n" + "".join(f"{i},Item {i}\n" for i in range(6)))
    result = CliRunner().invoke(main, ["validate-data", "recommendation-scoring", "--data", str(path),
                                       "--set", f"dataset.items={items}", "--set", "dataset.item_text=title"])
    assert result.exit_code == 2 and "not a finite number" in result.stderr, result.output


def test_a_huge_line_is_skipped_in_pieces_and_the_stream_goes_on():
    import io

    from tunehub.core.operations import monitor_io

    text = '{"a": 1}\n' + "x" * 50 + "\n" + '{"a": 2}\n'
    assert list(monitor_io._lines(io.StringIO(text), limit=20)) == ['{"a": 1}\n', None, '{"a": 2}\n']
    old = monitor_io.MAX_LINE_CHARS
    monitor_io.MAX_LINE_CHARS = 20
    try:
        items = list(monitor_io._jsonl("s", io.StringIO('{"a": 1}\n{"a": "' + "z" * 40 + '"}\n{"a": 3}\n')))
    finally:
        monitor_io.MAX_LINE_CHARS = old
    assert isinstance(items[1], monitor_io.Malformed) and "over 20 characters" in items[1].why
    assert [items[0][1]["a"], items[2][1]["a"]] == [1, 3]


def test_a_csv_row_over_the_field_limit_is_one_bad_row():
    import csv
    import io

    from tunehub.core.operations import monitor_io

    old = csv.field_size_limit(100)
    try:
        rows = list(monitor_io._csv("s", io.StringIO("time,text\n1,ok\n2," + "y" * 500 + "\n3,fine\n"), ","))
    finally:
        csv.field_size_limit(old)
    assert isinstance(rows[1], monitor_io.Malformed) and rows[2][1]["text"] == "fine"


def test_a_damaged_parquet_input_is_one_clear_line(tmp_path):
    from tunehub.core.operations import monitor_io
    from tunehub.core.errors import DataError

    broken = tmp_path / "posts.parquet"
    broken.write_bytes(b"PAR1 not really")
    with pytest.raises(DataError, match="not a readable Parquet file"):
        list(monitor_io.records(str(broken), "parquet"))
    with pytest.raises(DataError, match="no such file"):
        list(monitor_io.records(str(tmp_path / "gone.parquet"), "parquet"))


def test_a_sink_that_is_a_folder_or_a_factory_that_raises_is_one_line(tmp_path):
    from types import SimpleNamespace

    from tunehub.core.operations.sinks import FileSink, make_sinks

    with pytest.raises(ConfigError, match="is a folder"):
        FileSink(str(tmp_path))

    def broken(target, settings):
        raise RuntimeError("no credentials")

    catalog = SimpleNamespace(alert_sink=lambda name: SimpleNamespace(factory=broken))
    with pytest.raises(ConfigError, match="could not be set up.*no credentials"):
        make_sinks(["pager:x"], catalog, {})


def test_a_monitor_that_fails_mid_stream_leaves_no_half_report(tmp_path):
    from types import SimpleNamespace

    from tunehub.core.operations.monitor_run import run_monitor

    stream = tmp_path / "posts.jsonl"
    stream.write_text("".join(json.dumps({"time": 1_700_000_000 + 60 * i, "text": f"post {i}"}) + "\n"
                              for i in range(300)))
    calls = []

    def predict(texts):
        calls.append(len(texts))
        if len(calls) > 2:
            raise RuntimeError("model went away")
        return [{"label": "neutral", "probabilities": {"negative": 0.1, "neutral": 0.8,
                                                       "positive": 0.1}} for _ in texts]

    loaded = SimpleNamespace(predict=predict, artifact=SimpleNamespace(ref="financial-sentiment@v1"))
    report = tmp_path / "report"
    with pytest.raises(RuntimeError):
        run_monitor("financial-sentiment", str(stream), loaded=loaded, report_dir=report,
                    overrides=["monitor.window=1h", "monitor.batch_size=16"],
                    sinks=[f"file:{tmp_path / 'alerts.jsonl'}"])
    assert not (report / "windows.csv").exists() and not (report / "report.md").exists()
    assert not list(report.glob(".*partial"))


def test_a_file_size_limit_while_saving_is_one_error_and_leaves_nothing(tiny_model, labelled_csv,
                                                                        tunehub_home, monkeypatch):
    """`ulimit -f` hit while the weights are written: safetensors raises its own error."""
    import safetensors.torch
    from safetensors import SafetensorError

    def too_large(*args, **kwargs):
        raise SafetensorError("Error while serializing: IoError(File too large (os error 27))")

    monkeypatch.setattr(safetensors.torch, "save_file", too_large)
    result = CliRunner().invoke(main, ["--quiet", "run-task", "financial-sentiment", "--data",
                                       str(labelled_csv), "--base-model", str(tiny_model),
                                       "--set", "train.max_steps=1", "--set", "train.save_checkpoints=false"])
    assert result.exit_code == 2 and "Traceback" not in result.output
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and "ulimit -f" in errors[0]
    assert not (tunehub_home / "artifacts" / "financial-sentiment").exists()
