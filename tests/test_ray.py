"""Batch scoring on Ray Data (`--engine ray`): one local Ray of 2 workers for the module, on
the tiny classifier. Every row comes out once, with its id, scored as the in-process path
scores it; bad flags and files stop before Ray starts."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

ray = pytest.importorskip("ray", reason="the Ray tests need Ray Data: pip install 'tunehub[ray]'")
pytest.importorskip("ray.data", reason="the Ray tests need Ray Data: pip install 'tunehub[ray]'")

from tunehub.core.cli import main  # noqa: E402
from tunehub.core.running import runner  # noqa: E402
from tunehub.core.serving import ray_engine  # noqa: E402
from tunehub.core.errors import BatchError  # noqa: E402
from tunehub.core.serving.ray_engine import RayEngine  # noqa: E402

from _trained import shared_artifact  # noqa: E402
from conftest import SENTENCES, write_csv  # noqa: E402

TEXTS = [text for group in SENTENCES.values() for text in group]  # 18 sentences


@pytest.fixture(scope="module")
def local_ray():
    """One local Ray for the module: 2 workers and a CPU for the readers and writers."""
    ray.init(num_cpus=3, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def artifact(tiny_model, tmp_path_factory) -> str:
    return shared_artifact(tiny_model, tmp_path_factory)


def invoke(*args: str, code: int = 0):
    result = CliRunner().invoke(main, list(args))
    assert result.exit_code == code, result.output
    return result


def expected(artifact: str, texts: list[str]) -> dict[str, dict]:
    """The in-process path's prediction of each text."""
    return dict(zip(texts, runner.predict("financial-sentiment", texts, model=artifact)))


def test_a_file_on_two_workers_gives_every_row_once_with_its_id(local_ray, artifact, tmp_path):
    import pyarrow.parquet as pq

    rows = [[f"{i:03d}", f"{TEXTS[i % len(TEXTS)]} ({i})"] for i in range(40)]
    source = write_csv(tmp_path / "news.csv", ["id", "text"], rows)
    out = tmp_path / "scored.parquet"
    summary = json.loads(invoke("predict", "financial-sentiment", "--model", artifact,
                                "--input", str(source), "--output", str(out), "--engine", "ray",
                                "--workers", "2", "--batch-size", "8", "--json").stdout)
    assert summary["rows_in"] == summary["rows_out"] == 40 and summary["workers"] == 2
    assert summary["format"] == "parquet" and summary["rows_per_second"] > 0
    assert summary["worker_peak_rss_mib"] and min(summary["worker_peak_rss_mib"].values()) > 50
    written = pq.read_table(out).to_pylist()  # the folder of shards, _summary.json skipped
    assert sorted(r["id"] for r in written) == [r[0] for r in rows]  # "007" stays "007"
    assert all("row_id" not in r for r in written)
    want = expected(artifact, [r[1] for r in rows])
    for row in written:
        assert row["prediction_label"] == want[row["text"]]["label"]
        assert json.loads(row["prediction_probabilities"]) == pytest.approx(
            want[row["text"]]["probabilities"], abs=1e-4)
    assert json.loads((out / "_summary.json").read_text()) == summary
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no staging left


def test_a_folder_of_csv_and_jsonl_to_jsonl_shards_with_stable_row_ids(local_ray, artifact,
                                                                       tmp_path):
    folder = tmp_path / "posts"
    (folder / "day2").mkdir(parents=True)
    write_csv(folder / "day1.csv", ["text"], [[t] for t in TEXTS[:7]])
    (folder / "day2" / "feed.jsonl").write_text(
        "".join(json.dumps({"text": t, "n": i}) + "\n" for i, t in enumerate(TEXTS[7:])))
    (folder / "_SUCCESS").write_text("")  # markers and hidden files are not data
    (folder / ".feed.jsonl.crc").write_text("x")
    out = tmp_path / "scored.jsonl"
    invoke("predict", "financial-sentiment", "--model", artifact, "--input", str(folder),
           "--output", str(out), "--engine", "ray", "--workers", "2", "--batch-size", "4")
    lines = [json.loads(line) for shard in sorted(out.glob("part-*.jsonl"))
             for line in shard.read_text().splitlines()]
    ids = {line["row_id"]: line for line in lines}
    assert len(lines) == len(ids) == len(TEXTS)
    assert set(ids) == ({f"day1.csv:{n}" for n in range(2, 9)}  # CSV rows as an editor numbers them
                        | {f"day2/feed.jsonl:{n}" for n in range(1, 12)})
    assert ids["day1.csv:2"]["text"] == TEXTS[0] and ids["day2/feed.jsonl:1"]["n"] == 0
    want = expected(artifact, TEXTS)
    for line in lines:
        assert line["prediction"]["label"] == want[line["text"]]["label"]
        assert line["prediction"]["probabilities"] == pytest.approx(
            want[line["text"]]["probabilities"], abs=1e-4)


