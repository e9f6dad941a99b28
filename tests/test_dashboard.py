"""The dashboard over plain HTTP: every page and JSON route, the API-key rule and the login
session, safe artifact files, promote behind a confirmation, feedback review, and the
monitor's state under TUNEHUB_HOME."""
from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient

from tunehub.core.artifacts import hub
from tunehub.core.operations import monitor_state
from tunehub.core.operations.feedback import FeedbackStore, list_feedback
from tunehub.core.operations.monitor_run import run_monitor
from tunehub.core.serving.serve import ServeSettings, create_app
from tunehub.core.serving.ui import STATIC

from _dashboard import KEY, TASK, Classifier, copy_versions, monitor, news, surge_start
from _trained import shared_artifact

ROOT = Path(__file__).resolve().parents[1]
WRITE = {"X-Tunehub-Dashboard": "1"}


@pytest.fixture(scope="module")
def shared(tiny_model, tmp_path_factory) -> str:
    return shared_artifact(tiny_model, tmp_path_factory)


@pytest.fixture
def versions(shared, tunehub_home):
    return copy_versions(shared)


@pytest.fixture
def dashboard(versions, tmp_path):
    """A client of a loopback server with the dashboard, serving the stand-in classifier."""
    def make(**settings):
        store = FeedbackStore(tmp_path / "home" / "feedback.sqlite3")
        app = create_app([Classifier(versions[-1])], ServeSettings(ui=True, **settings), store=store)
        client = TestClient(app, follow_redirects=False)
        client.__enter__()
        opened.append((client, store))
        return client

    opened: list = []
    yield make
    for client, store in opened:
        client.__exit__(None, None, None)
        store.close()


# -- the monitor's state ----------------------------------------------------------------


def test_monitor_keeps_its_windows_and_alerts_under_home(versions, tmp_path, tunehub_home):
    monitor(tmp_path)
    path = tunehub_home / "monitor" / TASK / "state.sqlite3"
    assert path.is_file() and monitor_state.monitored_tasks() == [TASK]
    state = monitor_state.read_state(TASK)
    assert state["windows"] == [86400.0] and [e["entity"] for e in state["entities"]] == ["ALFA", "BETA", "GAMA"]
    assert [(a["entity"], a["start"]) for a in state["alerts"]] == [("BETA", surge_start(7))]
    assert all("Shares fell" in text for text in state["alerts"][0]["examples"])
    assert len(state["series"]["BETA"]) == 10 and state["series"]["BETA"][7][5] is True
    assert state["runs"][0]["status"] == "finished" and state["runs"][0]["alerts"] == 1
    before = state["version"]

    monitor(tmp_path)  # the same stream again: its windows are replaced, not doubled
    again = monitor_state.read_state(TASK)
    assert len(again["series"]["BETA"]) == 10 and len(again["alerts"]) == 1
    assert len(again["runs"]) == 2 and again["version"] != before
    only = monitor_state.read_state(TASK, entities=["GAMA"], since=surge_start(5), until=surge_start(8))
    assert list(only["series"]) == ["GAMA"] and [w[0] for w in only["series"]["GAMA"]] == [
        surge_start(5), surge_start(6), surge_start(7)]


def test_monitor_without_state_and_a_failed_monitor_leave_nothing(versions, tmp_path, tunehub_home):
    run_monitor(TASK, str(news(tmp_path / "n.jsonl")), sinks=["file:" + str(tmp_path / "a.jsonl")],
                loaded=Classifier(versions[0]), keep_state=False)
    (tmp_path / "bad.jsonl").write_text("not json\n")
    with pytest.raises(Exception):
        run_monitor(TASK, str(tmp_path / "bad.jsonl"), loaded=Classifier(versions[0]))
    assert not (tunehub_home / "monitor").exists()


def test_state_grows_while_the_monitor_reads(versions, tmp_path, tunehub_home, monkeypatch):
    """Windows are committed batch by batch (here: every batch): a reader sees them before
    the stream ends."""
    seen = []
    original = monitor_state.MonitorState.commit

    def spy(self, counts, status="running", now=True):
        original(self, counts, status, now)
        if self.db is not None:
            seen.append(len(monitor_state.read_state(TASK)["series"].get("ALFA", [])))

    monkeypatch.setattr(monitor_state, "EVERY_S", 0.0)
    monkeypatch.setattr(monitor_state.MonitorState, "commit", spy)
    monitor(tmp_path)
    assert seen[0] < 10 and seen == sorted(seen) and seen[-1] == 10
    assert monitor_state.read_state(TASK)["runs"][0]["status"] == "finished"


