"""Reading task data: CSV, TSV, JSONL and Parquet, chosen by extension.

Every problem is one `DataError` naming the file, the row and the fix, raised before any
model loads. Row numbers are what a person sees in an editor: for CSV the header is row 1
(the first record is row 2); for JSONL the line number; for Parquet the record number.
"""
from __future__ import annotations

import csv
import hashlib
import json
import random
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import DataError, did_you_mean

# Python's csv module refuses fields over 128 KiB; tunehub allows texts up to this many
# characters per field and names the row of any longer one.
MAX_FIELD_CHARS = 10_000_000
# Below these, metrics are noise: a run still trains, but says so loudly (stderr, report).
MIN_ROWS_PER_LABEL = 10
# Characters of scripts written without spaces (a regex character-class body): kana, CJK
# ideographs and Hangul syllables. Text scores read each as a word; plots need a CJK font.
CJK_CHARACTERS = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uac00-\ud7af"
MIN_EVAL_ROWS = 30

FORMATS = {".csv": "csv", ".tsv": "tsv", ".jsonl": "jsonl", ".ndjson": "jsonl",
           ".json": "jsonl", ".parquet": "parquet", ".pq": "parquet"}


@dataclass
class Table:
    """Rows of one data file, with the row number of each record for messages."""

    path: Path
    columns: list[str]
    rows: list[dict[str, Any]]
    row_numbers: list[int]

    def __len__(self) -> int:
        return len(self.rows)

    def where(self, index: int) -> str:
        return f"{self.path}, row {self.row_numbers[index]}"


def file_kind(path: Path, flag: str = "--data/--eval-data") -> str:
    """The reader for ``path`` by extension; a DataError for a missing or unknown file."""
    kind = FORMATS.get(path.suffix.lower())
    if kind is None:
        raise DataError(
            f"{path}: unsupported file type '{path.suffix}'. "
            f"Use one of {', '.join(sorted(FORMATS))}."
        )
    if not path.is_file():
        import stat

        try:
            mode = path.stat().st_mode
        except OSError:
            raise DataError(f"{path}: no such file. Check the path given to {flag}.") from None
        what = ("a folder" if stat.S_ISDIR(mode) else "a named pipe (FIFO)" if stat.S_ISFIFO(mode)
                else "a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) else "not a regular file")
        raise DataError(f"{path}: {what}, not a data file; give a regular {path.suffix} file "
                        f"to {flag}.")
    return kind


def read_table(path: str | Path) -> Table:
    """Read a whole data file; raises DataError for a missing, empty or malformed file."""
    path = Path(path).expanduser()
    kind = file_kind(path)
    rows, numbers = [], []
    for number, record in iter_records(path, kind):
        rows.append(record)
        numbers.append(number)
    if not rows:
        raise DataError(f"{path}: the file has no data rows. Add records below the header.")
    columns = (parquet_columns(path) if kind == "parquet"
               else list(dict.fromkeys(key for row in rows for key in row)))
    return Table(path, columns, rows, numbers)


Record = tuple[int, dict[str, Any]]  # (row number as an editor shows it, record)


def iter_records(path: Path, kind: str, progress: Any = None) -> Iterator[Record]:
    """Records of a data file one at a time (bounded memory); ``progress(bytes_read)`` is
    called now and then. Every problem is a DataError naming the file and the row."""
    if kind == "parquet":
        yield from _parquet_records(path)
        return
    with open(path, "rb") as raw:
        lines = _Utf8Lines(path, raw)
        if kind == "jsonl":
            yield from _jsonl_records(path, lines, progress)
        else:
            yield from _csv_records(path, lines, kind, progress)


class _Utf8Lines:
    """Lines of a binary file decoded as UTF-8 one at a time, so a bad byte is reported
    with its true line and byte offset (a buffered text wrapper only knows its chunk)."""

    def __init__(self, path: Path, raw: Any) -> None:
        self.path, self.raw, self.offset, self.number = path, raw, 0, 0

    def __iter__(self) -> Iterator[str]:
        for line in self.raw:
            self.number += 1
            try:
                text = line.decode("utf-8-sig" if self.number == 1 else "utf-8")
            except UnicodeDecodeError as exc:
                raise DataError(
                    f"{self.path}, line {self.number}: bytes that are not valid UTF-8 (byte "
                    f"offset {self.offset + exc.start}). Save the file as UTF-8, e.g. "
                    f"`iconv -f latin1 -t utf-8 {self.path.name} > fixed{self.path.suffix}`."
                ) from None
            self.offset += len(line)
            yield text


def _csv_records(path: Path, lines: _Utf8Lines, kind: str, progress: Any) -> Iterator[Record]:
    csv.field_size_limit(MAX_FIELD_CHARS)
    reader = csv.reader(iter(lines), delimiter="\t" if kind == "tsv" else ",")
    try:
        header = next(reader, None)
        if not header or not any(h.strip() for h in header):
            raise DataError(f"{path}: the file is empty. Add a header row and data rows.")
        columns = [h.strip() for h in header]
        repeated = sorted({c for c in columns if columns.count(c) > 1})
        if repeated:
            raise DataError(
                f"{path}, row 1: the header names column(s) {', '.join(repr(c) for c in repeated)} "
                "more than once; give every column a distinct name."
            )
        for count, record in enumerate(reader):
            if not any(cell.strip() for cell in record):
                continue  # blank line
            if len(record) != len(columns):
                raise DataError(
                    f"{path}, row {reader.line_num}: {len(record)} fields, the header has "
                    f"{len(columns)}. Quote values that contain commas (\"like, this\")."
                )
            if progress and count % 256 == 0:
                progress(lines.offset)
            yield reader.line_num, dict(zip(columns, record))
    except csv.Error as exc:
        line = reader.line_num + 1
        if "field larger than field limit" in str(exc):
            raise DataError(
                f"{path}, row {line}: a field longer than {MAX_FIELD_CHARS:,} characters (the "
                "most tunehub reads). Shorten it, or check for an unclosed quote above it."
            ) from None
        raise DataError(f"{path}, row {line}: not valid {kind.upper()} ({exc}). "
                        "Check the quoting of that row.") from None


def _jsonl_records(path: Path, lines: _Utf8Lines, progress: Any) -> Iterator[Record]:
    """One JSON object per line; a bare JSON string counts as ``{"text": ...}``."""
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataError(
                f"{path}, line {number}: not valid JSON ({exc.msg}). Each line must be one "
                "JSON object."
            ) from None
        if isinstance(record, str):
            record = {"text": record}
        if not isinstance(record, dict):
            raise DataError(f"{path}, line {number}: expected a JSON object, got "
                            f"{type(record).__name__}.")
        if progress and number % 256 == 0:
            progress(lines.offset)
        yield number, record


def _parquet_records(path: Path) -> Iterator[Record]:
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise DataError(f"{path}: reading Parquet needs pyarrow: pip install pyarrow.") from None
    try:
        batches = pq.ParquetFile(path).iter_batches(batch_size=4096)
        number = 0
        for batch in batches:
            for record in batch.to_pylist():
                number += 1
                yield number, record
    except Exception as exc:
        raise DataError(f"{path}: not a readable Parquet file ({exc}).") from None


def parquet_columns(path: Path) -> list[str]:
    import pyarrow.parquet as pq

    return list(pq.ParquetFile(path).schema_arrow.names)


def column_for(table: Table, role: str, columns: dict[str, str]) -> str:
    """The column that plays ``role``; raises a DataError naming the fix when absent."""
    name = columns.get(role, role)
    if name not in table.columns:
        hint = did_you_mean(name, table.columns)
        raise DataError(
            f"{table.path}: no column '{name}' for the {role} role.{hint} The file has "
            f"columns: {', '.join(table.columns)}. Map it with "
            f"--set dataset.columns.{role}=<column>."
        )
    return name


def _describe(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, float) and value != value:
        return "NaN (a missing value)"
    kind = {bool: "a boolean", int: "a number", float: "a number", list: "a list",
            dict: "an object"}.get(type(value), type(value).__name__)
    shown = json.dumps(value, default=str)
    return f"{kind} ({shown[:40]}{'...' if len(shown) > 40 else ''})"


def text_cell(table: Table, index: int, column: str) -> str:
    """The text in a cell: a non-empty string. JSONL and Parquet cells that are numbers,
    lists, objects, null or NaN are refused rather than turned into strings like "nan"."""
    value = table.rows[index].get(column)
    if value is not None and not isinstance(value, str):
        raise DataError(
            f"{table.where(index)}: '{column}' is {_describe(value)}, not text. Write it as a "
            "string (in quotes in JSONL), or fix the row."
        )
    text = "" if value is None else value.strip()
    if not text:
        raise DataError(
            f"{table.where(index)}: empty '{column}'. Fill it in or delete the row."
        )
    return text


def id_text(value: Any) -> str:
    """A user or item id as text: ``0`` is an id like any other (only None or blank is
    missing), and a whole float from Parquet (``12.0``) is ``"12"``."""
    if value is None or (isinstance(value, float) and value != value):
        return ""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value).strip()