def test_evaluate_on_ray_gives_the_in_process_metrics(local_ray, artifact, tmp_path):
    rows = [[text, label] for label, texts in SENTENCES.items() for text in texts]
    data = write_csv(tmp_path / "test.csv", ["text", "label"], rows)
    args = ["evaluate", "financial-sentiment", "--model", artifact, "--data", str(data),
            "--no-report", "--json"]
    here = json.loads(invoke(*args).stdout)
    on_ray = json.loads(invoke(*args, "--engine", "ray", "--workers", "2",
                               "--batch-size", "5").stdout)
    assert on_ray["metrics"] == pytest.approx(here["metrics"])
    assert on_ray["details"]["confusion_matrix"] == here["details"]["confusion_matrix"]
    assert sum(map(sum, on_ray["details"]["confusion_matrix"]["matrix"])) == len(rows)


def test_monitor_on_ray_raises_the_in_process_alerts(local_ray, artifact, tmp_path):
    news = tmp_path / "news.jsonl"
    with news.open("w") as out:
        for day in range(4):
            for i in range(12):
                text = TEXTS[(day * 12 + i) % len(TEXTS)]
                out.write(json.dumps({"time": f"2024-03-{day + 1:02d}T{i:02d}:00:00Z",
                                      "entity": "ACME" if i % 2 else "BOLT", "text": text}) + "\n")
        out.write("not json\n")
    common = ["monitor", "financial-sentiment", "--input", str(news), "--model", artifact,
              "--json", "--no-state", "--set", "monitor.min_volume=1",
              "--set", "monitor.min_baseline_volume=1", "--set", "monitor.threshold=-100",
              "--set", "monitor.min_increase=-1"]
    here = json.loads(invoke(*common, "--alerts", str(tmp_path / "here.jsonl")).stdout)
    on_ray = json.loads(invoke(*common, "--alerts", str(tmp_path / "ray.jsonl"),
                               "--engine", "ray", "--workers", "2").stdout)
    assert on_ray == here and here["scored"] == 48 and here["malformed"] == 1
    assert here["alerts"] == 6  # every window after the first, per entity
    assert (tmp_path / "ray.jsonl").read_text() == (tmp_path / "here.jsonl").read_text()


def test_rows_that_do_not_add_up_fail_the_job_and_write_nothing(local_ray, artifact, tmp_path):
    from dataclasses import replace

    from tunehub.core.extending.plugins import load_catalog

    source = write_csv(tmp_path / "news.csv", ["text"], [[t] for t in TEXTS[:5]])
    parts = ray_engine.scan(source, None, {"text": "text"}, "text", "id")
    assert [part.rows for part in parts] == [5]
    catalog = load_catalog()
    version = runner.version_config("financial-sentiment", model=artifact, catalog=catalog)
    out = tmp_path / "scored"
    with RayEngine(workers=1) as engine:
        job = engine.job("financial-sentiment", *version, catalog)
        with pytest.raises(BatchError, match="6 rows went in and 5 came out: 1 lost"):
            engine.predict_files(job, [replace(parts[0], rows=6)], out, "parquet", "id")
    assert BatchError.exit_code == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["news.csv"]  # no output, no staging