# -- pages, assets, offline -------------------------------------------------------------


def test_pages_and_their_assets_are_served_offline(dashboard):
    client = dashboard()
    assert client.get("/ui/").headers["location"] == "/ui/monitor"
    for page in ("monitor", "versions", "feedback", "login"):
        answer = client.get(f"/ui/{page}")
        assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/html")
        assert "default-src 'self'" in answer.headers["content-security-policy"]
        assert answer.headers["x-content-type-options"] == "nosniff"
        assert '<meta charset="utf-8">' in answer.text and 'name="viewport"' in answer.text
        for asset in re.findall(r'(?:src|href)="([^"]+)"', answer.text):
            if asset.startswith("/ui/static/"):
                assert client.get(asset).status_code == 200, asset
            else:
                assert asset.startswith(("/ui/", "#", "data:")), asset
    for path in STATIC.iterdir():  # no other host anywhere in what the pages load
        text = path.read_text(encoding="utf-8")
        assert not re.search(r"https?:|//[a-z0-9.-]+\.[a-z]{2,}|@import|url\(", text, re.I), path.name
    css = (STATIC / "dashboard.css").read_text()
    assert "Noto Sans CJK SC" in css and ":focus-visible" in css and "@media (max-width" in css


def test_static_files_ship_in_the_wheel():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    patterns = config["tool"]["setuptools"]["package-data"]["tunehub.core.serving"]
    shipped = {p for pattern in patterns for p in (ROOT / "core" / "serving").glob(pattern)}
    assert set(STATIC.iterdir()) <= shipped


# -- the API-key rule -------------------------------------------------------------------


def test_on_loopback_pages_read_freely_and_writes_need_the_key_once_set(dashboard):
    client = dashboard(api_key=KEY)
    assert client.get("/ui/monitor").status_code == 200
    assert client.get("/ui/api/versions").status_code == 200
    promote = {"task": TASK, "version": "v1", "confirm": f"{TASK}@v1"}
    refused = client.post("/ui/api/promote", json=promote, headers=WRITE)
    assert refused.status_code == 401 and "API key" in refused.json()["detail"]
    assert hub.serving_version(TASK) is None
    ok = client.post("/ui/api/promote", json=promote, headers={**WRITE, "Authorization": f"Bearer {KEY}"})
    assert ok.status_code == 200 and hub.serving_version(TASK) == "v1"
    assert client.get("/ui/api/session").json() == {"key_set": True, "loopback": True,
                                                     "signed_in": False, "can_write": False,
                                                     "served": [TASK]}


def test_beyond_loopback_every_page_needs_the_key_or_the_login_session(dashboard):
    client = dashboard(host="0.0.0.0", api_key=KEY)
    page = client.get("/ui/versions")
    assert page.status_code == 303 and page.headers["location"] == "/ui/login?next=/ui/versions"
    assert client.get("/ui/api/versions").status_code == 401
    assert client.get("/ui/login").status_code == 200  # the form and its files are open
    assert client.get("/ui/static/dashboard.css").status_code == 200
    assert client.get("/ui/api/versions", headers={"X-API-Key": KEY}).status_code == 200

    wrong = client.post("/ui/login", data={"key": "x" * 20, "next": "/ui/versions"})
    assert wrong.status_code == 303 and "failed=1" in wrong.headers["location"]
    assert "set-cookie" not in wrong.headers
    signed = client.post("/ui/login", data={"key": KEY, "next": "/ui/versions"})
    assert signed.status_code == 303 and signed.headers["location"] == "/ui/versions"
    cookie = signed.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/ui" in cookie
    assert KEY not in cookie  # an HMAC of its expiry, never the key
    assert client.get("/ui/versions").status_code == 200
    assert client.get("/ui/api/session").json()["signed_in"] is True
    assert client.post("/v1/predict", json={"inputs": ["Up."]}).status_code == 401  # not the API's key

    promote = {"task": TASK, "version": "v1", "confirm": f"{TASK}@v1"}
    forged = client.post("/ui/api/promote", json=promote)  # another site's form sends no header
    assert forged.status_code == 403 and hub.serving_version(TASK) is None
    assert client.post("/ui/api/promote", json=promote, headers=WRITE).status_code == 200

    name, _, value = cookie.split(";")[0].partition("=")
    expires, _, mac = value.partition(".")
    for bad in (f"{int(expires) + 1}.{mac}", f"1.{mac}", "garbage"):
        client.cookies.clear()
        client.cookies.set(name, bad)
        assert client.get("/ui/api/versions").status_code == 401, bad
    out = client.post("/ui/logout")
    assert out.status_code == 303 and 'tunehub_session=""' in out.headers["set-cookie"]


