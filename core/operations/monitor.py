"""Sentiment monitoring over time: per-entity windows, trailing baselines, alerts.

Rows (time, entity, predicted label, probability of the negative label, text) arrive in
stream order. Each row falls into a tumbling window of ``monitor.window`` aligned to the
Unix epoch. A window closes once a row at least ``monitor.lateness`` past its end has been
seen (or the stream ends); then every entity seen in it is scored by the alert rule against
the entity's own trailing windows, and its aggregate is handed on. A row whose window is
already closed is counted as late and dropped, so memory stays bounded: open windows
(bounded by the lateness), ``monitor.baseline_windows`` past windows per entity, and a
few example texts per open window.
"""
from __future__ import annotations

import heapq
import math
import re
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from ..errors import ConfigError

# The ``[monitor]`` settings of a task whose head declares monitorable outputs (a predicted
# label and a score per label: ``monitor_outputs``); the core adds them to that head's schema.
SETTINGS: dict[str, Any] = {
    "monitor.window": "1d",  # tumbling window: 90s, 15m, 1h, 1d, 1w
    "monitor.lateness": "0s",  # how long a window stays open for late rows after it ends
    "monitor.columns.time": "time",  # ISO 8601 or Unix seconds
    "monitor.columns.text": "text",
    "monitor.columns.entity": "entity",  # optional: without it every row is one entity
    "monitor.rule": "negative-share",  # a registered alert rule
    "monitor.method": "zscore",  # zscore | ratio (the negative-share rule)
    "monitor.threshold": 3.5,  # z-score (or ratio) at or above which a window alerts
    "monitor.min_increase": 0.25,  # and its negative share is at least this above baseline
    "monitor.min_volume": 10,  # rows in the window
    "monitor.min_baseline_volume": 20,  # rows in the trailing baseline
    "monitor.baseline_windows": 7,  # trailing windows that make the baseline
    "monitor.negative_label": "negative",
    "monitor.positive_label": "positive",
    "monitor.examples": 3,  # most negative texts per alert
    "monitor.batch_size": 64,  # rows per forward pass
    "monitor.idle_flush_s": 0.5,  # classify a part-filled batch when stdin is quiet this long
    "monitor.webhook_timeout_s": 5.0,
    "monitor.webhook_retries": 3,
    "monitor.webhook_backoff_s": 0.5,
}
UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
ALL = "(all)"  # the entity of every row when the input has no entity column


METHODS = ("zscore", "ratio")
# (low, high) of each numeric setting; None: unbounded. Checked before any model loads.
RANGES: dict[str, tuple[float | None, float | None]] = {
    "threshold": (None, None), "min_increase": (-1, 1), "min_volume": (1, None),
    "min_baseline_volume": (1, None), "baseline_windows": (1, 10_000), "examples": (0, 1000),
    "batch_size": (1, 100_000), "idle_flush_s": (0, 3600), "webhook_timeout_s": (0.001, 600),
    "webhook_retries": (0, 100), "webhook_backoff_s": (0, 600),
}


def check_settings(settings: Mapping[str, Any]) -> None:
    """Every ``[monitor]`` setting in range (one `ConfigError` naming the key and the fix)."""
    for key, (low, high) in RANGES.items():
        value = settings.get(key)
        if value is None:
            continue
        ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
        ok = ok and (low is None or value >= low) and (high is None or value <= high)
        if not ok:
            bounds = " and ".join(b for b in (f">= {low:g}" if low is not None else "",
                                              f"<= {high:g}" if high is not None else "") if b)
            raise ConfigError(f"monitor.{key} must be a finite number {bounds}, got {value!r}; "
                              f"fix it with --set monitor.{key}=...")
    if settings.get("method") not in METHODS:
        from ..errors import did_you_mean

        raise ConfigError(f"monitor.method must be one of {', '.join(METHODS)}, got "
                          f"'{settings.get('method')}'.{did_you_mean(str(settings.get('method')), METHODS)}")
    for key in ("window", "lateness"):
        parse_duration(settings[key], f"monitor.{key}")


