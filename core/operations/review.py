"""The review queue of the dashboard's feedback page, read from the feedback store.

A prediction is up for review when its confidence (the highest of the scores the task's
head declares in ``monitor_outputs``) is below a threshold, or when it is **flagged**:
someone sent feedback on it (``POST /v1/feedback`` with its ``prediction_id``). Feedback
saved by the dashboard carries ``"source": "dashboard"``; a prediction with such an item
counts as reviewed. Everything here only reads; writes go through `FeedbackStore.add`.
"""
from __future__ import annotations

import json
import sqlite3
from collections.abc import Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from .feedback import db_path

DASHBOARD = "dashboard"  # the ``source`` of feedback the dashboard stores
SCAN = 5000  # the newest predictions looked at for low confidence
FLAGGED = 1000  # the newest predictions with feedback looked at


def _read(path: Path | None) -> sqlite3.Connection | None:
    path = path or db_path()
    if not path.is_file():
        return None
    return sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)


def stored_tasks(path: Path | None = None) -> list[str]:
    """Tasks with stored predictions or feedback."""
    db = _read(path)
    if db is None:
        return []
    try:
        rows = db.execute("SELECT DISTINCT task FROM predictions UNION "
                          "SELECT DISTINCT task FROM feedback").fetchall()
    finally:
        db.close()
    return sorted(task for task, in rows)


def confidence(output: Mapping[str, Any], fields: Mapping[str, str] | None) -> float | None:
    """The highest score of an output, by the head's ``monitor_outputs`` (None without)."""
    scores = output.get(fields["scores"]) if fields else None
    if not isinstance(scores, Mapping) or not scores:
        return None
    values = [v for v in scores.values() if isinstance(v, (int, float)) and not isinstance(v, bool)]
    return float(max(values)) if values else None


def review_queue(task: str, *, fields: Mapping[str, str] | None, threshold: float = 0.6,
                 show: str = "review", reviewed: bool = False, limit: int = 50,
                 path: Path | None = None) -> list[dict[str, Any]]:
    """Predictions of ``task`` for review, newest first.

    ``show``: ``low`` (confidence below ``threshold``), ``flagged`` (feedback names them),
    ``review`` (either) or ``all`` (the newest). ``reviewed``: also those the dashboard
    already has feedback for. Each item: the prediction (``prediction_id``, ``created``,
    ``model``, ``input``, ``output``), its ``confidence``, its ``feedback`` (oldest first),
    and ``flagged`` / ``reviewed``."""
    db = _read(path)
    if db is None:
        return []
    try:
        recent = db.execute("SELECT id, model, input, output, created FROM predictions "
                            "WHERE task = ? ORDER BY created DESC LIMIT ?", (task, SCAN)).fetchall()
        named = [pid for pid, in db.execute(
            "SELECT prediction_id FROM feedback WHERE task = ? AND prediction_id IS NOT NULL "
            "GROUP BY prediction_id ORDER BY MAX(id) DESC LIMIT ?", (task, FLAGGED))]
        seen = {row[0] for row in recent}
        missing = [pid for pid in named if pid not in seen]
        older = _many(db, "SELECT id, model, input, output, created FROM predictions WHERE "
                          "task = ? AND id IN ({})", task, missing)
        rows = sorted([*recent, *older], key=lambda r: r[4], reverse=True)
        feedback = _many(db, "SELECT prediction_id, id, kind, value, extra, created FROM feedback "
                             "WHERE task = ? AND prediction_id IN ({}) ORDER BY id", task,
                         [r[0] for r in rows])
    finally:
        db.close()
    notes: dict[str, list[dict[str, Any]]] = {}
    for pid, fid, kind, value, extra, created in feedback:
        notes.setdefault(pid, []).append({**json.loads(extra), "id": fid, "kind": kind,
                                          kind: json.loads(value), "created": created})
    items = []
    for pid, model, raw_input, raw_output, created in rows:
        output = json.loads(raw_output)
        given = notes.get(pid, [])
        done = any(item.get("source") == DASHBOARD for item in given)
        flagged = any(item.get("source") != DASHBOARD for item in given)
        score = confidence(output, fields) if isinstance(output, Mapping) else None
        low = score is not None and score < threshold
        wanted = {"low": low, "flagged": flagged, "review": low or flagged, "all": True}[show]
        if wanted and (reviewed or not done):
            items.append({"prediction_id": pid, "created": created, "model": model,
                          "input": json.loads(raw_input), "output": output, "confidence": score,
                          "low": low, "flagged": flagged, "reviewed": done, "feedback": given})
            if len(items) >= limit:
                break
    return items


def _many(db: sqlite3.Connection, sql: str, task: str, ids: list[str]) -> list[tuple[Any, ...]]:
    """``sql`` with its ``IN ({})`` over ``ids``, in chunks SQLite takes."""
    found: list[tuple[Any, ...]] = []
    for start in range(0, len(ids), 500):
        chunk = ids[start:start + 500]
        found += db.execute(sql.format(", ".join("?" * len(chunk))), [task, *chunk]).fetchall()
    return found


def count_since(task: str, since: str | None, path: Path | None = None) -> int:
    """Feedback items of ``task`` stored at or after ``since`` (an ISO 8601 time; None: all)."""
    db = _read(path)
    if db is None:
        return 0
    try:
        if since is None:
            (n,) = db.execute("SELECT COUNT(*) FROM feedback WHERE task = ?", (task,)).fetchone()
        else:
            (n,) = db.execute("SELECT COUNT(*) FROM feedback WHERE task = ? AND created >= ?",
                              (task, since)).fetchone()
    finally:
        db.close()
    return n


def store_time(text: str | None) -> str | None:
    """An ISO 8601 time (such as a manifest's ``created``) in the store's own format, so
    that the two compare as text."""
    if not text:
        return None
    from .monitor import parse_time

    try:
        seconds = parse_time(text)
    except (ValueError, TypeError):
        return None
    return datetime.fromtimestamp(seconds, timezone.utc).isoformat(timespec="microseconds")
