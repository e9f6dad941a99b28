"""`app monitor`: windows, the default alert rule, streaming, bad input, report, sinks."""
from __future__ import annotations

import io
import json
import os
import random
import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from click.testing import CliRunner

from tunehub.core.running import runner
from tunehub.core.cli import main
from tunehub.core.errors import ConfigError
from tunehub.core.operations.monitor import (
    SETTINGS as SCHEMA,
    WindowMonitor,
    parse_duration,
    parse_time,
)
from tunehub.core.operations.monitor_run import run_monitor

from _trained import shared_artifact

DAY0 = datetime(2024, 3, 1, tzinfo=timezone.utc)
NEGATIVE, OTHER = "Shares fell after the warning.", "The company reported quarterly sales."
SETTINGS = {key.split(".", 1)[1]: value for key, value in SCHEMA.items()
            if not key.startswith("monitor.columns.")}
SETTINGS["columns"] = {"time": "time", "text": "text", "entity": "entity"}


class KeywordModel:
    """Stands in for a loaded classifier: 'fell' is negative, anything else neutral."""

    class artifact:
        ref = "financial-sentiment@v7"

    class predictor:
        labels = ["negative", "neutral", "positive"]

    def predict(self, texts):
        out = []
        for text in texts:
            negative = "fell" in text
            out.append({"label": "negative" if negative else "neutral",
                        "probabilities": {"negative": 0.9 if negative else 0.05,
                                          "neutral": 0.1 if negative else 0.9, "positive": 0.0}})
        return out


def stream(days=10, surge=("BETA", 7), per_day=30, seed=3):
    """Rows for three entities, ~10% negative, and a 70%-negative day for one entity."""
    rng = random.Random(seed)
    rows = []
    for day in range(days):
        for entity in ("ALFA", "BETA", "GAMA"):
            share = 0.7 if (entity, day) == surge else 0.1
            for i in range(per_day):
                moment = DAY0 + timedelta(days=day, minutes=rng.randrange(24 * 60))
                rows.append({"time": moment.isoformat(), "entity": entity,
                             "text": f"{NEGATIVE if rng.random() < share else OTHER} #{i}"})
    rows.sort(key=lambda r: r["time"])
    return rows


def write_jsonl(path: Path, rows, extra_lines=()) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows) + "".join(extra_lines))
    return path


@pytest.fixture
def keyword_model(monkeypatch):
    monkeypatch.setattr(runner, "load", lambda task, **kwargs: KeywordModel())


def test_durations_and_times():
    assert parse_duration("1d") == 86400 and parse_duration("90s") == 90 and parse_duration("1.5h") == 5400
    with pytest.raises(ConfigError, match="monitor.window = '1x'"):
        parse_duration("1x")
    assert parse_time("2024-03-01T00:00:00Z") == DAY0.timestamp()
    assert parse_time("2024-03-01 00:00:00") == DAY0.timestamp()  # no zone: UTC
    assert parse_time(DAY0.timestamp() * 1000) == DAY0.timestamp()  # milliseconds
    with pytest.raises(ValueError):
        parse_time("yesterday")


def test_planted_surge_fires_exactly_that_alert(tmp_path, keyword_model):
    data = write_jsonl(tmp_path / "news.jsonl", stream())
    alerts = tmp_path / "alerts.jsonl"
    result = run_monitor("financial-sentiment", str(data), sinks=[f"file:{alerts}"])
    found = [json.loads(line) for line in alerts.read_text().splitlines()]
    assert len(found) == 1 and result.counts.alerts == 1
    alert = found[0]
    assert alert["entity"] == "BETA"
    assert alert["window_start"] == "2024-03-08T00:00:00Z" and alert["window_end"] == "2024-03-09T00:00:00Z"
    assert alert["volume"] == 30 and alert["negative_share"] > 0.5 > alert["baseline_share"]
    assert alert["score"] >= 3 and len(alert["examples"]) == 3
    assert all("fell" in text for text in alert["examples"])
    assert {"entity", "window_start", "window_end", "negative_share", "baseline_share", "volume",
            "score", "examples"} <= set(alert)
    assert result.counts.windows == 30 and result.counts.malformed == 0


