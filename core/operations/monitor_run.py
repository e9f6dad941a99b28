"""`app monitor`: classify a stream in batches, aggregate per entity and window, alert.

Everything a person can get wrong (the task, a window such as ``1x``, a missing column,
an unknown rule or sink) is checked before the model loads. After that, a bad row is
counted, never fatal.
"""
from __future__ import annotations

import sys
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import ConfigError, DataError
from .monitor import ALL, Counts, WindowMonitor, WindowStats, parse_time
from .monitor_io import IDLE, Malformed, check_columns, records, stream_kind, with_idle
from .monitor_state import MonitorState

SERIES_WINDOWS = 2000  # windows per entity kept for the trend chart
REPORT_ALERTS = 1000  # alerts kept for the report's table


@dataclass
class MonitorResult:
    counts: Counts
    model: str
    settings: dict[str, Any]
    entities: Counter = field(default_factory=Counter)  # entity -> rows
    series: dict[str, deque] = field(default_factory=dict)  # entity -> (start, share, volume)
    alerts: deque = field(default_factory=lambda: deque(maxlen=REPORT_ALERTS))
    report: str | None = None

    def to_json(self) -> dict[str, Any]:
        c = self.counts
        return {"model": self.model, "rows": c.rows, "scored": c.scored, "malformed": c.malformed,
                "out_of_order": c.out_of_order, "late": c.late, "windows": c.windows,
                "alerts": c.alerts, "sink_errors": c.sink_errors, "entities": len(self.entities),
                "problems": c.problems, "report": self.report}


def monitor_settings(catalog: Any, task: str, overrides: Iterable[str]) -> dict[str, Any]:
    """The task's ``[monitor]`` section with --set overrides; refuses tasks without one."""
    from ..running.runner import resolve_config

    spec = catalog.task(task)
    head = catalog.head_of(spec)
    if not head.monitor_outputs:
        raise ConfigError(f"task '{task}' cannot be monitored: its head '{head.name}' declares no "
                          "monitorable outputs (a predicted label and a score per label, "
                          "monitor_outputs), as financial-sentiment's does.")
    config = resolve_config(catalog, spec, overrides)
    from .monitor import check_settings

    check_settings(config["monitor"])
    return config["monitor"]


def _first_record(items: Iterator[Any], counts: Counts) -> tuple[str, dict[str, Any]] | None:
    for item in items:
        if isinstance(item, Malformed):  # counted here; the first record is counted later
            counts.rows += 1
            counts.malformed_row(item.where, item.why)
            continue
        return item
    return None


def run_monitor(task: str, source: str, *, fmt: str | None = None, model: str | None = None,
                overrides: Sequence[str] = (), sinks: Sequence[str] = (),
                report_dir: str | Path | None = None, catalog: Any = None,
                loaded: Any = None, keep_state: bool = True, engine: Any = None) -> MonitorResult:
    """Monitor ``source`` (a file, or ``-`` for stdin) with a fine-tuned version of ``task``
    (``loaded``: an already-loaded model with ``predict(texts)``, for benchmarks).

    ``engine``: a `tunehub.core.serving.ray_engine.RayEngine` scores the file on Ray, ahead
    of the windows and alerts, which are computed here in the file's order.

    ``keep_state``: keep every closed window and alert in the task's monitor state under
    ``TUNEHUB_HOME`` (`tunehub.core.operations.monitor_state`), which the dashboard reads."""
    from ..extending.plugins import load_catalog
    from ..running.runner import Loaded, load
    from .sinks import make_sinks

    if engine is not None and source == "-":
        raise ConfigError("--engine ray scores a file: give --input FILE (a stream on stdin is "
                          "scored in this process; leave --engine out).")
    catalog = catalog or load_catalog()
    settings = monitor_settings(catalog, task, overrides)
    counts = Counts()
    try:
        rule = catalog.alert_rule(settings["rule"]).fn
    except ConfigError as exc:
        raise ConfigError(f"monitor.rule: {exc}") from None
    result = MonitorResult(counts, "", settings)
    windows = WindowMonitor(settings, rule, lambda s, a: None, counts)  # checks the window
    kind = stream_kind(source, fmt)
    items = records(source, kind)
    first = _first_record(items, counts)
    if first is None:
        raise DataError(f"{source}: no rows to monitor.")
    columns = settings["columns"]
    has_entity = check_columns(first[1], columns, first[0], columns["entity"] != "entity")
    made = make_sinks(list(sinks) or ["stdout"], catalog, settings)
    if loaded is None and engine is not None:
        from functools import partial

        from ..running.runner import version_config

        texts = partial(_texts, str(Path(source).expanduser().resolve()), kind, columns, has_entity)
        loaded = engine.load(task, catalog, version_config(task, model=model, catalog=catalog),
                             stream=(texts, source))
    loaded = loaded or load(task, model=model, catalog=catalog)
    labels = (loaded.predictor.labels if isinstance(loaded, Loaded) else None) or []
    fields = catalog.head_of(catalog.task(task)).monitor_outputs
    if labels and settings["negative_label"] not in labels:
        raise ConfigError(f"{loaded.artifact.ref} predicts {', '.join(labels)}: no "
                          f"'{settings['negative_label']}'. Set monitor.negative_label.")
    result.model = loaded.artifact.ref
    report = _ReportWriter(report_dir) if report_dir else None
    state = MonitorState(task, result.model, source, settings, windows.window) if keep_state else None
    windows.on_window = lambda stats, alert: _on_window(stats, alert, result, made, report, state)
    stream: Iterable[Any] = _chain(first, items)
    if source == "-":
        stream = with_idle(stream, float(settings["idle_flush_s"]))
    finished = False
    try:
        _consume(stream, loaded, windows, settings, has_entity, counts, fields,
                 (lambda now: state.commit(counts, now=now)) if state else (lambda now: None))
        windows.finish()
        finished = True
    finally:
        for sink in made:
            sink.close()
        if report:
            report.close(finished)  # windows.csv only for a stream read to its end
        if state:
            state.close(counts, finished)
    if report:
        from .monitor_report import write_report

        result.report = str(write_report(Path(report_dir), result, task, source))
    return result


