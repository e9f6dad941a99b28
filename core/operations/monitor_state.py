"""The monitor's state under ``TUNEHUB_HOME``: every closed (entity, window) and its alert.

`app monitor` keeps ``$TUNEHUB_HOME/monitor/<task>/state.sqlite3`` as it runs, so the
dashboard (`app serve --ui`, `app ui`) draws the trend while the stream is read and a
restart shows the same picture. Two tables:

- ``windows``: one row per (window length, entity, window start) with its counts and,
  for a window that alerted, the alert as JSON (examples included). A replay of the same
  stream replaces its windows instead of adding copies; ``seq`` grows with every write, so
  a reader can tell that something changed.
- ``runs``: one row per `app monitor` run: its model, input, settings, counts and status
  (``running``, ``finished`` or ``stopped``), updated as it goes.

The file is created when the first window closes (a run that fails before leaves nothing
behind) and written in WAL mode, committed after a batch of rows at most every 0.25 s
and whenever the input goes quiet, so readers never wait for the monitor and the monitor
never waits for them.
"""
from __future__ import annotations

import json
import sqlite3
import time
import uuid
from collections.abc import Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

FILE = "state.sqlite3"
EVERY_S = 0.25  # while rows keep coming, commit at most this often
TABLES = """
CREATE TABLE IF NOT EXISTS windows (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, window_s REAL NOT NULL, entity TEXT NOT NULL,
    start REAL NOT NULL, end REAL NOT NULL, volume INTEGER NOT NULL, negative INTEGER NOT NULL,
    positive INTEGER NOT NULL, alert TEXT, model TEXT NOT NULL, run TEXT NOT NULL,
    UNIQUE (window_s, entity, start));
CREATE INDEX IF NOT EXISTS windows_series ON windows (window_s, start);
CREATE TABLE IF NOT EXISTS runs (
    id TEXT PRIMARY KEY, started TEXT NOT NULL, updated TEXT NOT NULL, status TEXT NOT NULL,
    model TEXT NOT NULL, source TEXT NOT NULL, window TEXT NOT NULL, window_s REAL NOT NULL,
    settings TEXT NOT NULL, rows INTEGER NOT NULL DEFAULT 0, scored INTEGER NOT NULL DEFAULT 0,
    windows INTEGER NOT NULL DEFAULT 0, alerts INTEGER NOT NULL DEFAULT 0);
"""


def root() -> Path:
    from ..artifacts.hub import home

    return home() / "monitor"


def state_path(task: str) -> Path:
    return root() / task / FILE


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


class MonitorState:
    """The writer of one `app monitor` run: `window` as windows close, `commit` after each
    batch, `close` at the end."""

    def __init__(self, task: str, model: str, source: str, settings: Mapping[str, Any],
                 window_s: float, path: Path | None = None) -> None:
        self.path = path or state_path(task)
        self.run = uuid.uuid4().hex[:12]
        self.model, self.window_s = model, window_s
        self.info = (source, str(settings["window"]), json.dumps(dict(settings), default=str))
        self.db: sqlite3.Connection | None = None
        self.pending: list[tuple[Any, ...]] = []
        self.last = -float("inf")  # when the last commit was (time.monotonic)

    def _open(self) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        db.executescript(TABLES)
        source, window, settings = self.info
        db.execute("INSERT INTO runs (id, started, updated, status, model, source, window, "
                   "window_s, settings) VALUES (?, ?, ?, 'running', ?, ?, ?, ?, ?)",
                   (self.run, _now(), _now(), self.model, source, window, self.window_s, settings))
        return db

    def window(self, stats: Any, alert: Mapping[str, Any] | None) -> None:
        """Keep one closed (entity, window) until the next `commit`."""
        self.pending.append((self.window_s, stats.entity, stats.start, stats.end, stats.volume,
                             stats.negative, stats.positive,
                             json.dumps(dict(alert), default=str, ensure_ascii=False) if alert else None,
                             self.model, self.run))

    def commit(self, counts: Any, status: str = "running", now: bool = True) -> None:
        """Write the windows kept so far and the run's counts, in one transaction (unless
        ``now`` is False and the last commit was less than ``EVERY_S`` ago)."""
        if not now and time.monotonic() - self.last < EVERY_S:
            return
        if self.db is None:
            if not self.pending:
                return  # nothing closed yet: no file
            self.db = self._open()
        self.last = time.monotonic()
        self.db.execute("BEGIN")
        self.db.executemany(
            "INSERT OR REPLACE INTO windows (window_s, entity, start, end, volume, negative, "
            "positive, alert, model, run) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", self.pending)
        self.db.execute("UPDATE runs SET updated = ?, status = ?, rows = ?, scored = ?, windows = ?, "
                        "alerts = ? WHERE id = ?", (_now(), status, counts.rows, counts.scored,
                                                    counts.windows, counts.alerts, self.run))
        self.db.execute("COMMIT")
        self.pending.clear()

    def close(self, counts: Any, finished: bool) -> None:
        if self.db is None and not self.pending:
            return
        self.commit(counts, "finished" if finished else "stopped")
        self.db.close()
        self.db = None


