"""Feedback: prediction ids, POST /v1/feedback, durable storage, `app feedback`."""
from __future__ import annotations

import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from click.testing import CliRunner

from tunehub.core.running import runner
from tunehub.core.cli import main
from tunehub.core.operations.feedback import FeedbackStore, list_feedback, parse_since
from tunehub.core.serving.serve import BackgroundServer, ServeSettings

from _trained import shared_artifact

TASK = "financial-sentiment"


@pytest.fixture(scope="module")
def loaded(tiny_model, tmp_path_factory):
    return runner.load(TASK, model=shared_artifact(tiny_model, tmp_path_factory))


@pytest.fixture(scope="module")
def served(loaded, tmp_path_factory):
    home = tmp_path_factory.mktemp("feedback-home")
    store = FeedbackStore(home / "feedback.sqlite3")
    with BackgroundServer([loaded], ServeSettings(port=0), store=store) as running:
        yield running, home
    store.close()


def send(url: str, body, client=httpx) -> httpx.Response:
    return client.post(f"{url}/v1/feedback", json=body, timeout=60)


def test_feedback_by_prediction_id_and_by_input(served, loaded, monkeypatch):
    server, home = served
    answer = httpx.post(f"{server.url}/v1/predict", json={"inputs": ["Profit fell.", "Sales rose."]},
                        timeout=60).json()
    pid = answer["outputs"][0]["prediction_id"]
    stored = send(server.url, {"task": TASK, "prediction_id": pid, "label": "negative",
                               "user": "analyst-7"})
    assert stored.status_code == 201, stored.text
    assert stored.json()["model"] == loaded.artifact.ref and stored.json()["prediction_id"] == pid
    by_input = send(server.url, {"task": TASK, "input": "Guidance was cut.", "label": "negative"})
    assert by_input.status_code == 201
    rows = list_feedback(TASK, path=home / "feedback.sqlite3")
    mine = [r for r in rows if r["prediction_id"] == pid][0]
    assert mine["input"] == "Profit fell." and mine["label"] == "negative"
    assert mine["user"] == "analyst-7" and mine["model"] == loaded.artifact.ref
    assert mine["predicted"]["label"] == answer["outputs"][0]["label"]
    assert any(r["input"] == "Guidance was cut." and r["prediction_id"] is None for r in rows)

    monkeypatch.setenv("TUNEHUB_HOME", str(home))
    cli = CliRunner()
    listed = json.loads(cli.invoke(main, ["feedback", "list", TASK, "--json"]).stdout)
    assert {r["input"] for r in listed} >= {"Profit fell.", "Guidance was cut."}
    table = cli.invoke(main, ["feedback", "list", TASK])
    assert table.exit_code == 0 and "Profit fell." in table.output
    exported = cli.invoke(main, ["feedback", "export", TASK])
    assert exported.exit_code == 0
    lines = exported.stdout.splitlines()
    assert lines[0].startswith("text,label,model,created") and "Profit fell.,negative," in exported.stdout
    future = cli.invoke(main, ["feedback", "list", TASK, "--json", "--since", "2999-01-01"])
    assert json.loads(future.stdout) == []
    assert len(json.loads(cli.invoke(main, ["feedback", "list", TASK, "--json",
                                             "--since", "1h"]).stdout)) == len(listed)
    bad = cli.invoke(main, ["feedback", "list", TASK, "--since", "last tuesday"])
    assert bad.exit_code == 2 and "--since 'last tuesday'" in bad.output


@pytest.mark.parametrize("body, status, words", [
    ({"task": TASK, "label": "negative"}, 422, "exactly one of prediction_id"),
    ({"task": TASK, "input": "x", "prediction_id": "y", "label": "negative"}, 422, "exactly one"),
    ({"task": TASK, "input": "x"}, 422, "exactly one right answer; task 'financial-sentiment' takes: label"),
    ({"task": TASK, "input": "x", "label": "angry"}, 422,
     "label: 'angry' is not one of ['negative', 'neutral', 'positive']"),
    ({"task": TASK, "input": "x", "faq_id": "a"}, 422, "takes: label"),  # another head's shape
    ({"task": TASK, "prediction_id": "feedbeef", "label": "negative"}, 404, "unknown"),
    ({"task": "nope", "input": "x", "label": "negative"}, 404, "not served"),
    ({"input": "x", "label": "negative"}, 422, "task: missing"),
])
def test_bad_feedback_gets_a_clear_4xx(served, body, status, words):
    answer = send(served[0].url, body)
    assert answer.status_code == status and words in answer.json()["detail"]


def test_since_parsing():
    assert parse_since("2024-05-01") == "2024-05-01T00:00:00.000000+00:00"
    assert parse_since(None) is None


def _hammer(url: str, clients: int, per_client: int) -> list[int]:
    def one_client(c: int) -> list[int]:
        ids = []
        with httpx.Client(timeout=120) as client:
            for i in range(per_client):
                answer = send(url, {"task": TASK, "input": f"client {c} item {i}",
                                    "label": "neutral"}, client)
                assert answer.status_code == 201, answer.text
                ids.append(answer.json()["id"])
        return ids

    with ThreadPoolExecutor(clients) as pool:
        return [i for ids in pool.map(one_client, range(clients)) for i in ids]


def _check_nothing_lost(served, clients: int, per_client: int) -> None:
    server, home = served
    before = len(list_feedback(TASK, path=home / "feedback.sqlite3"))
    ids = _hammer(server.url, clients, per_client)
    assert len(set(ids)) == clients * per_client
    rows = list_feedback(TASK, path=home / "feedback.sqlite3")
    assert len(rows) - before == clients * per_client
    texts = {r["input"] for r in rows}
    assert all(f"client {c} item {i}" in texts for c in range(clients) for i in range(per_client))


