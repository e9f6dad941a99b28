"""What a user sees: phase lines in logs, --quiet, one meaning per flag, --json everywhere."""
from __future__ import annotations

import json
import re
from pathlib import Path

from click.testing import CliRunner

from tunehub.core.cli import main

from conftest import tiny_overrides

STAMP = re.compile(r"^\[\d\d:\d\d:\d\d\] ")


def run_task(*extra: str, data: Path, model: Path):
    sets = [arg for item in tiny_overrides() for arg in ("--set", item)]
    return CliRunner().invoke(main, [*extra, "run-task", "financial-sentiment", "--data", str(data),
                                     "--base-model", str(model), *sets, "--json"])


def test_a_run_in_a_log_prints_timestamped_phases_and_a_data_summary(tiny_model, labelled_csv):
    result = run_task(data=labelled_csv, model=tiny_model)
    assert result.exit_code == 0, result.output
    lines = result.stderr.splitlines()
    stamped = [line for line in lines if STAMP.match(line)]
    text = "\n".join(stamped)
    for expected in ("data: train rows", "fine-tuning", "training: ",
                     "saved financial-sentiment@v1 in "):
        assert expected in text, (expected, result.stderr)
    json.loads(result.stdout)  # stdout stays one JSON object


def test_a_phase_announces_itself_in_a_log_after_a_second(capsys, monkeypatch):
    import time

    from tunehub.core.running import progress

    monkeypatch.setattr(progress, "ANNOUNCE_AFTER", 0.2)
    with progress.phase("quick step"):
        pass
    with progress.phase("slow step"):
        time.sleep(0.5)
    err = capsys.readouterr().err
    assert "quick step" not in err  # fast phases (and checks that fail at once) stay silent
    lines = [line for line in err.splitlines() if STAMP.match(line)]
    assert lines[0].endswith("slow step ...") and "slow step: done in 0." in lines[1]


def test_the_data_summary_sums_up_many_labels_in_a_phrase(capsys):
    from tunehub.core.running import progress

    many = {f"intent_{i:02d}": 10 + i for i in range(77)}
    progress.summary("data", {"train rows": 1000, "train labels": many,
                              "eval labels": {"negative": 3, "positive": 5}})
    line = capsys.readouterr().err
    assert "train labels 77 labels, 10 to 86 rows each (fewest: intent_00)" in line
    assert "eval labels negative: 3, positive: 5" in line and "intent_05" not in line
    assert "{" not in line  # never a Python dict


def test_readable_turns_mappings_and_lists_into_text():
    from tunehub.core.running.progress import readable

    assert readable({"source": "a.csv", "rows": 3}) == "source: a.csv, rows: 3"
    assert readable({"hr": {"text": 0.1, "fused": 0.2}, "k": [1, 2]}) == (
        "hr: (text: 0.1, fused: 0.2), k: (1, 2)")
    assert readable(["a", "b"]) == "a, b" and readable({}) == "none" and readable(0.5) == "0.5"


def terminal(monkeypatch):
    """progress' stderr console as a terminal whose output the test reads."""
    import io

    from rich.console import Console

    from tunehub.core.running import progress

    screen = Console(file=io.StringIO(), force_terminal=True, width=200, color_system=None)
    monkeypatch.setattr(progress, "console", lambda: screen)
    return screen.file


def test_bracketed_text_is_shown_on_a_terminal_never_read_as_markup(monkeypatch):
    from tunehub.core.running import progress

    screen = terminal(monkeypatch)
    with progress.phase("re-ranker on [head.rerank=auto]"):
        pass
    progress.warn("set [bold]head.k[/bold] lower")
    progress.say("fusion [text=1]")
    shown = screen.getvalue()
    assert "done re-ranker on [head.rerank=auto]" in shown
    assert "warning: set [bold]head.k[/bold] lower" in shown and "fusion [text=1]" in shown


