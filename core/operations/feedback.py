"""Feedback from production, stored durably in SQLite under ``TUNEHUB_HOME``.

``$TUNEHUB_HOME/feedback.sqlite3`` holds two tables: ``predictions`` (what the server
answered, under the ``prediction_id`` it returned) and ``feedback`` (the right answer a
person or a system sent back, with the input, the model version that answered and the
time). What a right answer looks like is the task's head's to say: its ``corrections``
(field -> JSON Schema), such as ``label`` for a classifier or ``entities`` for a tagger.

One writer thread owns the writing connection. It takes everything queued, writes it in one
transaction and commits (WAL journal, ``synchronous=FULL``) before anyone is told "stored":
acknowledged feedback survives a killed server, and many concurrent clients share one
commit instead of queueing for one each (group commit).
"""
from __future__ import annotations

import json
import queue
import sqlite3
import threading
import uuid
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import Future
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ..errors import ConfigError, DataError

LEGACY_CORRECTIONS = ("label", "faq_id", "item")  # `add` without a correction field named
ADDRESS = {"task", "prediction_id", "input"}  # what names the prediction a correction is about
RESERVED = {"id", "kind", "model", "predicted", "created"}  # what the store itself records
TABLES = """
CREATE TABLE IF NOT EXISTS predictions (
    id TEXT PRIMARY KEY, task TEXT NOT NULL, model TEXT NOT NULL, input TEXT NOT NULL,
    output TEXT NOT NULL, created TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS feedback (
    id INTEGER PRIMARY KEY AUTOINCREMENT, task TEXT NOT NULL, prediction_id TEXT,
    input TEXT NOT NULL, kind TEXT NOT NULL, value TEXT NOT NULL, model TEXT,
    predicted TEXT, extra TEXT NOT NULL, created TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS feedback_task_created ON feedback (task, created);
CREATE INDEX IF NOT EXISTS feedback_prediction ON feedback (prediction_id);
CREATE INDEX IF NOT EXISTS predictions_task_created ON predictions (task, created);
"""
BATCH = 1000  # items per transaction at most


def db_path() -> Path:
    from ..artifacts.hub import home

    return home() / "feedback.sqlite3"


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="microseconds")