BAD = [
    (["--workers", "2"], "--workers needs --engine ray"),
    (["--engine", "ray", "--workers", "0"], "0 is not in the range x>=1"),
    (["--engine", "ray"], "give --output DIR"),
    (["--engine", "ray", "--output", "{tmp}/out.csv"], "writes .parquet or .jsonl shards"),
    (["--engine", "ray", "--output", "{tmp}/taken"], "already exists"),
    (["--engine", "ray", "--output", "{tmp}/nowhere/out.jsonl"], "create it first"),
    (["--engine", "ray", "--input", "{tmp}", "--output", "{tmp}/out"], "is inside --input"),
    (["--engine", "ray", "--output", "{tmp}/o", "--address", "127.0.0.1:1"], "nothing answers at"),
    (["--engine", "ray", "--output", "{tmp}/o", "--address", "head"], "give HOST:PORT"),
    (["--id-column", "key", "--output", "{tmp}/o.csv"], "--id-column needs --engine ray"),
]


@pytest.mark.parametrize("extra, words", BAD)
def test_bad_flags_are_one_line_before_ray_starts(artifact, tmp_path, monkeypatch, extra, words):
    monkeypatch.setattr(RayEngine, "start", lambda self: pytest.fail("Ray started"))
    (tmp_path / "taken").mkdir()
    source = write_csv(tmp_path / "in.csv", ["text"], [["Profit rose."]])
    result = invoke("predict", "financial-sentiment", "--model", artifact, "--input",
                    str(source), *[a.format(tmp=tmp_path) for a in extra], code=2)
    assert words in result.output and "Traceback" not in result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.csv", "taken"]


def test_bad_input_is_named_before_ray_starts(artifact, tmp_path, monkeypatch):
    monkeypatch.setattr(RayEngine, "start", lambda self: pytest.fail("Ray started"))
    folder = tmp_path / "posts"
    folder.mkdir()
    write_csv(folder / "a.csv", ["id", "text"], [["1", "Profit rose."], ["2", " "], ["3", "Up."]])
    ray_args = ["--engine", "ray", "--output", str(tmp_path / "out.jsonl")]
    cases = [
        (["predict", "--input", str(folder), *ray_args], "a.csv, row 3: empty 'text'"),
        (["predict", "--input", str(tmp_path / "missing.csv"), *ray_args], "no such file"),
        (["predict", "--input", str(folder)], "is a folder: give one file, or score the folder "
                                              "with --engine ray"),
        (["predict", "Profit rose.", "--engine", "ray"], "instead of TEXT arguments"),
        (["monitor", "--input", "-", "--engine", "ray"], "--engine ray scores a file"),
    ]
    for args, words in cases:
        command, *rest = args
        result = invoke(command, "financial-sentiment", "--model", artifact, *rest, code=2)
        assert words in result.output and "Traceback" not in result.output, args
    (folder / "notes.txt").write_text("not data")
    result = invoke("predict", "financial-sentiment", "--model", artifact, "--input",
                    str(folder), *ray_args, code=2)
    assert "notes.txt is not a data file" in result.output
    labelled = write_csv(tmp_path / "test.csv", ["text", "label"], [["Up.", "positive"]])
    result = invoke("evaluate", "financial-sentiment", "--model", artifact, "--data",
                    str(labelled), "--engine", "ray", "--quantize", "int8", code=2)
    assert "--quantize compares int8 with fp32 in one process" in result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["posts", "test.csv"]


def test_without_ray_installed_one_line_names_the_extra(artifact, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` now fails
    source = write_csv(tmp_path / "in.csv", ["text"], [["Profit rose."]])
    for command in (["predict", "--input", str(source), "--output", str(tmp_path / "o")],
                    ["evaluate"], ["monitor", "--input", str(source)]):
        name, *rest = command
        result = invoke(name, "financial-sentiment", "--model", artifact, *rest,
                        "--engine", "ray", code=2)
        assert "pip install 'tunehub[ray]'" in result.output, command
        assert "Traceback" not in result.output
    assert not (tmp_path / "o").exists()