def test_flat_stream_fires_none(tmp_path, keyword_model):
    data = write_jsonl(tmp_path / "news.jsonl", stream(surge=("nobody", -1)))
    result = run_monitor("financial-sentiment", str(data), sinks=[f"file:{tmp_path / 'a.jsonl'}"])
    assert result.counts.alerts == 0 and result.counts.scored == 900
    assert (tmp_path / "a.jsonl").read_text() == ""


def test_window_and_rule_are_configurable(tmp_path, keyword_model):
    data = write_jsonl(tmp_path / "news.jsonl", stream())
    hourly = run_monitor("financial-sentiment", str(data), overrides=["monitor.window=12h"],
                         sinks=[f"file:{tmp_path / 'a.jsonl'}"])
    assert hourly.counts.windows == 60  # 10 days x 2 windows x 3 entities
    strict = run_monitor("financial-sentiment", str(data), sinks=[f"file:{tmp_path / 'b.jsonl'}"],
                         overrides=["monitor.method=ratio", "monitor.threshold=50"])
    assert strict.counts.alerts == 0


def test_malformed_and_out_of_order_rows_are_counted(tmp_path, keyword_model):
    rows = stream(days=3)
    rows[5], rows[6] = rows[6], rows[5]  # one row out of order, in an open window
    late = {"time": DAY0.isoformat(), "entity": "ALFA", "text": "late news"}
    bad = ["{not json\n", '{"time": "someday", "entity": "ALFA", "text": "x"}\n',
           '{"time": "2024-03-05T00:00:00Z", "entity": "ALFA", "text": ""}\n', "[1, 2]\n",
           json.dumps(late) + "\n"]
    data = write_jsonl(tmp_path / "news.jsonl", rows, bad)
    result = run_monitor("financial-sentiment", str(data), sinks=[f"file:{tmp_path / 'a.jsonl'}"],
                         report_dir=tmp_path / "report")
    c = result.counts
    assert (c.rows, c.malformed, c.late, c.out_of_order) == (len(rows) + 5, 4, 1, 1)
    assert c.scored == len(rows)
    assert any("line 271" in p and "not JSON" in p for p in c.problems)
    report = (tmp_path / "report" / "report.md").read_text()
    assert "| rows read |" in report and "someday" in report
    assert (tmp_path / "report" / "trend.png").stat().st_size > 1000
    windows = (tmp_path / "report" / "windows.csv").read_text().splitlines()
    assert windows[0].startswith("entity,window_start") and len(windows) == 1 + 9


def test_csv_input_without_entity_column(tmp_path, keyword_model):
    rows = stream(days=9)
    lines = ["published_at,headline"] + [f"{r['time']},\"{r['text']}\"" for r in rows]
    data = tmp_path / "news.csv"
    data.write_text("\n".join(lines) + "\n")
    result = run_monitor("financial-sentiment", str(data), sinks=[f"file:{tmp_path / 'a.jsonl'}"],
                         overrides=["monitor.columns.time=published_at",
                                    "monitor.columns.text=headline"])
    assert set(result.entities) == {"(all)"} and result.counts.windows == 9


def test_rule_unit_surge_and_baseline_needs_volume():
    fired = []
    monitor = WindowMonitor(SETTINGS, _rule(), lambda stats, alert: fired.append(alert))
    day = 86400
    for d in range(8):
        for i in range(20):
            negative = i < (15 if d == 7 else 2)
            monitor.add(d * day + i, "X", "negative" if negative else "neutral",
                        0.9 if negative else 0.1, f"t{i}")
    monitor.finish()
    alerts = [a for a in fired if a]
    assert len(alerts) == 1 and alerts[0]["window_start"] == "1970-01-08T00:00:00Z"
    assert alerts[0]["baseline_share"] == 0.1 and alerts[0]["volume"] == 20
    assert fired[0] is None  # the first window has no baseline yet


def _rule():
    from tunehub.core.operations.monitor import negative_share_rule

    return negative_share_rule