def test_run_summary_shows_brackets_and_dict_notes_as_text_or_tables(capsys, tmp_path):
    from tunehub.core.cli.output import print_result
    from tunehub.core.running.report import note_lines
    from tunehub.core.running.results import RunResult

    notes = {"re-ranker": "on (auto) [head.rerank=auto]; on 40 validation questions",
             "feedback": {"source": "store.sqlite3", "added": 2},
             "fusion on validation": {"text only": {"ndcg@10": 0.1},
                                      "fused (chosen)": {"ndcg@10": 0.2}},
             "empty": None}
    result = RunResult("demo", str(tmp_path / "[v1]"), "accuracy", {"accuracy": 0.5}, notes=notes)
    print_result(result)
    out = capsys.readouterr().out
    assert "re-ranker: on (auto) [head.rerank=auto]; on 40" in out
    assert "feedback: source: store.sqlite3, added: 2" in out
    assert "{" not in out and "empty" not in out
    assert "fused (chosen)" in out and "0.2000" in out  # rows of records: a table
    assert f"artifact {tmp_path / '[v1]'}" in out
    report = "\n".join(note_lines(notes))
    assert "- re-ranker: on (auto) [head.rerank=auto]" in report
    assert "- feedback: source: store.sqlite3, added: 2" in report
    assert "**fusion on validation**" in report and "| fused (chosen) | 0.2000 |" in report
    assert "{" not in report


def test_models_never_breaks_a_version_name(tunehub_home):
    from test_hub import fake_artifact

    for task in ("recommendation-scoring", "customer-service-answers"):
        fake_artifact(task)
    for columns in ("80", "120"):
        shown = CliRunner(env={"COLUMNS": columns}).invoke(main, ["models"])
        assert shown.exit_code == 0, shown.output
        words = re.findall(r"[^\s│┃]+", shown.stdout)
        pieces = [w for w in words if w.startswith(("recomm", "custom"))]
        assert sorted(pieces) == ["customer-service-answers@v1", "recommendation-scoring@v1"], (
            columns, shown.stdout)  # each name once, whole: no task column folded mid-word
        assert words.count("accuracy") == 2  # the metric's name whole too


def test_quiet_prints_no_progress(tiny_model, labelled_csv):
    result = run_task("--quiet", data=labelled_csv, model=tiny_model)
    assert result.exit_code == 0, result.output
    assert not [line for line in result.stderr.splitlines() if STAMP.match(line)]
    assert json.loads(result.stdout)["version"] == "v1"


def test_flags_mean_one_thing_and_old_spellings_still_work(tiny_model, labelled_csv, tmp_path,
                                                           tunehub_home):
    sets = [arg for item in tiny_overrides() for arg in ("--set", item)]
    old = CliRunner().invoke(main, ["-q", "run-task", "financial-sentiment", "--data",
                                    str(labelled_csv), "--model", str(tiny_model), *sets, "--json"])
    assert old.exit_code == 0 and "--model is deprecated here; use --base-model" in old.stderr
    manifest = json.loads((tunehub_home / "artifacts/financial-sentiment/v1/manifest.json").read_text())
    assert manifest["data"]["train"] == str(labelled_csv.resolve())  # traceable from anywhere

    evaluated = CliRunner().invoke(main, ["-q", "evaluate", "financial-sentiment", "--input",
                                          str(labelled_csv), "--no-report", "--json"])
    assert evaluated.exit_code == 0, evaluated.output
    assert set(json.loads(evaluated.stdout)["metrics"]) == {"accuracy", "macro_f1"}
    source = tmp_path / "in.csv"
    source.write_text("text\nProfit rose.\n")
    predicted = CliRunner().invoke(main, ["-q", "predict", "financial-sentiment", "--data", str(source)])
    assert predicted.exit_code == 0 and "prediction" in predicted.stdout

    wide = CliRunner().invoke(main, ["models", "--all-metrics"])
    assert wide.exit_code == 0 and "macro_f1" in wide.stdout and "financial-sentiment@v1" in wide.stdout
    removed = CliRunner().invoke(main, ["models", "rm", "financial-sentiment@v1", "--yes", "--json"])
    assert json.loads(removed.stdout)["removed"] == ["financial-sentiment@v1"]
