"""Streaming prediction over files: read CSV/TSV/JSONL/Parquet in batches, write as we go.

Memory stays bounded by one batch: a 1 GB input is never read whole. The output
(CSV or JSONL, by extension) keeps every input column and adds the prediction, in input
order; it is written to a temporary name and renamed when complete.
"""
from __future__ import annotations

import csv
import json
import os
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from ..running.data import FORMATS, Record, parquet_columns, file_kind, iter_records
from ..errors import DataError, did_you_mean



@dataclass
class Source:
    path: Path
    kind: str
    columns: list[str]
    size: int  # bytes, for progress


def open_source(path: str | Path) -> Source:
    """An input file checked for type, existence and at least one row (read lazily after)."""
    path = Path(path).expanduser()
    kind = file_kind(path, "--input")
    first = next(iter_records(path, kind), None)
    if first is None:
        raise DataError(f"{path}: the file has no data rows.")
    columns = list(first[1]) if kind != "parquet" else parquet_columns(path)
    return Source(path, kind, columns, path.stat().st_size)


def iter_rows(source: Source, progress: Callable[[int], None] | None = None) -> Iterator[Record]:
    """Records one at a time (the reader the training data uses too)."""
    return iter_records(source.path, source.kind, progress)


def input_column(source: Source, column: str | None, roles: Mapping[str, str],
                 role: str = "text") -> str:
    """--column, else the column of the head's input ``role`` (its ``input_role``: ``text``,
    ``query``, ``user``...) as the task maps it, else the only column."""
    if column:
        if column not in source.columns:
            raise DataError(f"{source.path}: no column '{column}'.{did_you_mean(column, source.columns)} "
                            f"Columns: {', '.join(source.columns)}.")
        return column
    name = roles.get(role, role)
    if name in source.columns:
        return name
    if len(source.columns) == 1:
        return source.columns[0]
    raise DataError(f"{source.path}: no {role} column found (looked for '{name}'). Columns: "
                    f"{', '.join(source.columns)}. Name one with --column.")


def batches(source: Source, column: str, size: int,
            progress: Callable[[int], None] | None = None) -> Iterator[list[tuple[dict[str, Any], str]]]:
    """Lists of (record, text) of at most ``size`` rows; texts as written (not stripped),
    so character offsets in predictions point into the record's own text."""
    batch: list[tuple[dict[str, Any], str]] = []
    for number, record in iter_rows(source, progress):
        batch.append((record, row_text(source, column, number, record)))
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def row_text(source: Source, column: str, number: int, record: Mapping[str, Any]) -> str:
    """The text of row ``number`` in ``column``, as written; a DataError naming the row when
    it is empty or not a string."""
    value = record.get(column)
    if value is not None and not isinstance(value, str):
        raise DataError(f"{source.path}, row {number}: '{column}' is a "
                        f"{type(value).__name__}, not text. Write it as a string.")
    text = "" if value is None else value
    if not text.strip():
        raise DataError(f"{source.path}, row {number}: empty '{column}'. Fill it in or "
                        "delete the row.")
    return text


class Sink:
    """Writes records plus predictions as JSONL (stdout or file) or CSV."""

    def __init__(self, handle: IO[str], kind: str) -> None:
        self.handle, self.kind, self.writer, self.count = handle, kind, None, 0

    def write(self, records: Sequence[dict[str, Any]], outputs: Sequence[Mapping[str, Any]]) -> None:
        for record, output in zip(records, outputs, strict=True):
            if self.kind == "jsonl":
                self.handle.write(json.dumps({**record, "prediction": output}, default=str) + "\n")
            else:
                row = {**record, **{f"prediction_{k}": cell(v) for k, v in output.items()}}
                if self.writer is None:
                    self.writer = csv.DictWriter(self.handle, list(row), extrasaction="ignore",
                                                 delimiter="\t" if self.kind == "tsv" else ",")
                    self.writer.writeheader()
                self.writer.writerow(row)
            self.count += 1


def cell(value: Any) -> Any:
    """A prediction field as one CSV (or Parquet) cell: lists and objects as JSON text."""
    return json.dumps(value, default=str) if isinstance(value, (dict, list)) else value


@contextmanager
def open_sink(output: str | Path | None) -> Iterator[Sink]:
    """A sink on ``output`` (written to a temp name, renamed when done) or stdout (JSONL)."""
    if output is None:
        yield Sink(sys.stdout, "jsonl")
        return
    path = Path(output).expanduser()
    kind = FORMATS.get(path.suffix.lower())
    if kind not in ("csv", "tsv", "jsonl"):
        raise DataError(f"--output {path}: write .csv, .tsv or .jsonl.")
    tmp = path.with_name(f".{path.name}.partial")
    with open(tmp, "w", newline="", encoding="utf-8") as handle:
        try:
            yield Sink(handle, kind)
        except BaseException:
            handle.close()
            tmp.unlink(missing_ok=True)
            raise
    os.replace(tmp, path)


def predict_file(loaded: Any, input_path: str | Path, output: str | Path | None,
                 column: str | None = None, batch_size: int = 256,
                 show_progress: bool = True) -> dict[str, Any]:
    """Stream ``input_path`` through ``loaded.predict`` into ``output`` (stdout when None)."""
    import time

    if batch_size < 1:
        raise DataError(f"--batch-size must be at least 1, got {batch_size}.")
    source = open_source(input_path)
    name = input_column(source, column, loaded.config["dataset"]["columns"],
                        loaded.head.input_role)
    start, rows = time.perf_counter(), 0
    with _progress(source, show_progress) as advance, open_sink(output) as sink:
        for batch in batches(source, name, batch_size, advance):
            outputs = loaded.predict([text for _, text in batch])
            sink.write([record for record, _ in batch], outputs)
            rows += len(batch)
    seconds = time.perf_counter() - start
    return {"input": str(source.path), "output": str(output) if output else "-",
            "column": name, "rows": rows, "seconds": round(seconds, 2),
            "rows_per_second": round(rows / seconds, 1) if seconds else None}


@contextmanager
def _progress(source: Source, enabled: bool) -> Iterator[Callable[[int], None] | None]:
    """A bytes-read progress bar on stderr (nothing when disabled or not a terminal)."""
    if not enabled or not sys.stderr.isatty():
        yield None
        return
    from rich.progress import (BarColumn, DownloadColumn, Progress, TextColumn,
                               TimeRemainingColumn)

    from ..running.progress import console

    with Progress(TextColumn("[bold]predicting[/]"), BarColumn(), DownloadColumn(),
                  TimeRemainingColumn(), console=console(), transient=True) as bar:
        task = bar.add_task("predict", total=source.size or None)
        yield lambda done: bar.update(task, completed=done)
        bar.update(task, completed=source.size)
