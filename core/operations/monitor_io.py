"""Reading a monitoring stream: a file (CSV, TSV, JSONL, Parquet) or stdin, one record at
a time, tolerating bad rows.

Unlike training data, a stream is not rejected for one bad row: a line that is not JSON, or
a CSV row with the wrong number of fields, comes out as a `Malformed` item that the monitor
counts. Stdin is read on a thread so the monitor can flush a part-filled batch when the
feed goes quiet (``tail -f feed.jsonl | app monitor ...`` emits alerts without waiting for
more input); the queue between them is bounded, so memory is too.
"""
from __future__ import annotations

import csv
import io
import json
import queue
import sys
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from ..running.data import FORMATS
from ..errors import DataError

IDLE = object()  # yielded when stdin has been quiet for a while


@dataclass
class Malformed:
    where: str
    why: str


Item = tuple[str, dict[str, Any]] | Malformed  # (where, record) or a bad row


def stream_kind(path: str, fmt: str | None) -> str:
    if fmt:
        return fmt
    if path == "-":
        return "jsonl"
    kind = FORMATS.get(Path(path).suffix.lower())
    if kind is None:
        raise DataError(f"{path}: unsupported file type '{Path(path).suffix}'. Use one of "
                        f"{', '.join(sorted(FORMATS))}, or --format for stdin.")
    return kind


def open_lines(path: str) -> IO[str]:
    if path == "-":
        return io.TextIOWrapper(sys.stdin.buffer, encoding="utf-8", errors="replace")
    if not Path(path).expanduser().is_file():
        raise DataError(f"{path}: no such file. Check the path given to --input.")
    return open(Path(path).expanduser(), encoding="utf-8-sig", errors="replace", newline="")


def records(path: str, kind: str, handle: IO[str] | None = None) -> Iterator[Item]:
    """Every record of the stream in order; bad rows as `Malformed`."""
    name = "stdin" if path == "-" else str(path)
    if kind == "parquet":
        import pyarrow.parquet as pq

        file = Path(path).expanduser()
        if not file.is_file():
            raise DataError(f"{path}: no such file. Check the path given to --input.")
        try:
            parquet = pq.ParquetFile(file)
        except Exception as exc:  # noqa: BLE001 - pyarrow's errors for a damaged file
            raise DataError(f"{path}: not a readable Parquet file ({type(exc).__name__}: "
                            f"{' '.join(str(exc).split())[:200]}).") from None
        number = 0
        for batch in parquet.iter_batches(batch_size=4096):
            for record in batch.to_pylist():
                number += 1
                yield f"{name}, record {number}", record
        return
    handle = handle or open_lines(path)
    if kind == "jsonl":
        yield from _jsonl(name, handle)
    else:
        yield from _csv(name, handle, "\t" if kind == "tsv" else ",")


MAX_LINE_CHARS = 10_000_000  # a longer line is skipped as malformed, never held whole


def _lines(handle: IO[str], limit: int | None = None) -> Iterator[str | None]:
    """The stream's lines; None in place of one over ``limit`` characters, read in pieces."""
    limit = limit or MAX_LINE_CHARS
    while True:
        line = handle.readline(limit + 1)
        if not line:
            return
        if len(line) > limit and not line.endswith("\n"):
            while (rest := handle.readline(limit)) and not rest.endswith("\n"):
                pass
            yield None
            continue
        yield line


def _jsonl(name: str, handle: IO[str]) -> Iterator[Item]:
    for number, line in enumerate(_lines(handle), 1):
        if line is None:
            yield Malformed(f"{name}, line {number}", f"over {MAX_LINE_CHARS:,} characters")
            continue
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            yield Malformed(f"{name}, line {number}", f"not JSON ({exc.msg})")
            continue
        if not isinstance(record, dict):
            yield Malformed(f"{name}, line {number}", "not a JSON object")
            continue
        yield f"{name}, line {number}", record


def _csv(name: str, handle: IO[str], delimiter: str) -> Iterator[Item]:
    reader = csv.reader(handle, delimiter=delimiter)
    try:
        header = [h.strip() for h in next(reader)]
    except StopIteration:
        return
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:  # a field over the csv module's limit, a stray NUL byte
            yield Malformed(f"{name}, row {reader.line_num}", f"unreadable CSV ({exc})")
            continue
        where = f"{name}, row {reader.line_num}"
        if not any(cell.strip() for cell in row):
            continue
        if len(row) != len(header):
            yield Malformed(where, f"{len(row)} fields, the header has {len(header)}")
            continue
        yield where, dict(zip(header, row))


def with_idle(items: Iterator[Item], idle_s: float, limit: int = 10_000) -> Iterator[Any]:
    """Read ``items`` on a thread; yield them, and `IDLE` after ``idle_s`` without one."""
    box: queue.Queue = queue.Queue(maxsize=limit)
    done = object()

    def pump() -> None:
        try:
            for item in items:
                box.put(item)
        except BaseException as exc:  # handed to the reader below
            box.put(exc)
        box.put(done)

    threading.Thread(target=pump, daemon=True, name="tunehub-monitor-reader").start()
    while True:
        try:
            item = box.get(timeout=idle_s)
        except queue.Empty:
            yield IDLE
            continue
        if item is done:
            return
        if isinstance(item, BaseException):
            raise item
        yield item


def check_columns(first: Mapping[str, Any], columns: Mapping[str, str], where: str,
                  entity_required: bool) -> bool:
    """Fail (exit 2, before any model loads) when a mapped column is missing.

    Returns whether the stream has an entity column. The entity column is optional
    unless it was mapped explicitly.
    """
    present = list(first)
    for role in ("time", "text") + (("entity",) if entity_required else ()):
        column = columns[role]
        if column not in present:
            from ..errors import did_you_mean

            raise DataError(
                f"{where}: no '{column}' column for the {role} role{did_you_mean(column, present)} "
                f"Columns: {', '.join(present)}. Map it with --set monitor.columns.{role}=<column>.")
    return columns["entity"] in present