def _connect(path: Path) -> sqlite3.Connection:
    path.parent.mkdir(parents=True, exist_ok=True)
    # autocommit mode: the writer opens and commits its transactions itself
    db = sqlite3.connect(path, timeout=30, check_same_thread=False, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")
    db.executescript(TABLES)
    return db


def check_store(path: Path | None = None) -> None:
    """Open (or create) the feedback store once: a damaged file is one `DataError` naming it."""
    path = path or db_path()
    try:
        db = _connect(path)
        try:
            db.execute("SELECT COUNT(*) FROM feedback").fetchone()
        finally:
            db.close()
    except sqlite3.DatabaseError as exc:
        raise DataError(f"{path}: the feedback store cannot be read ({exc}); move it aside "
                        "(feedback in it is kept there) and start again, or serve with "
                        "--no-log-predictions.") from None


class UnknownPrediction(DataError):
    """Feedback named a prediction_id this store never recorded."""


class FeedbackStore:
    """Writes predictions and feedback through one group-committing thread; reads directly."""

    def __init__(self, path: str | Path | None = None) -> None:
        self.path = Path(path) if path else db_path()
        _connect(self.path).close()  # create the file and tables now: errors surface early
        self.queue: queue.Queue = queue.Queue()
        self.thread = threading.Thread(target=self._write_loop, daemon=True,
                                       name="tunehub-feedback-writer")
        self.thread.start()

    # -- writing ----------------------------------------------------------------------
    def record_predictions(self, task: str, model: str, inputs: Sequence[Any],
                           outputs: Sequence[Mapping[str, Any]]) -> list[str]:
        """Queue the predictions for storage and return their ids (not waiting for disk)."""
        ids = [uuid.uuid4().hex for _ in inputs]
        created = now()
        rows = [(pid, task, model, json.dumps(i), json.dumps(o, default=str), created)
                for pid, i, o in zip(ids, inputs, outputs)]
        self.queue.put(("predictions", rows, None))
        return ids

    def add(self, item: Mapping[str, Any], model: str | None = None,
            correction: str | None = None) -> Future:
        """Queue one feedback item (see `check_item`) whose right answer is under the key
        ``correction`` (default: the first of label, faq_id, item it has); the future
        resolves to the stored row once it is committed, or fails with `UnknownPrediction`."""
        correction = correction or next((k for k in LEGACY_CORRECTIONS if item.get(k) is not None),
                                        None)
        if correction is None or correction not in item:
            raise DataError("give the right answer: name the correction field it is under.")
        done: Future = Future()
        self.queue.put(("feedback", (dict(item), model, now(), correction), done))
        return done

    def close(self) -> None:
        """Write what is queued, then stop the writer."""
        self.queue.put(None)
        self.thread.join(timeout=60)

    def _write_loop(self) -> None:
        db = _connect(self.path)
        stop = False
        while not stop:
            jobs = [self.queue.get()]
            while len(jobs) < BATCH:
                try:
                    jobs.append(self.queue.get_nowait())
                except queue.Empty:
                    break
            if None in jobs:
                stop = True
                jobs = [j for j in jobs if j is not None]
            results = []
            try:
                # one transaction, committed (and synced) before anyone hears back; each job
                # in a savepoint of its own, so one bad item fails alone
                db.execute("BEGIN")
                for kind, payload, done in jobs:
                    db.execute("SAVEPOINT job")
                    try:
                        outcome = self._write(db, kind, payload)
                    except Exception as exc:  # noqa: BLE001 - reported to that job's waiter
                        db.execute("ROLLBACK TO job")
                        outcome = DataError(f"this item could not be stored ({type(exc).__name__}); "
                                            "check its values.")
                    db.execute("RELEASE job")
                    results.append((done, outcome))
                db.execute("COMMIT")
            except Exception as exc:  # the whole batch failed: tell every waiter
                if db.in_transaction:
                    db.execute("ROLLBACK")
                for _, _, done in jobs:
                    if done is not None and not done.done():
                        done.set_exception(exc)
                continue
            for done, outcome in results:
                if done is None:
                    continue
                if isinstance(outcome, Exception):
                    done.set_exception(outcome)
                else:
                    done.set_result(outcome)
        db.close()

    @staticmethod
    def _write(db: sqlite3.Connection, kind: str, payload: Any) -> Any:
        if kind == "predictions":
            db.executemany("INSERT INTO predictions VALUES (?, ?, ?, ?, ?, ?)", payload)
            return None
        item, model, created, kind_name = payload
        pid, predicted, raw_input = item.get("prediction_id"), None, None
        if pid:
            found = db.execute("SELECT task, model, input, output FROM predictions WHERE id = ?",
                               (pid,)).fetchone()
            if found is None or found[0] != item["task"]:
                return UnknownPrediction(f"prediction_id '{pid}' is unknown for task "
                                         f"'{item['task']}'.")
            model, raw_input, predicted = found[1], found[2], found[3]
        else:
            raw_input = json.dumps(item["input"])
        extra = {k: v for k, v in item.items() if k not in ADDRESS and k != kind_name}
        cursor = db.execute(
            "INSERT INTO feedback (task, prediction_id, input, kind, value, model, predicted, "
            "extra, created) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (item["task"], pid, raw_input, kind_name, json.dumps(item[kind_name]), model,
             predicted, json.dumps(extra, default=str), created))
        return {"id": cursor.lastrowid, "task": item["task"], "prediction_id": pid,
                "model": model, "created": created}


def _check_text(value: Any, where: str, depth: int = 0) -> None:
    """Every string in a feedback item must be storable as UTF-8 (a lone surrogate such as
    ``"\\ud800"`` is not), and nesting stays shallow."""
    if depth > 20:
        raise DataError(f"{where}: nested too deeply.")
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise DataError(f"{where}: not valid Unicode text (a lone surrogate such as \\ud800); "
                            "send UTF-8 text.") from None
    elif isinstance(value, Mapping):
        for key, inner in value.items():
            _check_text(key, where, depth + 1)
            _check_text(inner, f"{where}.{key}", depth + 1)
    elif isinstance(value, (list, tuple)):
        for inner in value:
            _check_text(inner, where, depth + 1)