def test_concurrent_clients_lose_nothing(served):
    _check_nothing_lost(served, clients=32, per_client=40)


@pytest.mark.slow
def test_32_clients_1000_items_each_lose_nothing(served):
    _check_nothing_lost(served, clients=32, per_client=1000)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


KILLED_WRITER = """
import sys
from tunehub.core.operations.feedback import FeedbackStore
store = FeedbackStore(sys.argv[1])
for i in range(100000):
    row = store.add({"task": "t", "input": f"item {i}", "label": "x"}).result()
    print(row["id"], flush=True)  # acknowledged only after the commit
"""


def test_killed_writer_loses_no_acknowledged_feedback(tmp_path):
    path = tmp_path / "feedback.sqlite3"
    proc = subprocess.Popen([sys.executable, "-c", KILLED_WRITER, str(path)],
                            stdout=subprocess.PIPE, text=True)
    acked = [int(proc.stdout.readline()) for _ in range(300)]
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    rest = [int(line) for line in proc.stdout.read().split()]  # acks in the pipe at the kill
    stored = {row["id"] for row in list_feedback("t", path=path)}
    assert set(acked + rest) <= stored


@pytest.mark.slow
def test_killed_server_loses_no_acknowledged_feedback(tiny_model, tmp_path_factory, tmp_path):
    artifact = shared_artifact(tiny_model, tmp_path_factory)
    port, home = _free_port(), tmp_path / "home"
    env = {**os.environ, "TUNEHUB_HOME": str(home), "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "tunehub.core.cli", "serve", TASK, "--model",
                             artifact, "--port", str(port)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert proc.poll() is None and time.monotonic() < deadline, proc.stderr.read().decode()
            time.sleep(0.2)
        acked = []
        with ThreadPoolExecutor(8) as pool:
            answers = pool.map(lambda i: send(url, {"task": TASK, "input": f"kill {i}",
                                                    "label": "positive"}), range(200))
            acked = [a.json()["id"] for a in answers if a.status_code == 201]
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    assert len(acked) == 200
    db = sqlite3.connect(home / "feedback.sqlite3")
    stored = {row[0] for row in db.execute("SELECT id FROM feedback")}
    db.close()
    assert set(acked) <= stored


def raw(url: str, text: str) -> httpx.Response:
    """A body sent as written (JSON escapes such as \\ud800 reach the server unchanged)."""
    return httpx.post(f"{url}/v1/feedback", content=text.encode("ascii"), timeout=60,
                      headers={"content-type": "application/json"})


@pytest.mark.parametrize("text, words", [
    ('{"task": "%s", "prediction_id": "\\ud800", "label": "negative"}' % TASK, "lone surrogate"),
    ('{"task": "%s", "input": "x\\udfff", "label": "negative"}' % TASK, "lone surrogate"),
    ('{"task": "%s", "input": "x", "label": "negative", "note": "\\ud800"}' % TASK, "note"),
    ('{"task": ["%s"], "input": "x", "label": "negative"}' % TASK, "task"),
    ('{"task": {"a": 1}, "input": "x", "label": "negative"}', "task"),
    ('{"task": "%s", "input": "x", "label": "negative", "kind": "faq_id"}' % TASK, "kind"),
    ('{"task": "%s", "input": "x", "label": "negative", "created": "1970"}' % TASK, "created"),
])
def test_poisoned_feedback_is_refused_alone(served, text, words):
    answer = raw(served[0].url, text)
    assert answer.status_code == 422 and words in answer.json()["detail"], answer.text


def test_one_poisoned_item_never_takes_valid_ones_with_it(tmp_path):
    """The writer itself: a bad item in a batch among many valid ones, from many threads."""
    store = FeedbackStore(tmp_path / "feedback.sqlite3")
    try:
        ids = store.record_predictions(TASK, "m@v1", ["Profit fell."] * 200, [{"label": "x"}] * 200)
        poisoned = {"task": TASK, "prediction_id": "\ud800", "label": "negative"}  # past the checks

        def add(n: int):
            item = poisoned if n % 25 == 0 else {"task": TASK, "prediction_id": ids[n], "label": "negative"}
            return store.add(item, "m@v1")

        with ThreadPoolExecutor(16) as pool:
            futures = list(pool.map(add, range(200)))
        outcomes = [f.exception(timeout=60) for f in futures]
        assert sum(e is not None for e in outcomes) == 8  # the poisoned ones, alone
        assert all(outcomes[n] is None for n in range(200) if n % 25)
        more = store.record_predictions(TASK, "m@v1", ["Sales rose."], [{"label": "y"}])
        store.add({"task": TASK, "prediction_id": more[0], "label": "positive"}).result(timeout=60)
    finally:
        store.close()
    rows = list_feedback(TASK, path=tmp_path / "feedback.sqlite3")
    assert len(rows) == 193
    db = sqlite3.connect(tmp_path / "feedback.sqlite3")
    assert db.execute("SELECT COUNT(*) FROM predictions").fetchone()[0] == 201
    db.close()


def test_extra_keys_never_hide_stored_fields(served):
    server, home = served
    stored = send(server.url, {"task": TASK, "input": "Orders grew.", "label": "positive",
                               "source": "crm"})
    assert stored.status_code == 201
    row = [r for r in list_feedback(TASK, path=home / "feedback.sqlite3") if r["id"] == stored.json()["id"]][0]
    assert row["kind"] == "label" and row["source"] == "crm"
