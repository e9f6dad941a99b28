"""A model below one of its baselines on the primary metric says so: one line on stderr and
stdout, a bold line in report.md, a `below_baseline` list in `--json`."""
from __future__ import annotations

import json
import textwrap
from pathlib import Path

from click.testing import CliRunner

from tunehub.core.cli import main
from tunehub.core.running.report import render
from tunehub.core.running.results import RunResult

from conftest import tiny_overrides, write_csv

BASELINES = '''
from tunehub.plugin import hookimpl


def oracle(data, config):
    truth = list(data.eval.labels)
    return {"labels": data.info["labels"], "y_true": truth, "y_pred": truth}


def always_wrong(data, config):
    truth, n = list(data.eval.labels), len(data.info["labels"])
    return {"labels": data.info["labels"], "y_true": truth, "y_pred": [(y + 1) % n for y in truth]}


@hookimpl
def register_baselines(register):
    register("oracle", oracle, description="the true labels")
    register("always-wrong", always_wrong, description="a wrong label every time")
'''


def registry(tmp_path: Path) -> Path:
    (tmp_path / "baselines.py").write_text(textwrap.dedent(BASELINES))
    path = tmp_path / "registry.toml"
    path.write_text('[plugins]\npaths = ["baselines.py"]\n')
    return path


def run(tmp_path, tiny_model, labelled_csv, baselines: str, *extra: str):
    args = ["--registry", str(registry(tmp_path)), "run-task", "financial-sentiment", "--data",
            str(labelled_csv), "--base-model", str(tiny_model), "--set", f"baselines={baselines}"]
    for item in tiny_overrides():
        args += ["--set", item]
    result = CliRunner().invoke(main, [*args, *extra])
    assert result.exit_code == 0, result.output
    return result


def test_a_model_below_a_baseline_says_so_everywhere(tmp_path, tiny_model, labelled_csv):
    out = run(tmp_path, tiny_model, labelled_csv, "oracle,always-wrong")
    warned = [line for line in out.stderr.splitlines() if "below baseline" in line]
    assert len(warned) == 1 and warned[0].startswith("warning: below baseline: accuracy ")
    assert "1.0000 for oracle (-" in warned[0] and "always-wrong" not in warned[0]
    shown = [line for line in out.stdout.splitlines() if "below baseline" in line]
    assert len(shown) == 1 and shown[0] == warned[0].removeprefix("warning: ")
    folder = Path(out.stdout.split("artifact ")[-1].strip())
    report = (folder / "report.md").read_text()
    metrics_at, data_at = report.index("## Metrics"), report.index("## Data")
    line = next(text for text in report.splitlines() if text.startswith("**Below baseline:**"))
    assert metrics_at < report.index(line) < data_at  # right under the metrics table
    assert line == f"**Below baseline:** {shown[0].removeprefix('below baseline: ')}"

    # `app evaluate` on the run's own evaluation rows compares with the run's baselines
    reg = ["--registry", str(registry(tmp_path))]
    evaluated = CliRunner().invoke(main, [*reg, "evaluate", "financial-sentiment", "--json"])
    assert evaluated.exit_code == 0, evaluated.output
    data = json.loads(evaluated.stdout)
    [below] = data["below_baseline"]
    assert below["baseline"] == "oracle" and below["metric"] == "accuracy"
    assert below["baseline_value"] == 1.0 and below["model"] == data["metrics"]["accuracy"]
    assert below["difference"] == round(below["model"] - 1.0, 6) < 0
    assert set(data["baselines"]) == {"oracle", "always-wrong"}
    assert "warning: below baseline: accuracy" in evaluated.stderr
    written = Path(data["report"]).read_text()
    assert "**Below baseline:** accuracy" in written

    # ... and on other rows with none: baselines scored elsewhere say nothing about these
    other = write_csv(tmp_path / "other.csv", ["text", "label"],
                      [["Profit fell.", "negative"], ["Sales rose.", "positive"],
                       ["The office is in Oslo.", "neutral"]])
    elsewhere = CliRunner().invoke(main, [*reg, "evaluate", "financial-sentiment", "--data",
                                          str(other), "--json"])
    assert elsewhere.exit_code == 0, elsewhere.output
    data = json.loads(elsewhere.stdout)
    assert data["baselines"] == {} and data["below_baseline"] == []


def test_run_task_json_lists_the_baselines_ahead(tmp_path, tiny_model, labelled_csv):
    out = run(tmp_path, tiny_model, labelled_csv, "always-wrong,oracle", "--json")
    data = json.loads(out.stdout)  # stdout holds the one JSON object, the warning is on stderr
    assert [b["baseline"] for b in data["below_baseline"]] == ["oracle"]
    assert data["below_baseline"][0]["baseline_value"] == data["baselines"]["oracle"]["accuracy"]
    assert "warning: below baseline: accuracy" in out.stderr


def test_a_model_above_every_baseline_prints_no_line(tmp_path, tiny_model, labelled_csv):
    out = run(tmp_path, tiny_model, labelled_csv, "always-wrong", "--json")
    data = json.loads(out.stdout)
    assert data["below_baseline"] == [] and data["baselines"]["always-wrong"]["accuracy"] == 0.0
    assert "below baseline" not in out.stderr.lower()
    assert "Below baseline" not in (Path(data["artifact"]) / "report.md").read_text()


def result(primary: str, model: float, higher: bool = True, **baselines: float) -> RunResult:
    return RunResult("demo", None, primary, {primary: model, "other": 0.5},
                     {name.replace("_", "-"): {primary: value, "other": 0.9}
                      for name, value in baselines.items()}, higher_is_better=higher)


def test_every_beating_baseline_is_named_best_first_with_its_gap():
    found = result("ndcg@10", 0.353, ease=0.412, itemknn=0.403, popularity=0.04, same=0.353)
    assert [b["baseline"] for b in found.below_baseline] == ["ease", "itemknn"]  # a tie is not below
    assert found.below_baseline_line() == (
        "ndcg@10 0.3530 for the model, 0.4120 for ease (-0.0590), 0.4030 for itemknn (-0.0500)")
    assert found.to_json()["below_baseline"][0] == {
        "baseline": "ease", "metric": "ndcg@10", "model": 0.353, "baseline_value": 0.412,
        "difference": -0.059}
    above = result("ndcg@10", 0.5, ease=0.412)
    assert above.below_baseline == [] and above.below_baseline_line() is None
    assert above.to_json()["below_baseline"] == []


def test_a_lower_is_better_metric_is_below_when_a_baseline_is_lower():
    found = result("error_rate", 0.30, higher=False, majority=0.25, lexicon=0.40, best=0.10)
    assert [b["baseline"] for b in found.below_baseline] == ["best", "majority"]
    assert found.below_baseline_line() == ("error_rate (lower is better) 0.3000 for the model, "
                                           "0.1000 for best (+0.2000), 0.2500 for majority (+0.0500)")


def test_the_report_puts_the_line_under_the_metrics_table(tmp_path):
    lines = render(tmp_path, result("accuracy", 0.3, majority_class=0.4), "run report", "intro",
                   [], None, "Notes")
    at = lines.index("**Below baseline:** accuracy 0.3000 for the model, 0.4000 for "
                     "majority-class (-0.1000)")
    assert lines[at - 1] == "" and lines[at - 2] == "| other | 0.5000 | 0.9000 |"  # table's end
    assert "**Below baseline:**" not in "\n".join(
        render(tmp_path, result("accuracy", 0.5, majority_class=0.4), "run report", "intro",
               [], None, "Notes"))
