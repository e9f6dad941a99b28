"""The HTTP server: real requests over loopback to a server on a free port."""
from __future__ import annotations

import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from tunehub.core.artifacts import hub
from tunehub.core.running import runner
from tunehub.core.extending.heads import RegisteredHead
from tunehub.core.serving.serve import BackgroundServer, ServeSettings

from _trained import shared_artifact

TEXTS = ["Profit rose sharply.", "The plant will close.", "The meeting is in May.",
         "Sales beat expectations by a wide margin this quarter.", "Guidance was lowered.", "Hi"]


@pytest.fixture(scope="module")
def loaded(tiny_model, tmp_path_factory):
    """A tiny financial-sentiment artifact, trained once and loaded once."""
    return runner.load("financial-sentiment", model=shared_artifact(tiny_model, tmp_path_factory))


@pytest.fixture(scope="module")
def server(loaded):
    settings = ServeSettings(port=0, max_inputs=8, max_text_chars=200, max_body_bytes=4000,
                             max_wait_ms=20)
    with BackgroundServer([loaded], settings) as running:
        yield running


def post(url: str, body, **kwargs) -> httpx.Response:
    return httpx.post(f"{url}/v1/predict", json=body, timeout=60, **kwargs)


def test_health_tasks_and_predict_over_http(server, loaded):
    assert server.url.startswith("http://127.0.0.1:")
    assert httpx.get(f"{server.url}/health").json() == {"status": "ok",
                                                        "tasks": ["financial-sentiment"]}
    tasks = httpx.get(f"{server.url}/v1/tasks").json()["tasks"]
    assert tasks[0]["task"] == "financial-sentiment" and tasks[0]["model"] == loaded.artifact.ref
    answer = post(server.url, {"inputs": TEXTS[:3]})
    assert answer.status_code == 200, answer.text
    data = answer.json()
    assert data["task"] == "financial-sentiment" and data["model"] == loaded.artifact.ref
    ids = [out.pop("prediction_id") for out in data["outputs"]]
    assert data["outputs"] == loaded.predict(TEXTS[:3])  # same answers, same order
    assert set(data["outputs"][0]) == {"label", "probabilities"}
    assert len(set(ids)) == 3 and all(len(i) == 32 for i in ids)
    named = post(server.url, {"inputs": ["x"], "task": "financial-sentiment"})
    assert named.status_code == 200
    assert "/v1/predict" in httpx.get(f"{server.url}/openapi.json").json()["paths"]
    assert httpx.get(f"{server.url}/docs").status_code == 200


@pytest.mark.parametrize("body, status, words", [
    ({"inputs": ["x"] * 9}, 413, "limit is 8"),
    ({"inputs": ["y" * 201]}, 422, "limit is 200"),
    ({"inputs": ["ok", 3, None]}, 422, "inputs.1"),
    ({"inputs": 3}, 422, "inputs: expected a text, a list of texts"),
    ({"inputs": "   "}, 422, "inputs: empty text"),
    ({"inputs": "y" * 201}, 422, "inputs: 201 characters; the limit is 200"),
    ({"inputs": []}, 422, "empty"),
    ({"texts": ["x"]}, 422, "inputs"),
    ({"inputs": ["x"], "task": "nope"}, 404, "not served"),
    ({"inputs": ["x"], "task": "financial-sentimnt"}, 404, "Did you mean 'financial-sentiment'?"),
])
def test_bad_requests_get_4xx_with_a_message(server, body, status, words):
    answer = post(server.url, body)
    assert answer.status_code == status
    assert words in answer.json()["detail"]


def test_one_text_gets_one_output_as_hugging_face_clients_send_it(server, loaded):
    """{"inputs": "one text"} (Hugging Face's inference form) answers with one object."""
    one = post(server.url, {"inputs": TEXTS[0]})
    assert one.status_code == 200, one.text
    output = one.json()["outputs"]
    assert isinstance(output, dict) and len(output.pop("prediction_id")) == 32
    assert output == loaded.predict(TEXTS[:1])[0]
    listed = post(server.url, {"inputs": [TEXTS[0]]}).json()["outputs"]
    assert isinstance(listed, list) and len(listed) == 1  # a list of one stays a list