@pytest.mark.parametrize("target", ["https://evil.example/", "//evil.example/ui/x", "/v1/predict",
                                    "/ui\\..\\x", "/ui/login"])
def test_login_goes_back_only_to_a_dashboard_page(dashboard, target):
    client = dashboard(host="0.0.0.0", api_key=KEY)
    answer = client.post("/ui/login", data={"key": KEY, "next": target})
    assert answer.headers["location"] == "/ui/monitor"


# -- versions, reports, files, compare, promote -----------------------------------------


def test_versions_show_metrics_beside_baselines_and_serving(dashboard, versions):
    tasks = dashboard().get("/ui/api/versions").json()["tasks"]
    assert [t["task"] for t in tasks] == [TASK]
    task = tasks[0]
    assert task["serving"] == "v2" and task["promoted"] is False
    manifest, metrics = versions[0].manifest(), versions[0].metrics()
    first = task["versions"][0]
    assert first["value"] == manifest["primary_value"] and first["metrics"]["accuracy"] == metrics["metrics"]["accuracy"]
    assert set(first["baselines"]) == set(metrics["baselines"]) and first["report"] is True
    assert "/" not in str(first["base_model"])  # never a local path
    assert [v["serving"] for v in task["versions"]] == [False, True]


def test_report_is_html_with_its_images_and_no_raw_html(dashboard, versions):
    report = versions[0].path / "report.md"
    report.write_text(report.read_text() + "\n<script>alert(1)</script>\n\n![far](http://example.org/x.png)\n"
                      "[run](javascript:alert(1))\n")
    html = dashboard().get(f"/ui/api/versions/{TASK}/v1/report").json()["html"]
    assert f'src="/ui/api/files/{TASK}/v1/confusion_matrix.png"' in html and "<table>" in html
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert "example.org" not in html and 'href="javascript' not in html and "<p>far" in html


def test_artifact_files_are_images_inside_the_artifact_only(dashboard, versions, tmp_path):
    client = dashboard()
    good = client.get(f"/ui/api/files/{TASK}/v1/confusion_matrix.png")
    assert good.status_code == 200 and good.headers["content-type"] == "image/png"
    assert good.content == (versions[0].path / "confusion_matrix.png").read_bytes()
    outside = tmp_path / "secret.png"
    outside.write_bytes(b"\x89PNG secret")
    (versions[0].path / "link.png").symlink_to(outside)
    (versions[0].path / ".hidden.png").write_bytes(b"\x89PNG")
    for relative in ["..%2Fv2%2Floss_curve.png", "%2e%2e/%2e%2e/%2e%2e/feedback.sqlite3",
                     quote(str(outside), safe=""), "manifest.json", "model/config.json",
                     ".hidden.png", "link.png", "%00.png"]:
        answer = client.get(f"/ui/api/files/{TASK}/v1/{relative}")
        assert answer.status_code == 404 and b"PNG secret" not in answer.content, relative
    for task, version in [("..", "v1"), (TASK, "latest"), (TASK, "v9"), ("%2e%2e", "v1")]:
        assert client.get(f"/ui/api/files/{task}/{version}/loss_curve.png").status_code == 404