# -- reading (the dashboard) ------------------------------------------------------------


def monitored_tasks() -> list[str]:
    """Tasks with a monitor state, by name."""
    folder = root()
    if not folder.is_dir():
        return []
    return sorted(p.name for p in folder.iterdir() if (p / FILE).is_file())


def _read(task: str) -> sqlite3.Connection | None:
    path = state_path(task)
    if not path.is_file():
        return None
    return sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)


def version(task: str) -> str:
    """Changes with every write of the task's state ("" while there is none)."""
    db = _read(task)
    if db is None:
        return ""
    try:
        return _version(db)
    finally:
        db.close()


def _version(db: sqlite3.Connection) -> str:
    seq, = db.execute("SELECT COALESCE(MAX(seq), 0) FROM windows").fetchone()
    runs, updated = db.execute("SELECT COUNT(*), MAX(updated) FROM runs").fetchone()
    return f"{seq}.{runs}.{updated}"


def read_state(task: str, *, window_s: float | None = None, entities: list[str] | None = None,
               since: float | None = None, until: float | None = None, top: int = 12,
               limit: int = 2000) -> dict[str, Any]:
    """What the dashboard draws for ``task``: the window lengths on record, the entities
    by volume, each chosen entity's windows (oldest first, the last ``limit``), its alerts
    and the latest runs. Without ``entities``, the ``top`` busiest ones."""
    db = _read(task)
    if db is None:
        return {"task": task, "version": "", "windows": [], "window_s": None, "entities": [],
                "series": {}, "alerts": [], "runs": []}
    try:
        runs = [dict(zip(("id", "started", "updated", "status", "model", "source", "window",
                          "window_s", "rows", "scored", "windows", "alerts"), row))
                for row in db.execute("SELECT id, started, updated, status, model, source, window, "
                                      "window_s, rows, scored, windows, alerts FROM runs "
                                      "ORDER BY started DESC, rowid DESC LIMIT 10")]
        lengths = [w for w, in db.execute("SELECT DISTINCT window_s FROM windows ORDER BY window_s")]
        if window_s not in lengths:
            window_s = next((r["window_s"] for r in runs if r["window_s"] in lengths),
                            lengths[0] if lengths else None)
        where, args = "window_s = ?", [window_s]
        if since is not None:
            where, args = where + " AND end > ?", [*args, since]
        if until is not None:
            where, args = where + " AND start < ?", [*args, until]
        volumes = db.execute(f"SELECT entity, SUM(volume), SUM(alert IS NOT NULL) FROM windows "
                             f"WHERE {where} GROUP BY entity ORDER BY SUM(volume) DESC, entity",
                             args).fetchall()
        chosen = [e for e in entities if any(e == v[0] for v in volumes)] if entities else \
            [v[0] for v in volumes[:top]]
        series: dict[str, list[list[Any]]] = {}
        alerts: list[dict[str, Any]] = []
        for entity in chosen:
            rows = db.execute(f"SELECT start, end, volume, negative, positive, alert FROM windows "
                              f"WHERE {where} AND entity = ? ORDER BY start DESC LIMIT ?",
                              [*args, entity, limit]).fetchall()[::-1]
            series[entity] = [[start, end, volume, negative, positive, alert is not None]
                              for start, end, volume, negative, positive, alert in rows]
            alerts += [{**json.loads(alert), "start": start} for start, _, _, _, _, alert in rows
                       if alert]
        token = _version(db)
    finally:
        db.close()
    alerts.sort(key=lambda a: (a["start"], a.get("entity", "")))
    return {"task": task, "version": token, "windows": lengths,
            "window_s": window_s,
            "entities": [{"entity": e, "volume": v, "alerts": a} for e, v, a in volumes],
            "series": series, "alerts": alerts, "runs": runs}
