"""Alert rules and sinks from plugins, and the built-in webhook sink against a local server."""
from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tunehub.core.running import runner
from tunehub.core.extending.hookspecs import hookimpl
from tunehub.core.operations.monitor_run import run_monitor
from tunehub.core.operations.sinks import SinkError, WebhookSink, make_sinks, parse_spec

from test_hooks_meta import with_plugin
from test_monitor import KeywordModel, stream, write_jsonl


@pytest.fixture
def keyword_model(monkeypatch):
    monkeypatch.setattr(runner, "load", lambda task, **kwargs: KeywordModel())


def test_hook_register_alert_rules(tmp_path, keyword_model):
    seen = []

    def busy(window, history, settings):
        """Alerts on any window with more rows than the entity's busiest past window."""
        seen.append((window.entity, len(history), settings["window"]))
        most = max((w.volume for w in history), default=None)
        if most is None or window.volume <= most:
            return None
        return {"score": window.volume / most, "baseline_share": 0.0, "busiest_before": most}

    class Plugin:
        @hookimpl
        def register_alert_rules(self, register):
            register("busier-than-ever", busy, description="volume above every past window")

    catalog = with_plugin(Plugin())
    try:
        assert catalog.alert_rule("busier-than-ever").plugin == "throwaway"
        rows = stream(days=4, surge=("none", -1)) + [
            {"time": "2024-03-05T10:00:00+00:00", "entity": "GAMA", "text": f"extra {i}"}
            for i in range(40)]
        data = write_jsonl(tmp_path / "news.jsonl", rows)
        alerts = tmp_path / "alerts.jsonl"
        result = run_monitor("financial-sentiment", str(data), catalog=catalog,
                             overrides=["monitor.rule=busier-than-ever"], sinks=[f"file:{alerts}"])
        found = [json.loads(line) for line in alerts.read_text().splitlines()]
        assert [(a["entity"], a["window_start"], a["rule"]) for a in found] == [
            ("GAMA", "2024-03-05T00:00:00Z", "busier-than-ever")]
        assert found[0]["busiest_before"] == 30 and found[0]["volume"] == 40
        assert result.counts.alerts == 1
        assert ("ALFA", 0, "1d") in seen and ("ALFA", 3, "1d") in seen  # history grows
    finally:
        catalog.pm.unregister(name="throwaway")


def test_hook_register_alert_sinks(tmp_path, keyword_model):
    received = []

    class Pager:
        def __init__(self, target, settings):
            self.target, self.closed = target, False

        def send(self, alert):
            received.append((self.target, alert["entity"]))

        def close(self):
            self.closed = True

    class Broken:
        def __init__(self, target, settings):
            pass

        def send(self, alert):
            raise RuntimeError("pager is down")

    class Plugin:
        @hookimpl
        def register_alert_sinks(self, register):
            register("pager", Pager, description="pages the on-call person")
            register("broken", Broken)

    catalog = with_plugin(Plugin())
    try:
        assert catalog.alert_sink("pager").description == "pages the on-call person"
        data = write_jsonl(tmp_path / "news.jsonl", stream())
        result = run_monitor("financial-sentiment", str(data), catalog=catalog,
                             sinks=["pager:oncall-team", "broken:x", f"file:{tmp_path / 'a.jsonl'}"])
        assert received == [("oncall-team", "BETA")]
        assert result.counts.sink_errors == 1  # the broken sink is counted, the others delivered
        assert json.loads((tmp_path / "a.jsonl").read_text())["entity"] == "BETA"
    finally:
        catalog.pm.unregister(name="throwaway")


class Hook(BaseHTTPRequestHandler):
    """Answers ``code`` (503) to the first ``fail`` posts, then 200; records every body."""

    fail, calls, bodies, delay, code = 0, 0, [], 0.0, 503

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        type(self).calls += 1
        time.sleep(self.delay)
        if type(self).calls <= self.fail:
            self.send_response(self.code)
        else:
            type(self).bodies.append(json.loads(body))
            self.send_response(200)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def hook_server():
    Hook.fail, Hook.calls, Hook.bodies, Hook.delay, Hook.code = 0, 0, [], 0.0, 503
    server = ThreadingHTTPServer(("127.0.0.1", 0), Hook)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/alerts"
    server.shutdown()
    server.server_close()


FAST = {"webhook_timeout_s": 0.5, "webhook_retries": 2, "webhook_backoff_s": 0.01}


def test_webhook_retries_then_delivers(hook_server):
    Hook.fail = 2
    WebhookSink(hook_server, FAST).send({"entity": "BETA", "score": 5.0})
    assert Hook.calls == 3 and Hook.bodies == [{"entity": "BETA", "score": 5.0}]