def check_item(item: Any, corrections: Mapping[str, Mapping[str, Any]]) -> tuple[dict[str, Any], str]:
    """A feedback body -> (the item to store, its correction field); `DataError` with a
    one-line reason otherwise. ``corrections``: field -> JSON Schema, from the task's head."""
    import jsonschema

    if not isinstance(item, Mapping):
        raise DataError('send a JSON object such as {"task": "...", "prediction_id": "...", '
                        '"label": "..."}.')
    if not isinstance(item.get("task"), str) or not item["task"]:
        raise DataError("task: missing; name the task the feedback is about.")
    reserved = sorted(set(item) & RESERVED)
    if reserved:
        raise DataError(f"{', '.join(reserved)}: set by the store, not by a client; leave "
                        f"{'it' if len(reserved) == 1 else 'them'} out.")
    for key, value in item.items():
        _check_text(value, key)
    has_id, has_input = item.get("prediction_id") is not None, item.get("input") is not None
    if has_id == has_input:
        raise DataError("give exactly one of prediction_id (from /v1/predict) or input.")
    if has_id and not isinstance(item["prediction_id"], str):
        raise DataError("prediction_id: expected a string.")
    if has_input and not (isinstance(item["input"], (str, dict)) and item["input"]):
        raise DataError("input: expected a non-empty text (or record).")
    given = [k for k in corrections if item.get(k) is not None]
    if len(given) != 1:
        names = ", ".join(corrections) or "(none: this task takes no feedback)"
        raise DataError(f"give exactly one right answer; task '{item['task']}' takes: {names}.")
    field = given[0]
    try:
        jsonschema.validate(item[field], corrections[field])
    except jsonschema.ValidationError as exc:
        where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in exc.absolute_path)
        raise DataError(f"{field}{where}: {exc.message}.") from None
    return dict(item), field


def list_feedback(task: str, since: str | None = None, limit: int | None = None,
                  path: Path | None = None) -> list[dict[str, Any]]:
    """Stored feedback of ``task``, oldest first (``since``: an ISO 8601 time)."""
    path = path or db_path()
    if not path.is_file():
        return []
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)
    try:
        sql = ("SELECT id, task, prediction_id, input, kind, value, model, predicted, extra, "
               "created FROM feedback WHERE task = ?")
        args: list[Any] = [task]
        if since:
            sql += " AND created >= ?"
            args.append(since)
        if limit:  # the newest ``limit``, still listed oldest first
            rows = db.execute(sql + " ORDER BY id DESC LIMIT ?", [*args, limit]).fetchall()[::-1]
        else:
            rows = db.execute(sql + " ORDER BY id", args).fetchall()
    finally:
        db.close()
    return [_row(r) for r in rows]


def _row(r: Iterable[Any]) -> dict[str, Any]:
    fid, task, pid, raw_input, kind, value, model, predicted, extra, created = r
    out = {"id": fid, "task": task, "prediction_id": pid, "input": json.loads(raw_input),
           kind: json.loads(value), "kind": kind, "model": model,
           "predicted": json.loads(predicted) if predicted else None, "created": created}
    return {**json.loads(extra), **out}  # extra keys never hide a stored field


def parse_since(text: str | None) -> str | None:
    """``--since``: an ISO 8601 time or a duration back from now (``7d``, ``12h``)."""
    if not text:
        return None
    from .monitor import parse_duration, parse_time

    try:
        seconds = parse_time(text)
    except (ValueError, TypeError):
        try:
            seconds = datetime.now(timezone.utc).timestamp() - parse_duration(text, "--since")
        except ConfigError:
            raise ConfigError(f"--since '{text}': give an ISO 8601 time (2024-05-01 or "
                              "2024-05-01T12:00:00Z) or a duration such as 7d or 12h.") from None
    try:
        return datetime.fromtimestamp(seconds, timezone.utc).isoformat(timespec="microseconds")
    except (OverflowError, OSError, ValueError):
        raise ConfigError(f"--since '{text}' reaches outside the calendar; give a time after "
                          "1970 or a shorter duration such as 30d.") from None


EVALUATION_ROW = "skipped (an evaluation row: scored on, never trained on)"


def input_text(item: Mapping[str, Any]) -> str | None:
    """The row key of a feedback item about a text: the text, trimmed (None when not a text)."""
    text = item.get("input")
    return text.strip() if isinstance(text, str) and text.strip() else None


def latest_corrections(items: Iterable[Mapping[str, Any]], held_out: set[str],
                       key=input_text) -> tuple[dict[str, Mapping[str, Any]], Counter]:
    """For a head's ``join_feedback``: the newest item per row key (``items`` come oldest
    first), leaving out items whose key is in ``held_out`` (evaluation rows) or that
    ``key`` cannot place (it returns None); and the counts of what was left out."""
    latest: dict[str, Mapping[str, Any]] = {}
    counts: Counter = Counter()
    for item in items:
        found = key(item)
        if found is None:
            counts["skipped (not an input this task reads)"] += 1
        elif found in held_out:
            counts[EVALUATION_ROW] += 1
        else:
            if found in latest:
                counts["replaced by a later correction"] += 1
            latest[found] = item
    return latest, counts