def _texts(source: str, kind: str, columns: Mapping[str, str], has_entity: bool) -> Iterator[str]:
    """The texts the monitor scores from the file ``source``, in order (what an engine
    scores ahead of the windows)."""
    for item in records(source, kind):
        row = None if isinstance(item, Malformed) else _parse(item, columns, has_entity, Counts())
        if row is not None:
            yield row[2]


def _chain(first: Any, rest: Iterator[Any]) -> Iterator[Any]:
    yield first
    yield from rest


def _consume(stream: Iterable[Any], loaded: Any, windows: WindowMonitor,
             settings: Mapping[str, Any], has_entity: bool, counts: Counts,
             fields: Mapping[str, str], commit: Callable[[bool], None]) -> None:
    """Classify the stream batch by batch; ``commit(now)`` the state after each batch
    (``now``: the input went quiet, so write it at once)."""
    columns, size = settings["columns"], int(settings["batch_size"])
    batch: list[tuple[float, str, str]] = []
    for item in stream:
        if item is IDLE:
            _flush(batch, loaded, windows, settings, fields)
            commit(True)
            continue
        counts.rows += 1
        if isinstance(item, Malformed):
            counts.malformed_row(item.where, item.why)
            continue
        row = _parse(item, columns, has_entity, counts)
        if row is not None:
            batch.append(row)
            if len(batch) >= size:
                _flush(batch, loaded, windows, settings, fields)
                commit(False)
    _flush(batch, loaded, windows, settings, fields)


def _parse(item: tuple[str, dict[str, Any]], columns: Mapping[str, str], has_entity: bool,
           counts: Counts) -> tuple[float, str, str] | None:
    where, record = item
    text = record.get(columns["text"])
    if not isinstance(text, str) or not text.strip():
        counts.malformed_row(where, f"no text in '{columns['text']}'")
        return None
    try:
        time = parse_time(record.get(columns["time"]))
    except (ValueError, TypeError, OverflowError):
        counts.malformed_row(where, f"'{columns['time']}' is not a time: {record.get(columns['time'])!r}")
        return None
    entity = ALL
    if has_entity:
        value = record.get(columns["entity"])
        entity = str(value).strip() if value is not None else ""
        if not entity:
            counts.malformed_row(where, f"no entity in '{columns['entity']}'")
            return None
    return time, entity, text.strip()


def _flush(batch: list[tuple[float, str, str]], loaded: Any, windows: WindowMonitor,
           settings: Mapping[str, Any], fields: Mapping[str, str]) -> None:
    if not batch:
        return
    outputs = loaded.predict([text for _, _, text in batch])
    negative = settings["negative_label"]
    for (time, entity, text), out in zip(batch, outputs):
        label = str(out[fields["label"]])
        p_negative = float((out.get(fields["scores"]) or {}).get(negative, label == negative))
        windows.add(time, entity, label, p_negative, text)
    batch.clear()


def _on_window(stats: WindowStats, alert: dict[str, Any] | None, result: MonitorResult,
               sinks: Sequence[Any], report: _ReportWriter | None,
               state: MonitorState | None = None) -> None:
    result.entities[stats.entity] += stats.volume
    series = result.series.setdefault(stats.entity, deque(maxlen=SERIES_WINDOWS))
    series.append((stats.start, stats.negative_share, stats.volume, alert is not None))
    if report:
        report.window(stats, alert)
    if state:
        state.window(stats, alert)
    if alert is None:
        return
    result.alerts.append(alert)
    for sink in sinks:
        spec = sink.spec
        try:
            sink.send(alert)
        except Exception as exc:  # a sink's failure never stops the monitor
            result.counts.sink_errors += 1
            print(f"warning: sink {spec}: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}",
                  file=sys.stderr)


class _ReportWriter:
    """Streams every closed (entity, window) aggregate to ``windows.csv`` in the report folder."""

    def __init__(self, folder: str | Path) -> None:
        import csv

        self.folder = Path(folder).expanduser()
        self.folder.mkdir(parents=True, exist_ok=True)
        self.partial = self.folder / ".windows.csv.partial"  # renamed when the stream ends
        self.handle = open(self.partial, "w", newline="", encoding="utf-8")
        self.writer = csv.writer(self.handle)
        self.header = ["entity", "window_start", "window_end", "volume", "negative", "positive",
                       "negative_share", "positive_share", "net_sentiment", "alert"]
        self.writer.writerow(self.header)

    def window(self, stats: WindowStats, alert: dict[str, Any] | None) -> None:
        row = stats.to_json()
        self.writer.writerow([row[k] for k in self.header[:-1]] + [int(alert is not None)])

    def close(self, complete: bool = True) -> None:
        """Publish ``windows.csv`` when the stream was read to its end; else leave none."""
        import os

        self.handle.close()
        if complete:
            os.replace(self.partial, self.folder / "windows.csv")
        else:
            self.partial.unlink(missing_ok=True)