def test_openapi_documents_every_route_with_tags_and_typed_models(server):
    spec = httpx.get(f"{server.url}/openapi.json").json()
    schemas = spec["components"]["schemas"]
    assert {t["name"] for t in spec["tags"]} == {"predict", "feedback", "service"}
    routes = {(path, method): op for path, ops in spec["paths"].items() for method, op in ops.items()}
    assert set(routes) == {("/health", "get"), ("/v1/tasks", "get"), ("/v1/predict", "post"),
                           ("/v1/stream", "post"), ("/v1/feedback", "post")}
    for (path, method), op in routes.items():
        assert op["tags"] and op["tags"][0] in {"predict", "feedback", "service"}, path
        if method == "post":
            body = op["requestBody"]["content"]["application/json"]["schema"]
            assert body["$ref"].rsplit("/", 1)[1] in schemas, path
        ok = next(v for k, v in op["responses"].items() if k.startswith("2"))
        assert [c["schema"] for c in ok["content"].values()], path  # a typed answer
        for code, answer in op["responses"].items():
            if code.startswith("4"):
                assert answer["content"]["application/json"]["schema"]["$ref"].endswith(
                    "/ErrorResponse"), (path, code)
    inputs = schemas["PredictRequest"]["properties"]["inputs"]["anyOf"]
    assert {"type": "string"} in inputs and any(i.get("type") == "array" for i in inputs)
    assert routes[("/v1/tasks", "get")]["responses"]["200"]["content"]["application/json"][
        "schema"]["$ref"].endswith("/TasksResponse")
    assert "corrections" in schemas["TaskInfo"]["properties"]
    assert set(schemas["FeedbackResponse"]["required"]) >= {"stored", "id", "task"}


def test_oversized_and_malformed_bodies(server):
    big = httpx.post(f"{server.url}/v1/predict", content=json.dumps({"inputs": ["z" * 5000]}),
                     headers={"content-type": "application/json"})
    assert big.status_code == 413 and "larger than 4000 bytes" in big.json()["detail"]
    chunked = httpx.post(f"{server.url}/v1/predict",  # no content-length: counted as it streams
                         content=iter([b'{"inputs": ["', b"z" * 5000, b'"]}']),
                         headers={"content-type": "application/json"})
    assert chunked.status_code == 413
    broken = httpx.post(f"{server.url}/v1/predict", content=b'{"inputs": [',
                        headers={"content-type": "application/json"})
    assert broken.status_code == 422 and "not valid JSON" in broken.json()["detail"]


def test_concurrent_requests_are_batched_and_answered_in_order(server, loaded):
    requests = [[f"{TEXTS[i % len(TEXTS)]} #{i}", TEXTS[(i + 1) % len(TEXTS)]] for i in range(48)]
    expected = loaded.predict([t for r in requests for t in r])
    batcher = server.app.state.batchers["financial-sentiment"]
    before = batcher.batches
    with ThreadPoolExecutor(16) as pool:
        answers = list(pool.map(lambda r: post(server.url, {"inputs": r}), requests))
    assert all(a.status_code == 200 for a in answers)
    got = [o for a in answers for o in a.json()["outputs"]]
    assert [o["label"] for o in got] == [o["label"] for o in expected]
    for mine, ref in zip(got, expected):
        for label, p in ref["probabilities"].items():
            assert abs(mine["probabilities"][label] - p) < 1e-4  # batch padding changes nothing
    assert batcher.batches - before < len(requests)  # several requests shared a forward pass


class SlowPredictor:
    """Stands in for a loaded model: echoes its inputs after a delay."""

    labels = None  # it predicts no classes

    def __init__(self, delay: float, tag: str) -> None:
        self.delay, self.tag, self.calls = delay, tag, 0
        self.started = threading.Event()  # set once a forward pass is under way

    def predict(self, inputs):
        self.calls += 1
        self.started.set()
        time.sleep(self.delay)
        if any(x == "boom" for x in inputs):
            raise ValueError("cannot score 'boom'")
        return [{"echo": x, "task": self.tag} for x in inputs]