def test_promote_needs_a_confirmation_and_moves_serving(dashboard):
    client = dashboard()
    body = {"task": TASK, "version": "v1"}
    assert client.post("/ui/api/promote", json=body, headers=WRITE).status_code == 422
    wrong = client.post("/ui/api/promote", json={**body, "confirm": f"{TASK}@v2"}, headers=WRITE)
    assert wrong.status_code == 422 and f'"confirm": "{TASK}@v1"' in wrong.json()["detail"]
    assert client.post("/ui/api/promote", json={**body, "confirm": f"{TASK}@v1"}).status_code == 403
    assert client.post("/ui/api/promote", json={**body, "version": "../v1", "confirm": "x"},
                       headers=WRITE).status_code == 404
    assert hub.serving_version(TASK) is None
    pointer = client.post("/ui/api/promote", json={**body, "confirm": f"{TASK}@v1"}, headers=WRITE).json()
    assert pointer["version"] == "v1" and pointer["reason"] == "promoted in the dashboard"
    assert hub.serving_version(TASK) == "v1"
    assert client.get("/ui/api/versions").json()["tasks"][0]["serving"] == "v1"


def test_compare_gives_the_figures_of_app_models_compare(dashboard):
    from tunehub.core.running.compare import compare_versions

    client = dashboard()
    answer = client.post("/ui/api/compare", json={"task": TASK, "a": "v1", "b": "v2"}, headers=WRITE)
    assert answer.status_code == 200, answer.text
    expected = json.loads(json.dumps(compare_versions(TASK, f"{TASK}@v1", f"{TASK}@v2")))
    assert answer.json() == expected
    assert client.post("/ui/api/compare", json={"task": TASK, "a": "v1", "b": "v7"},
                       headers=WRITE).status_code == 404


# -- monitoring routes ------------------------------------------------------------------


def test_monitor_routes_filter_and_tell_when_nothing_changed(dashboard, tmp_path):
    client = dashboard()
    assert client.get("/ui/api/monitor").json() == {"tasks": []}
    monitor(tmp_path)
    assert client.get("/ui/api/monitor").json() == {"tasks": [TASK]}
    state = client.get(f"/ui/api/monitor/{TASK}").json()
    assert [(a["entity"], a["start"]) for a in state["alerts"]] == [("BETA", surge_start(7))]
    same = client.get(f"/ui/api/monitor/{TASK}", params={"version": state["version"]}).json()
    assert same == {"unchanged": True, "version": state["version"]}
    one = client.get(f"/ui/api/monitor/{TASK}", params={"entity": "ALFA", "since": "2024-03-03",
                                                        "until": "2024-03-05T00:00:00Z"}).json()
    assert list(one["series"]) == ["ALFA"] and len(one["series"]["ALFA"]) == 2 and one["alerts"] == []
    bad = client.get(f"/ui/api/monitor/{TASK}", params={"since": "yesterday-ish"})
    assert bad.status_code == 422 and "since" in bad.json()["detail"]


# -- feedback review --------------------------------------------------------------------


