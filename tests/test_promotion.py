"""The @serving pointer: promote, serve follows it without dropping requests,
run-task --promote-if-better, and run-task --with-feedback."""
from __future__ import annotations

import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from click.testing import CliRunner

from tunehub.core.artifacts import hub, promotion
from tunehub.core.running import runner
from tunehub.core.cli import main
from tunehub.core.errors import ModelError
from tunehub.core.extending.plugins import load_catalog
from tunehub.core.artifacts.promotion import promote_if_better
from tunehub.core.serving.serve import BackgroundServer, ServeSettings

from conftest import tiny_overrides
from test_compare import TASK, two_versions  # noqa: F401 (fixture)


def test_serving_falls_back_to_latest_then_follows_promote(two_versions):  # noqa: F811
    assert hub.find_artifact(f"{TASK}@serving").version == "v2"  # nothing promoted: latest
    cli = CliRunner()
    done = cli.invoke(main, ["models", "promote", f"{TASK}@v1"])
    assert done.exit_code == 0 and f"{TASK}@serving -> v1" in done.output
    assert hub.find_artifact(f"{TASK}@serving").version == "v1"
    assert hub.find_artifact(f"{TASK}@latest").version == "v2"  # latest is untouched
    listed = json.loads(cli.invoke(main, ["models", "--json"]).stdout)["fine_tuned"]
    assert {v["ref"]: v["serving"] for v in listed} == {f"{TASK}@v1": True, f"{TASK}@v2": False}
    shown = cli.invoke(main, ["models"]).stdout
    assert "@serving" in next(line for line in shown.splitlines() if f"{TASK}@v1" in line)
    pointer = json.loads(cli.invoke(main, ["models", "promote", f"{TASK}@v2", "--json"]).stdout)
    assert pointer["version"] == "v2" and pointer["previous"] == "v1"
    assert not list(promotion.pointer_path(TASK).parent.glob(".serving.json*"))  # no temp left
    hub.remove_artifact(hub.find_artifact(f"{TASK}@v2"))
    with pytest.raises(ModelError, match="names v2, which no longer exists"):
        hub.find_artifact(f"{TASK}@serving")


def test_serve_follows_the_pointer_without_dropping_requests(two_versions):  # noqa: F811
    _, rare = two_versions
    promotion.promote(hub.find_artifact(f"{TASK}@v1"))
    catalog = load_catalog()
    first = runner.load(TASK, model=f"{TASK}@serving", catalog=catalog)
    settings = ServeSettings(port=0, reload_interval_s=0.1)
    watch = promotion.follower(catalog, {TASK})
    answers, stop = [], threading.Event()
    with BackgroundServer([first], settings, watch=watch) as server:
        def client():
            with httpx.Client(timeout=60) as http:
                while not stop.is_set():
                    answers.append(http.post(f"{server.url}/v1/predict",
                                             json={"inputs": ["Profit fell.", "Sales rose."]}))

        with ThreadPoolExecutor(4) as pool:
            for _ in range(4):
                pool.submit(client)
            time.sleep(0.5)
            promotion.promote(hub.find_artifact(f"{TASK}@v2"))
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and not any(
                    a.json()["model"] == f"{TASK}@v2" for a in answers[-4:]):
                time.sleep(0.1)
            time.sleep(0.3)
            stop.set()
        tasks = httpx.get(f"{server.url}/v1/tasks").json()["tasks"]
    assert all(a.status_code == 200 for a in answers)  # nothing dropped during the swap
    models = [a.json()["model"] for a in answers]
    assert models[0] == f"{TASK}@v1" and models[-1] == f"{TASK}@v2"
    assert set(models[-4:]) == {f"{TASK}@v2"}  # once swapped, every client gets v2
    assert all(o["label"] == rare for a in answers if a.json()["model"] == f"{TASK}@v2"
               for o in a.json()["outputs"])
    assert tasks[0]["model"] == f"{TASK}@v2"


def test_promote_if_better_keeps_a_better_serving_version(two_versions, monkeypatch):  # noqa: F811
    v1, v2 = hub.find_artifact(f"{TASK}@v1"), hub.find_artifact(f"{TASK}@v2")
    import tunehub.core.running.compare as compare

    verdicts = iter(["B worse", "no significant difference"])

    def fake(task, a, b, **kwargs):
        return {"primary_metric": "accuracy", "examples": 81, "fairness": "81 rows, none trained on",
                "metrics": {"accuracy": {"difference": -0.2, "ci95": [-0.3, -0.1],
                                         "verdict": next(verdicts)}}}

    monkeypatch.setattr(compare, "compare_versions", fake)
    kept = promote_if_better(TASK, "v2", v1, load_catalog())
    assert not kept["promoted"] and kept["serving"] == f"{TASK}@v1"
    assert hub.find_artifact(f"{TASK}@serving").version == "v1"  # latest is v2, serving is not
    assert json.loads((v2.path / "promotion.json").read_text())["verdict"] == "B worse"
    moved = promote_if_better(TASK, "v2", v1, load_catalog())
    assert moved["promoted"] and hub.find_artifact(f"{TASK}@serving").version == "v2"


def test_run_task_promote_if_better_end_to_end(tiny_model, labelled_csv):
    cli = CliRunner()
    args = ["run-task", TASK, "--data", str(labelled_csv), "--model", str(tiny_model), "--json",
            "--promote-if-better"] + [f"--set={o}" for o in tiny_overrides(**{"train.max_steps": "1"})]
    first = json.loads(cli.invoke(main, args).stdout)
    assert first["promotion"]["promoted"] and first["promotion"]["serving"] == f"{TASK}@v1"
    second = cli.invoke(main, args)
    assert second.exit_code == 0, second.output
    decision = json.loads(second.stdout)["promotion"]
    assert decision["against"] == f"{TASK}@v1" and decision["metric"] == "accuracy"
    low, high = decision["ci95"]
    assert low <= decision["difference"] <= high
    expected = "v2" if decision["verdict"] != "B worse" else "v1"
    assert hub.find_artifact(f"{TASK}@serving").version == expected