class EchoHead:
    """A head that takes no feedback (the server needs nothing else of it)."""

    name = "echo"

    def load_data(self, config, files): ...

    def fit(self, run): ...

    def predict(self, model_dir, inputs, config): ...


class FakeLoaded:
    def __init__(self, task: str, delay: float = 0.0) -> None:
        self.task, self.head, self.config = task, RegisteredHead(EchoHead()), {}
        self.predictor = SlowPredictor(delay, task)
        self.artifact = hub.Artifact(task, "v1", Path("/nonexistent"))

    def predict(self, inputs):
        return self.predictor.predict(inputs)


class TaggerPredictor(SlowPredictor):
    """Stands in for an entity tagger: the whole input is one PER entity."""

    def predict(self, inputs):
        return [{"entities": [{"type": "PER", "text": x, "start": 0, "end": len(x), "score": 0.9}]}
                for x in inputs]


def test_entities_also_carry_hugging_face_token_classification_keys():
    tagger = FakeLoaded("tagger")
    tagger.predictor = TaggerPredictor(0.0, "tagger")
    with BackgroundServer([tagger], ServeSettings(port=0)) as running:
        one = post(running.url, {"inputs": "Ann Lee"}).json()["outputs"]
        many = post(running.url, {"inputs": ["Ann Lee", "Bo"]}).json()["outputs"]
    assert one["entities"] == [{"type": "PER", "text": "Ann Lee", "start": 0, "end": 7,
                                "score": 0.9, "entity_group": "PER", "word": "Ann Lee"}]
    assert [o["entities"][0]["word"] for o in many] == ["Ann Lee", "Bo"]  # the old keys stay


def strip(outputs):
    """Outputs without their prediction_id (a fresh id each time)."""
    return [{k: v for k, v in out.items() if k != "prediction_id"} for out in outputs]


def test_several_tasks_one_failing_request_and_graceful_shutdown():
    first, second = FakeLoaded("first", delay=0.3), FakeLoaded("second")
    running = BackgroundServer([first, second], ServeSettings(port=0, max_wait_ms=50))
    with running:
        url = running.url
        needs_task = post(url, {"inputs": ["a"]})
        assert needs_task.status_code == 422 and "first, second" in needs_task.json()["detail"]
        assert strip(post(url, {"inputs": ["a"], "task": "second"}).json()["outputs"]) == [
            {"echo": "a", "task": "second"}]
        with ThreadPoolExecutor(3) as pool:  # a failing request does not sink its batch-mates
            good, bad, other = pool.map(lambda xs: post(url, {"inputs": xs, "task": "first"}),
                                        [["g1", "g2"], ["boom"], ["g3"]])
        assert strip(good.json()["outputs"]) == [{"echo": "g1", "task": "first"},
                                                 {"echo": "g2", "task": "first"}]
        assert strip(other.json()["outputs"]) == [{"echo": "g3", "task": "first"}]
        assert bad.status_code == 422 and "boom" in bad.json()["detail"]
        results = {}
        first.predictor.started.clear()
        slow = threading.Thread(target=lambda: results.update(
            r=post(url, {"inputs": ["late"], "task": "first"})))
        slow.start()
        assert first.predictor.started.wait(30)  # the request is in flight (0.3 s forward)
        running.stop()
        slow.join()
    assert results["r"].status_code == 200
    assert strip(results["r"].json()["outputs"]) == [{"echo": "late", "task": "first"}]


def test_serve_command_options():
    from click.testing import CliRunner

    from tunehub.core.cli import main
    from tunehub.core.cli.serve import _assign_models
    from tunehub.core.errors import ConfigError

    assert _assign_models(("a",), ("a@v2",)) == {"a": "a@v2"}
    assert _assign_models(("a", "b"), ("b@v1",)) == {"a": None, "b": "b@v1"}
    with pytest.raises(ConfigError):
        _assign_models(("a", "b"), ("somewhere",))
    help_text = CliRunner().invoke(main, ["serve", "--help"]).output
    assert "127.0.0.1" in help_text and "--max-wait-ms" in help_text