def key_cell(table: Table, index: int, column: str) -> str:
    """A label or id: a non-empty string or a whole number (JSONL ``"label": 1``), as text."""
    value = table.rows[index].get(column)
    if isinstance(value, float) and value == value and value.is_integer():
        value = int(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return text_cell(table, index, column)


def files_hash(paths: Iterable[str | Path]) -> str:
    digest = hashlib.sha256()
    for path in paths:
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    return "sha256:" + digest.hexdigest()


def stratified_split(
    labels: Sequence[Any], fraction: float, seed: int
) -> tuple[list[int], list[int]]:
    """Seeded split keeping each label's share; every label with 2+ rows lands in both parts."""
    if not 0 < fraction < 1:
        raise DataError(f"dataset.eval_fraction must be between 0 and 1, got {fraction}.")
    by_label: dict[Any, list[int]] = defaultdict(list)
    for index, label in enumerate(labels):
        by_label[label].append(index)
    rng = random.Random(seed)
    train, held = [], []
    for label in sorted(by_label, key=str):
        indices = by_label[label]
        rng.shuffle(indices)
        n_eval = round(len(indices) * fraction)
        if len(indices) >= 2:
            n_eval = min(max(n_eval, 1), len(indices) - 1)
        else:
            n_eval = 0
        held += indices[:n_eval]
        train += indices[n_eval:]
    if not held:
        raise DataError(
            "too little data to hold out an evaluation set; give one with --eval-data."
        )
    return sorted(train), sorted(held)


def label_counts(labels: Iterable[str]) -> dict[str, int]:
    return dict(sorted(Counter(labels).items()))
