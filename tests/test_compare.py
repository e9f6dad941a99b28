"""`app models compare`: paired bootstrap intervals, McNemar, changed answers, every task."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

import tunehub
from tunehub.core.running import runner
from tunehub.core.cli import main
from tunehub.core.running.compare import compare_versions, mcnemar, paired_bootstrap, resample
from tunehub.core.extending.plugins import load_catalog

from _trained import shared_artifact
from conftest import tiny_overrides
from test_customer_service import faq_files  # noqa: F401 (fixture)
from test_recommendation import items_csv, tiny_rec  # noqa: F401 (fixtures)

TASK = "financial-sentiment"


def biased_copy(source: Path, target: Path, label: str) -> None:
    """A copy of a classifier that answers ``label`` for everything (a clearly different model)."""
    from safetensors.torch import load_file, save_file

    shutil.copytree(source, target)
    head = target / "model" / "head.safetensors"
    state = load_file(str(head))
    labels = json.loads((target / "model" / "head.json").read_text())["labels"]
    state["bias"][labels.index(label)] += 1000.0
    save_file(state, str(head))


@pytest.fixture
def two_versions(tiny_model, tmp_path_factory, tunehub_home, labelled_csv):
    """v1: the shared tiny classifier; v2: the same, biased to its least-predicted label."""
    source = Path(shared_artifact(tiny_model, tmp_path_factory))
    root = tunehub_home / "artifacts" / TASK
    root.mkdir(parents=True)
    shutil.copytree(source, root / "v1")
    texts = [line.split(",")[0] for line in labelled_csv.read_text().splitlines()[1:]]
    answers = [o["label"] for o in runner.predict(TASK, texts, model=f"{TASK}@v1")]
    rare = min(["negative", "neutral", "positive"], key=answers.count)
    biased_copy(source, root / "v2", rare)
    return answers, rare


def test_compare_two_classifiers_on_data(two_versions, labelled_csv):
    answers_a, rare = two_versions
    out = compare_versions(TASK, f"{TASK}@v1", f"{TASK}@v2", data=labelled_csv, rounds=200)
    assert (out["a"], out["b"], out["examples"]) == (f"{TASK}@v1", f"{TASK}@v2", 18)
    assert set(out["metrics"]) == {"accuracy", "macro_f1"}
    acc = out["metrics"]["accuracy"]
    assert acc["b"] == round(6 / 18, 6)  # all one label: right on its 6 rows
    assert acc["difference"] == round(acc["b"] - acc["a"], 6)
    assert acc["ci95"][0] <= acc["difference"] <= acc["ci95"][1]
    changed = [i for i, a in enumerate(answers_a) if a != rare]
    assert out["changed"] == len(changed)
    first = out["changed_examples"][0]
    assert first["index"] == changed[0] and first["b"] == rare and first["a"] == answers_a[changed[0]]
    assert first["input"] and first["truth"] in ("negative", "neutral", "positive")
    test = out["mcnemar"]
    assert test["only_a_right"] + test["only_b_right"] > 0 and 0 <= test["p_value"] <= 1


def test_compare_cli_text_and_json(two_versions, labelled_csv):
    cli = CliRunner()
    shown = cli.invoke(main, ["models", "compare", f"{TASK}@v1", f"{TASK}@v2", "--data",
                              str(labelled_csv), "--bootstrap", "100", "--changed", "2"])
    assert shown.exit_code == 0, shown.output
    assert "95% interval" in shown.output and "McNemar" in shown.output
    data = json.loads(cli.invoke(main, ["models", "compare", f"{TASK}@v1", f"{TASK}@v2", "--data",
                                        str(labelled_csv), "--json", "--changed", "2",
                                        "--bootstrap", "50"]).stdout)
    assert len(data["changed_examples"]) <= 2 and data["bootstrap"]["rounds"] == 50
    bad = cli.invoke(main, ["models", "compare", f"{TASK}@v1", "other@v2"])
    assert bad.exit_code == 2 and "two versions of one task" in bad.output


def test_bootstrap_and_verdict_on_known_outputs():
    catalog = load_catalog()
    a = {"labels": ["x", "y"], "y_true": [0, 1] * 20, "y_pred": [0, 1] * 20}  # all right
    b = {"labels": ["x", "y"], "y_true": [0, 1] * 20, "y_pred": [1, 0] * 20}  # all wrong
    diffs = paired_bootstrap(catalog, ["accuracy"], a, b, rounds=50)
    assert set(diffs["accuracy"]) == {-1.0}
    picked = resample({"labels": ["x", "y"], "y_true": [0, 1], "y_pred": [1, 1],
                       "part": {"ranked": [["a"], ["b"], ["c"]], "relevant": [["a"], [], ["c"]]}},
                      {"": [1, 1], "/part": [2, 0, 0]})
    assert picked["y_true"] == [1, 1] and picked["labels"] == ["x", "y"]
    assert picked["part"]["ranked"] == [["c"], ["a"], ["a"]]


def test_mcnemar():
    assert mcnemar([True] * 5, [True] * 5)["p_value"] == 1.0
    exact = mcnemar([True] * 10 + [False] * 2, [False] * 10 + [True] * 2)
    assert (exact["only_a_right"], exact["only_b_right"]) == (10, 2)
    assert exact["method"] == "exact binomial" and abs(exact["p_value"] - 0.038574) < 1e-5
    big = mcnemar([True] * 40 + [False] * 10, [False] * 40 + [True] * 10)
    assert big["method"].startswith("chi-square") and big["p_value"] < 0.001


def _self_compare(task: str) -> dict:
    root = Path(tunehub.core.artifacts.hub.artifacts_root()) / task
    shutil.copytree(root / "v1", root / "v2")
    return compare_versions(task, f"{task}@v1", f"{task}@v2", rounds=20)


def test_compare_customer_service_versions(tiny_model, faq_files):  # noqa: F811
    faq, queries = faq_files
    tunehub.run_task("customer-service-qa", data=queries, model=str(tiny_model),
                     overrides=tiny_overrides(**{"dataset.faq": str(faq), "train.max_steps": "1",
                                                 "dataset.eval_fraction": "0.3"}))
    out = _self_compare("customer-service-qa")
    assert "recall@1" in out["metrics"] and out["changed"] == 0 and out["examples"] > 0
    assert all(m["difference"] == 0 and m["ci95"] == [0, 0] for m in out["metrics"].values())
    assert "mcnemar" not in out


def test_compare_recommendation_versions(tiny_model, tiny_rec):  # noqa: F811
    interactions, items = tiny_rec
    runner.run_task("recommendation-scoring", data=interactions, model=str(tiny_model),
                    overrides=tiny_overrides(**{"dataset.items": str(items), "train.max_steps": "1",
                                                "dataset.cold_start_fraction": "0.2"}))
    out = _self_compare("recommendation-scoring")
    assert {"hr@10", "ndcg@10", "cold_start_hr@10"} <= set(out["metrics"])
    assert out["changed"] == 0 and all(m["verdict"] == "no significant difference"
                                       for m in out["metrics"].values())