def test_api_docs_reference_no_external_host(server):
    import re

    for page in ("/docs", "/redoc"):
        html = httpx.get(f"{server.url}{page}").text
        assert "<html" in html.lower()
        external = re.findall(r"""(?:src|href)=["'](https?://[^"']+)""", html)
        assert external == [], (page, external)
        for asset in re.findall(r"""(?:src|href)=["'](/[^"']+)""", html):
            assert httpx.get(f"{server.url}{asset}").status_code == 200, asset
    assert "url: '/openapi.json'" in httpx.get(f"{server.url}/docs").text


def test_urllib_gets_the_413_and_its_message(server):
    """urllib sends the whole body before reading: the server must read it, then answer."""
    import urllib.error
    import urllib.request

    body = json.dumps({"inputs": ["x" * 1000] * 2000}).encode()  # over --max-body-bytes
    request = urllib.request.Request(f"{server.url}/v1/predict", data=body,
                                     headers={"content-type": "application/json"})
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(request, timeout=30)
    assert caught.value.code == 413
    assert "larger than" in json.loads(caught.value.read())["detail"]


KEY = "k3y-" + "x" * 20


def test_api_key_guards_feedback_on_loopback(loaded, tmp_path):
    from tunehub.core.operations.feedback import FeedbackStore

    store = FeedbackStore(tmp_path / "feedback.sqlite3")
    body = {"task": "financial-sentiment", "input": "Sales rose.", "label": "positive"}
    try:
        with BackgroundServer([loaded], ServeSettings(port=0, api_key=KEY), store=store) as running:
            assert post(running.url, {"inputs": ["Up."]}).status_code == 200

            def feedback(**headers):
                return httpx.post(f"{running.url}/v1/feedback", json=body, timeout=60, headers=headers)

            refused = feedback()
            assert refused.status_code == 401 and "API key" in refused.json()["detail"]
            assert feedback(Authorization="Bearer nope").status_code == 401
            ok = feedback(Authorization=f"Bearer {KEY}")
            assert ok.status_code == 201, ok.text
            assert feedback(**{"X-API-Key": KEY}).status_code == 201
    finally:
        store.close()


def test_beyond_loopback_every_route_but_health_needs_the_key(loaded, tmp_path):
    from fastapi.testclient import TestClient

    from tunehub.core.operations.feedback import FeedbackStore
    from tunehub.core.serving.serve import create_app

    store = FeedbackStore(tmp_path / "feedback.sqlite3")
    try:
        app = create_app([loaded], ServeSettings(host="0.0.0.0", api_key=KEY), store=store)
        with TestClient(app) as client:
            assert client.get("/health").status_code == 200
            for path in ("/v1/tasks", "/docs", "/openapi.json"):
                assert client.get(path).status_code == 401, path
            assert client.post("/v1/predict", json={"inputs": ["Up."]}).status_code == 401
            answer = client.post("/v1/predict", json={"inputs": ["Up."]},
                                 headers={"Authorization": f"Bearer {KEY}"})
            assert answer.status_code == 200
            tasks = client.get("/v1/tasks", headers={"X-API-Key": KEY}).json()["tasks"]
            assert all("/" not in str(t["base_model"]) for t in tasks)  # no local paths
    finally:
        store.close()


@pytest.mark.parametrize("args, words", [
    (["--host", "0.0.0.0"], "--api-key"),
    (["--host", "0.0.0.0", "--api-key", "short"], "at least 16"),
    (["--max-inputs", "-1"], "--max-inputs"),
    (["--max-batch", "0"], "--max-batch"),
])
def test_serve_refuses_unsafe_or_useless_settings_before_loading(args, words, monkeypatch):
    from click.testing import CliRunner

    from tunehub.core.cli import main

    monkeypatch.delenv("TUNEHUB_API_KEY", raising=False)
    result = CliRunner().invoke(main, ["serve", "financial-sentiment", *args])
    assert result.exit_code == 2 and words in result.stderr and "Traceback" not in result.output
