"""Alert sinks: where `app monitor` sends each alert (one JSON object).

A sink is made by a factory ``factory(target, settings)`` registered under a name (hook
``register_alert_sinks``); it has ``send(alert)`` and may have ``close()``. Built in:
``stdout``, ``file:PATH`` (JSON lines, appended) and ``webhook:URL`` (HTTP POST with a
timeout and retries with exponential backoff). ``--sink http://...`` means a webhook.
"""
from __future__ import annotations

import json
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol


class Sink(Protocol):
    """What a sink factory returns: ``send(alert)``; ``close()`` is optional."""

    def send(self, alert: Mapping[str, Any]) -> None: ...


@dataclass
class OpenSink:
    """A sink made for one monitor run, its optional ``close`` resolved once when made."""

    spec: str
    sink: Any
    close: Callable[[], None] = lambda: None

    def send(self, alert: Mapping[str, Any]) -> None:
        self.sink.send(alert)


def alert_line(alert: Mapping[str, Any]) -> str:
    return json.dumps(dict(alert), ensure_ascii=False, default=str)


class StdoutSink:
    """One JSON line per alert on stdout, flushed at once (pipes see it immediately)."""

    def __init__(self, target: str = "", settings: Mapping[str, Any] | None = None) -> None:
        pass

    def send(self, alert: Mapping[str, Any]) -> None:
        sys.stdout.write(alert_line(alert) + "\n")
        sys.stdout.flush()


class FileSink:
    """JSON lines appended to a file, flushed per alert."""

    def __init__(self, target: str, settings: Mapping[str, Any] | None = None) -> None:
        from ..errors import ConfigError

        if not target:
            raise ConfigError("the file sink needs a path: --sink file:alerts.jsonl.")
        self.path = Path(target).expanduser()
        if self.path.is_dir():
            raise ConfigError(f"--sink file:{target} is a folder; give a file path such as "
                              f"file:{Path(target) / 'alerts.jsonl'}.")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.handle = open(self.path, "a", encoding="utf-8")

    def send(self, alert: Mapping[str, Any]) -> None:
        self.handle.write(alert_line(alert) + "\n")
        self.handle.flush()

    def close(self) -> None:
        self.handle.close()


class WebhookSink:
    """POST each alert as JSON to a URL (httpx), retried with tenacity.

    A connection error, a timeout, 429 or a 5xx answer is retried ``webhook_retries``
    times, waiting ``webhook_backoff_s`` x 2^(retry - 1) in between (tenacity's
    ``wait_exponential``); any other 4xx is final. When every try fails the alert is lost
    and `SinkError` says so (the monitor counts it and goes on).
    """

    def __init__(self, target: str, settings: Mapping[str, Any] | None = None) -> None:
        import httpx

        from ..errors import ConfigError

        try:
            host = httpx.URL(target).host
        except httpx.InvalidURL:
            host = ""
        if not target.startswith(("http://", "https://")) or not host:
            raise ConfigError(f"webhook sink '{target}': give an http:// or https:// URL with a "
                              "host, e.g. https://hooks.example.com/alerts.")
        settings = settings or {}
        self.url = target
        self.timeout = float(settings.get("webhook_timeout_s", 5.0))
        self.retries = int(settings.get("webhook_retries", 3))
        self.backoff = float(settings.get("webhook_backoff_s", 0.5))
        self.client = httpx.Client(timeout=self.timeout)

    def send(self, alert: Mapping[str, Any]) -> None:
        import httpx
        import tenacity

        retrying = tenacity.Retrying(
            stop=tenacity.stop_after_attempt(self.retries + 1),
            wait=tenacity.wait_exponential(multiplier=self.backoff),
            retry=tenacity.retry_if_exception(_transient), reraise=True)
        try:
            retrying(self._post, alert_line(alert).encode())
        except httpx.HTTPError as exc:
            tries = retrying.statistics.get("attempt_number", 1)
            raise SinkError(f"webhook {self.url}: alert not delivered ({_reason(exc)}) after "
                            f"{tries} {'try' if tries == 1 else 'tries'}.") from None

    def _post(self, body: bytes) -> None:
        answer = self.client.post(self.url, content=body,
                                  headers={"Content-Type": "application/json"})
        answer.raise_for_status()

    def close(self) -> None:
        self.client.close()


def _transient(exc: BaseException) -> bool:
    """Worth another try: no answer (connection, timeout), 429 or a 5xx."""
    import httpx

    if isinstance(exc, httpx.HTTPStatusError):
        code = exc.response.status_code
        return code == 429 or code >= 500
    return isinstance(exc, httpx.TransportError)


def _reason(exc: BaseException) -> str:
    import httpx

    if isinstance(exc, httpx.HTTPStatusError):
        return f"HTTP {exc.response.status_code}"
    return str(exc) or type(exc).__name__


class SinkError(RuntimeError):
    """A sink could not deliver an alert."""


def parse_spec(spec: str) -> tuple[str, str]:
    """'stdout' | 'file:PATH' | 'webhook:URL' | 'http(s)://URL' | 'NAME:TARGET' -> (name, target)."""
    if spec.startswith(("http://", "https://")):
        return "webhook", spec
    name, _, target = spec.partition(":")
    return name.strip(), target.strip()


def make_sinks(specs: list[str], catalog: Any, settings: Mapping[str, Any]) -> list[OpenSink]:
    """Build the sinks named by ``specs`` (checked before any model loads)."""
    from ..errors import ConfigError

    made = []
    for spec in specs:
        name, target = parse_spec(spec)
        try:
            factory = catalog.alert_sink(name).factory
        except ConfigError as exc:
            raise ConfigError(f"--sink {spec}: {exc}") from None
        try:
            sink = factory(target, settings)
        except ConfigError:
            raise
        except OSError as exc:
            raise ConfigError(f"--sink {spec}: cannot open {exc.filename or target} "
                              f"({exc.strerror or exc}); give a writable file path.") from None
        except Exception as exc:  # noqa: BLE001 - a plugin's factory: one line, not a traceback
            raise ConfigError(f"--sink {spec}: the '{name}' sink could not be set up "
                              f"({type(exc).__name__}: {' '.join(str(exc).split())[:200]}).") from None
        if not callable(getattr(sink, "send", None)):
            raise ConfigError(f"--sink {spec}: the '{name}' sink factory returned an object "
                              "without send(alert); see docs/plugins.md (alert sinks).")
        close = getattr(sink, "close", None)
        made.append(OpenSink(spec, sink, close) if callable(close) else OpenSink(spec, sink))
    return made