def test_bad_input_is_one_line_before_any_model_loads(tmp_path, monkeypatch):
    def no_model(*args, **kwargs):
        raise AssertionError("the model must not load")

    monkeypatch.setattr(runner, "load", no_model)
    data = write_jsonl(tmp_path / "news.jsonl", stream(days=1))
    cli = CliRunner()
    cases = [
        (["--set", "monitor.window=1x"], "monitor.window = '1x' is not a duration"),
        (["--set", "monitor.columns.time=published_at"], "no 'published_at' column for the time role"),
        (["--set", "monitor.columns.entity=ticker"], "no 'ticker' column for the entity role"),
        (["--set", "monitor.rule=nope"], "monitor.rule: Unknown alert rule 'nope'"),
        (["--sink", "pager:x"], "--sink pager:x: Unknown alert sink 'pager'"),
    ]
    for extra, words in cases:
        out = cli.invoke(main, ["monitor", "financial-sentiment", "--input", str(data), *extra])
        assert out.exit_code == 2, out.output
        assert words in out.output and "Traceback" not in out.output
    out = cli.invoke(main, ["monitor", "customer-service-qa", "--input", str(data)])
    assert out.exit_code == 2 and "declares no monitorable outputs" in out.output


def test_cli_with_the_tiny_model_writes_alerts_summary_and_report(tmp_path, tiny_model,
                                                                  tmp_path_factory):
    artifact = shared_artifact(tiny_model, tmp_path_factory)
    data = write_jsonl(tmp_path / "news.jsonl", stream(days=3), ["oops\n"])
    out = CliRunner().invoke(main, [
        "monitor", "financial-sentiment", "--input", str(data), "--model", artifact,
        "--alerts", str(tmp_path / "alerts.jsonl"), "--report", str(tmp_path / "rep"), "--json",
        "--set", "monitor.min_volume=1", "--set", "monitor.min_baseline_volume=1",
        "--set", "monitor.threshold=-100", "--set", "monitor.min_increase=-1"])
    assert out.exit_code == 0, out.output
    summary = json.loads(out.stdout)
    assert summary["rows"] == 271 and summary["malformed"] == 1 and summary["scored"] == 270
    assert summary["model"] == "financial-sentiment@v1"
    lines = (tmp_path / "alerts.jsonl").read_text().splitlines()
    assert len(lines) == summary["alerts"] == 6  # every window after the first, per entity
    assert (tmp_path / "rep" / "report.md").is_file()


def test_stdin_stream_alerts_as_soon_as_the_window_closes(tmp_path, keyword_model, monkeypatch):
    read_fd, write_fd = os.pipe()
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(os.fdopen(read_fd, "rb")))
    alerts = tmp_path / "alerts.jsonl"
    rows = stream()
    done = {}

    def monitor():
        done["result"] = run_monitor("financial-sentiment", "-", sinks=[f"file:{alerts}"],
                                     overrides=["monitor.idle_flush_s=0.1"])

    thread = threading.Thread(target=monitor, daemon=True)
    thread.start()
    writer = os.fdopen(write_fd, "w")
    first_after = next(i for i, r in enumerate(rows) if r["time"] >= "2024-03-09")
    for row in rows[:first_after + 1]:  # up to the first row after the surge day
        writer.write(json.dumps(row) + "\n")
    writer.flush()
    deadline = time.monotonic() + 20
    while not (alerts.exists() and alerts.read_text()) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert thread.is_alive()  # the stream is still open ...
    assert json.loads(alerts.read_text())["entity"] == "BETA"  # ... and the alert is out
    from tunehub.core.operations.monitor_state import read_state

    while not read_state("financial-sentiment")["alerts"] and time.monotonic() < deadline:
        time.sleep(0.05)
    state = read_state("financial-sentiment")  # what the dashboard shows, while it runs
    assert [a["entity"] for a in state["alerts"]] == ["BETA"] and state["runs"][0]["status"] == "running"
    writer.close()
    thread.join(timeout=20)
    assert done["result"].counts.rows == first_after + 1
    assert read_state("financial-sentiment")["runs"][0]["status"] == "finished"