def test_webhook_gives_up_after_retries_and_on_timeouts(hook_server):
    Hook.fail = 10
    with pytest.raises(SinkError, match=r"HTTP 503\) after 3 tries"):
        WebhookSink(hook_server, FAST).send({"entity": "X"})
    Hook.fail, Hook.calls, Hook.delay = 0, 0, 1.0
    start = time.monotonic()
    with pytest.raises(SinkError, match="after 3 tries"):
        WebhookSink(hook_server, FAST).send({"entity": "X"})
    assert time.monotonic() - start < 2.5  # three 0.5 s timeouts, not three 1 s answers


def test_webhook_retries_429_but_not_other_client_errors(hook_server):
    Hook.fail, Hook.code = 1, 429  # too many requests: worth another try
    WebhookSink(hook_server, FAST).send({"entity": "X"})
    assert Hook.calls == 2 and Hook.bodies == [{"entity": "X"}]
    Hook.fail, Hook.calls, Hook.code = 10, 0, 404  # a wrong URL does not heal by waiting
    with pytest.raises(SinkError, match=r"HTTP 404\) after 1 try\."):
        WebhookSink(hook_server, FAST).send({"entity": "X"})
    assert Hook.calls == 1


def test_webhook_waits_longer_after_each_failure(hook_server, monkeypatch):
    from types import SimpleNamespace

    import tenacity

    waits = []  # tenacity sleeps through tenacity.nap.time, the hook its docs give for tests
    monkeypatch.setattr(tenacity.nap, "time", SimpleNamespace(sleep=waits.append))
    Hook.fail = 10
    with pytest.raises(SinkError, match="after 4 tries"):
        WebhookSink(hook_server, {**FAST, "webhook_retries": 3, "webhook_backoff_s": 0.5}).send({})
    assert waits == [0.5, 1.0, 2.0]


def test_webhook_unreachable_is_retried_then_reported():
    import socket

    with socket.socket() as probe:  # a free port nobody listens on
        probe.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{probe.getsockname()[1]}/alerts"
    with pytest.raises(SinkError, match=rf"webhook {url}: alert not delivered \(.+\) after 3 tries"):
        WebhookSink(url, FAST).send({"entity": "X"})


def test_webhook_in_a_monitor_run(tmp_path, hook_server, keyword_model):
    data = write_jsonl(tmp_path / "news.jsonl", stream())
    result = run_monitor("financial-sentiment", str(data), sinks=[hook_server])
    assert result.counts.alerts == 1 and Hook.bodies[0]["entity"] == "BETA"


def test_sink_specs():
    assert parse_spec("http://127.0.0.1:9/x") == ("webhook", "http://127.0.0.1:9/x")
    assert parse_spec("file:out/alerts.jsonl") == ("file", "out/alerts.jsonl")
    assert parse_spec("stdout") == ("stdout", "")
    from tunehub.core.errors import ConfigError
    from tunehub.core.extending.plugins import load_catalog

    for url in ("ftp://x", "http://", "https://:443/alerts"):
        with pytest.raises(ConfigError, match="give an http:// or https:// URL with a host"):
            make_sinks([f"webhook:{url}"], load_catalog(), FAST)


def test_a_plugin_head_with_monitorable_outputs_is_monitored(tmp_path):
    """Monitoring is a head capability: a third-party head naming its own output fields."""

    class ToneHead:
        name = "tone-scorer"
        monitor_outputs = {"label": "tone", "scores": "tone_scores"}
        schema = {"monitor.window": "12h"}  # the head's own default wins over the core's

        def load_data(self, config, files): ...

        def fit(self, run): ...

        def predict(self, model_dir, inputs, config): ...

    class ToneModel:
        class artifact:
            ref = "tones@v1"

        def predict(self, texts):
            return [{"tone": "negative" if "fell" in t else "neutral",
                     "tone_scores": {"negative": 0.9 if "fell" in t else 0.1}} for t in texts]

    class Plugin:
        @hookimpl
        def register_heads(self, register):
            register(ToneHead())

        @hookimpl
        def register_tasks(self, register):
            register({"name": "tones", "head": {"name": "tone-scorer"}, "metrics": ["accuracy"],
                      "baselines": []})

    catalog = with_plugin(Plugin())
    try:
        assert catalog.head("tone-scorer").schema["monitor.threshold"] == 3.5
        data = write_jsonl(tmp_path / "news.jsonl", stream(days=10))
        alerts = tmp_path / "alerts.jsonl"
        result = run_monitor("tones", str(data), catalog=catalog, loaded=ToneModel(),
                             overrides=["monitor.window=1d"], sinks=[f"file:{alerts}"])
        assert result.counts.scored == result.counts.rows > 0
        found = [json.loads(line) for line in alerts.read_text().splitlines()]
        assert [a["entity"] for a in found] == ["BETA"]  # the surge day, read from "tone"
    finally:
        catalog.pm.unregister(name="throwaway")