def test_review_queue_and_corrections_go_through_the_feedback_rules(dashboard):
    client = dashboard()
    texts = ["Profit rose 20%.", "The meeting is in May.", "Shares fell 8%.", "营收持平。"]
    ids = [o["prediction_id"] for o in client.post("/v1/predict", json={"inputs": texts}).json()["outputs"]]
    user = client.post("/v1/feedback", json={"task": TASK, "prediction_id": ids[0], "label": "neutral",
                                             "user": "desk-3"})
    assert user.status_code == 201
    queue = client.get(f"/ui/api/review/{TASK}").json()
    assert queue["corrections"]["label"]["enum"] == Classifier.labels and queue["scores"] is True
    found = {item["prediction_id"]: item for item in queue["items"]}
    assert set(found) == {ids[0], ids[1], ids[3]}  # flagged, and the two unsure ones
    assert found[ids[0]]["flagged"] and not found[ids[0]]["low"] and found[ids[1]]["low"]
    assert found[ids[3]]["input"] == "营收持平。" and found[ids[1]]["confidence"] == 0.45
    low = client.get(f"/ui/api/review/{TASK}", params={"show": "low", "threshold": "0.5"}).json()
    assert {i["prediction_id"] for i in low["items"]} == {ids[1], ids[3]}
    retrain = queue["retrain"]
    assert retrain["command"] == f"app run-task {TASK} --with-feedback" and retrain["since"] == 1

    wrong = client.post("/ui/api/feedback", json={"task": TASK, "prediction_id": ids[1], "label": "bad"},
                        headers=WRITE)
    same = client.post("/v1/feedback", json={"task": TASK, "prediction_id": ids[1], "label": "bad"})
    assert wrong.status_code == same.status_code == 422 and wrong.json()["detail"] == same.json()["detail"]
    unknown = client.post("/ui/api/feedback", json={"task": TASK, "prediction_id": "f" * 32,
                                                    "label": "neutral"}, headers=WRITE)
    assert unknown.status_code == 404
    assert client.post("/ui/api/feedback", json={"task": TASK, "prediction_id": ids[1],
                                                 "label": "negative"}).status_code == 403
    stored = client.post("/ui/api/feedback", json={"task": TASK, "prediction_id": ids[1], "label": "negative",
                                                   "action": "correct", "user": "ana", "source": "x"},
                         headers=WRITE)
    assert stored.status_code == 201, stored.text
    item = list_feedback(TASK)[-1]
    assert (item["prediction_id"], item["label"], item["input"]) == (ids[1], "negative", texts[1])
    assert item["source"] == "dashboard" and item["user"] == "ana" and item["model"] == f"{TASK}@v2"
    assert item["predicted"]["label"] == "neutral"
    later = client.get(f"/ui/api/review/{TASK}").json()
    assert ids[1] not in {i["prediction_id"] for i in later["items"]} and later["retrain"]["since"] == 2
    shown = client.get(f"/ui/api/review/{TASK}", params={"reviewed": "1"}).json()["items"]
    assert next(i for i in shown if i["prediction_id"] == ids[1])["reviewed"] is True


def test_review_of_a_task_not_served_uses_its_serving_version(versions, tmp_path):
    """`app ui` serves no model: the corrections come from the @serving version's settings."""
    store = FeedbackStore(tmp_path / "home" / "feedback.sqlite3")
    ids = store.record_predictions(TASK, f"{TASK}@v1", ["Sales were flat."],
                                   [{"label": "neutral", "probabilities": {"negative": 0.3, "neutral": 0.4,
                                                                           "positive": 0.3}}])
    app = create_app([], ServeSettings(ui=True), store=store)
    try:
        with TestClient(app) as client:
            assert client.get("/ui/api/review").json() == {"tasks": [TASK]}
            queue = client.get(f"/ui/api/review/{TASK}").json()
            assert [i["prediction_id"] for i in queue["items"]] == ids
            assert queue["corrections"]["label"]["enum"] == ["negative", "neutral", "positive"]
            answer = client.post("/ui/api/feedback", json={"task": TASK, "prediction_id": ids[0],
                                                           "label": "positive"}, headers=WRITE)
            assert answer.status_code == 201, answer.text
            assert client.get(f"/ui/api/review/{TASK}").json()["items"] == []
            assert client.get("/ui/api/review/no-such-task").status_code == 422
    finally:
        store.close()


def test_app_ui_and_serve_ui_commands(monkeypatch, tunehub_home):
    from click.testing import CliRunner

    from tunehub.core.cli import main
    from tunehub.core.serving import serve as serving

    monkeypatch.delenv("TUNEHUB_API_KEY", raising=False)
    for args, words in [(["--host", "0.0.0.0"], "--api-key"), (["--api-key", "short"], "at least 16")]:
        result = CliRunner().invoke(main, ["ui", *args])
        assert result.exit_code == 2 and words in result.stderr and "Traceback" not in result.output
    started = {}
    monkeypatch.setattr(serving, "serve", lambda models, settings, **kw: started.update(
        models=models, settings=settings, **kw))
    result = CliRunner().invoke(main, ["ui", "--port", "8123"])
    assert result.exit_code == 0, result.output
    assert started["models"] == [] and started["settings"].ui and started["settings"].port == 8123
    assert "http://127.0.0.1:8123/ui/" in result.stderr
    assert not tunehub_home.exists() or {p.name for p in tunehub_home.iterdir()} <= {"feedback.sqlite3"}
    assert "--ui" in CliRunner().invoke(main, ["serve", "--help"]).output