def parse_duration(text: str, key: str = "monitor.window") -> float:
    """'90s', '15m', '1h', '1d', '2w' -> seconds; a clear error otherwise."""
    found = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*", str(text).lower())
    if not found or float(found.group(1)) < 0:
        raise ConfigError(f"{key} = '{text}' is not a duration; write a number and a unit "
                          "(s, m, h, d or w), e.g. --set monitor.window=1d.")
    return float(found.group(1)) * UNITS[found.group(2)]


def parse_time(value: Any) -> float:
    """An ISO 8601 string or a Unix time (seconds; milliseconds above 1e11, microseconds above
    1e14, nanoseconds above 1e17) -> epoch seconds. A time without a zone is taken as UTC. Raises ValueError when unparsable."""
    if isinstance(value, bool) or value is None:
        raise ValueError("no time")
    if isinstance(value, (int, float)) or re.fullmatch(r"\s*-?\d+(\.\d+)?\s*", str(value)):
        number = float(value)
        if not math.isfinite(number):
            raise ValueError("not a finite number")
        # seconds, milliseconds, microseconds or nanoseconds since 1970, by magnitude
        for scale, above in ((1e9, 1e17), (1e6, 1e14), (1e3, 1e11)):
            if abs(number) > above:
                number /= scale
                break
        if not -62135596800 <= number <= 253402300799:  # years 1 to 9999
            raise ValueError("outside the calendar")
        return number
    text = str(value).strip()
    moment = datetime.fromisoformat(text[:-1] + "+00:00" if text.endswith(("Z", "z")) else text)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.timestamp()


def iso(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, timezone.utc).isoformat().replace("+00:00", "Z")


@dataclass
class WindowStats:
    """One entity in one window: counts and the most negative texts."""

    entity: str
    start: float
    end: float
    volume: int = 0
    negative: int = 0
    positive: int = 0
    keep: int = 3  # how many example texts to keep
    _examples: list[tuple[float, int, str]] = field(default_factory=list)  # min-heap

    def add(self, label: str, p_negative: float, text: str, labels: tuple[str, str]) -> None:
        self.volume += 1
        self.negative += label == labels[0]
        self.positive += label == labels[1]
        item = (p_negative, self.volume, text)
        if len(self._examples) < self.keep:
            heapq.heappush(self._examples, item)
        elif item[0] > self._examples[0][0]:
            heapq.heapreplace(self._examples, item)

    @property
    def negative_share(self) -> float:
        return self.negative / self.volume if self.volume else 0.0

    @property
    def positive_share(self) -> float:
        return self.positive / self.volume if self.volume else 0.0

    @property
    def net(self) -> float:
        """Net sentiment: positive share minus negative share, in [-1, 1]."""
        return self.positive_share - self.negative_share

    def examples(self) -> list[str]:
        """The most negative texts (by the model's negative probability), most negative first."""
        return [text for _, _, text in sorted(self._examples, key=lambda e: (-e[0], e[1]))]

    def to_json(self) -> dict[str, Any]:
        return {"entity": self.entity, "window_start": iso(self.start), "window_end": iso(self.end),
                "volume": self.volume, "negative": self.negative, "positive": self.positive,
                "negative_share": round(self.negative_share, 4),
                "positive_share": round(self.positive_share, 4), "net_sentiment": round(self.net, 4)}


Rule = Callable[[WindowStats, Sequence[WindowStats], Mapping[str, Any]], "Mapping[str, Any] | None"]


def negative_share_rule(current: WindowStats, history: Sequence[WindowStats],
                        settings: Mapping[str, Any]) -> dict[str, Any] | None:
    """The default rule: this window's negative share exceeds the entity's trailing baseline.

    The baseline is the pooled negative share of the entity's trailing windows. With
    ``method = "zscore"`` the score is (share - baseline) / sqrt(b (1 - b) / volume), the
    baseline smoothed as b = (negatives + 1) / (volume + 2) so a spotless history still
    has a spread; with ``method = "ratio"`` it is share / b. An alert needs the score at
    or above ``threshold``, ``min_volume`` rows in the window, ``min_baseline_volume`` in
    the baseline and a rise of at least ``min_increase``.
    """
    base_volume = sum(w.volume for w in history)
    if current.volume < settings["min_volume"] or base_volume < settings["min_baseline_volume"]:
        return None
    base_negative = sum(w.negative for w in history)
    baseline = base_negative / base_volume
    smoothed = (base_negative + 1) / (base_volume + 2)
    share = current.negative_share
    if settings["method"] == "ratio":
        score = share / smoothed
    else:
        score = (share - smoothed) / math.sqrt(smoothed * (1 - smoothed) / current.volume)
    if score < settings["threshold"] or share - baseline < settings["min_increase"]:
        return None
    return {"baseline_share": round(baseline, 4), "baseline_volume": base_volume,
            "score": round(score, 3), "method": settings["method"]}


@dataclass
class Counts:
    """What the monitor saw, for the summary and the report."""

    rows: int = 0  # rows read
    scored: int = 0  # rows classified and counted in a window
    malformed: int = 0  # rows without a parsable time or a text (see `problems`)
    out_of_order: int = 0  # older than a row seen before, but in a window still open
    late: int = 0  # in a window already closed: counted here, otherwise dropped
    windows: int = 0  # (entity, window) aggregates closed
    alerts: int = 0
    sink_errors: int = 0
    problems: list[str] = field(default_factory=list)  # the first few malformed rows

    def malformed_row(self, where: str, why: str) -> None:
        self.malformed += 1
        if len(self.problems) < 10:
            self.problems.append(f"{where}: {why}")


class WindowMonitor:
    """Tumbling windows per entity over a stream; calls ``on_window(stats, alert)`` for each
    (entity, window) as its window closes (``alert`` is None when the rule did not fire)."""

    def __init__(self, settings: Mapping[str, Any], rule: Rule,
                 on_window: Callable[[WindowStats, dict[str, Any] | None], None],
                 counts: Counts | None = None) -> None:
        self.settings = settings
        self.window = parse_duration(settings["window"])
        if self.window <= 0:
            raise ConfigError("monitor.window must be longer than 0s, e.g. 1h or 1d.")
        self.lateness = parse_duration(settings["lateness"], "monitor.lateness")
        self.labels = (settings["negative_label"], settings["positive_label"])
        self.rule, self.on_window = rule, on_window
        self.counts = counts or Counts()
        self.open: dict[float, dict[str, WindowStats]] = {}
        self.history: dict[str, deque[WindowStats]] = {}
        self.watermark = -math.inf  # the latest time seen
        self.closed_before = -math.inf  # windows starting before this are closed

    def add(self, time: float, entity: str, label: str, p_negative: float, text: str) -> None:
        start = math.floor(time / self.window) * self.window
        if start < self.closed_before:
            self.counts.late += 1
            return
        if time < self.watermark:
            self.counts.out_of_order += 1
        cell = self.open.setdefault(start, {})
        stats = cell.get(entity)
        if stats is None:
            stats = cell[entity] = WindowStats(entity, start, start + self.window,
                                               keep=self.settings["examples"])
        stats.add(label, p_negative, text, self.labels)
        self.counts.scored += 1
        if time > self.watermark:
            self.watermark = time
            self._close(lambda s: s + self.window + self.lateness <= self.watermark)

    def finish(self) -> None:
        """The stream ended: close every open window."""
        self._close(lambda start: True)

    def _close(self, due: Callable[[float], bool]) -> None:
        for start in sorted(s for s in self.open if due(s)):
            for entity in sorted(self.open[start]):
                self._score(self.open[start][entity])
            del self.open[start]
            self.closed_before = max(self.closed_before, start + self.window)

    def _score(self, stats: WindowStats) -> None:
        past = self.history.setdefault(entity := stats.entity,
                                       deque(maxlen=self.settings["baseline_windows"]))
        oldest = stats.start - self.settings["baseline_windows"] * self.window
        trailing = [w for w in past if w.start >= oldest]
        found = self.rule(stats, trailing, self.settings)
        alert = None
        if found:
            alert = {"entity": entity, "window_start": iso(stats.start),
                     "window_end": iso(stats.end),
                     "negative_share": round(stats.negative_share, 4),
                     "baseline_share": found.get("baseline_share"), "volume": stats.volume,
                     "score": found.get("score"), "examples": stats.examples(),
                     "rule": self.settings["rule"],
                     **{k: v for k, v in found.items() if k not in ("baseline_share", "score")}}
            self.counts.alerts += 1
        stats._examples = stats._examples if alert else []  # keep memory to the counts
        past.append(stats)
        self.counts.windows += 1
        self.on_window(stats, alert)
