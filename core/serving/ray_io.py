"""What runs on the Ray workers of `app predict|evaluate|monitor --engine ray`: the readers
(Ray Data datasources), the model (a stateful actor, loaded once per worker) and the shard
writer (a datasink); and the driver's side of Ray: the predictors `evaluate` and `monitor`
load, and Ray's errors turned into tunehub's. Imported only once Ray is known to be
installed (`ray_engine`).

Rows travel between them as Arrow tables of text columns: ``_row`` (the row's id),
``_record`` (the input record as JSON, so files of different columns and types mix),
``_text`` (what the model reads) and, after the model, ``_prediction`` (JSON), ``_worker``,
``_rss`` (the worker's peak resident memory, bytes) and ``_labels`` (its predictor's labels).
"""
from __future__ import annotations

import json
import os
import socket
import sys
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
from ray.data import DataContext, Datasource, ReadTask
from ray.data.block import BlockMetadata
from ray.data.datasource import Datasink

from ..artifacts.hub import Artifact
from ..errors import BatchError, DataError, TunehubError

ROWS_PER_SHARD = 20_000  # output rows gathered into one file (fewer, larger shards)


@dataclass(frozen=True)
class Part:
    """One input file, checked on the driver: its rows are known before Ray starts."""

    path: Path
    kind: str
    column: str  # the column the model reads
    name: str  # the file as row ids name it: relative to --input
    rows: int
    size: int  # bytes


@dataclass(frozen=True)
class Job:
    """What a worker needs to load the version once: no catalog or model crosses the wire."""

    task: str
    artifact: Artifact
    config: dict[str, Any]
    quantize: str = "none"
    registries: tuple[str, ...] = ()  # the registry files the driver read
    env: dict[str, str] = field(default_factory=dict)  # TUNEHUB_*, HF_* ... of the driver
    threads: int = 1  # torch intra-op threads per worker


def _table(**columns: Sequence[Any]) -> pa.Table:
    return pa.table({name: pa.array(list(values), pa.string()) for name, values in columns.items()})


class FilesDatasource(Datasource):
    """The input files, one read task each, read with tunehub's own reader (CSV cells stay
    text as written, so ``007`` stays ``007``); ``block_rows`` rows a block."""

    def __init__(self, parts: Sequence[Part], block_rows: int) -> None:
        super().__init__()
        self.parts, self.block_rows = list(parts), block_rows

    def estimate_inmemory_data_size(self) -> int | None:
        return sum(part.size for part in self.parts)

    def get_read_tasks(self, parallelism: int, per_task_row_limit: int | None = None,
                       data_context: Any = None) -> list[ReadTask]:
        return [ReadTask(lambda part=part: _read_part(part, self.block_rows),
                         BlockMetadata(num_rows=part.rows, size_bytes=part.size,
                                       input_files=[str(part.path)], exec_stats=None),
                         per_task_row_limit=per_task_row_limit)
                for part in self.parts]


def _read_part(part: Part, block_rows: int) -> Iterator[pa.Table]:
    from .predict_io import Source, iter_rows, row_text

    source = Source(part.path, part.kind, [], part.size)
    rows: list[str] = []
    records: list[str] = []
    texts: list[str] = []
    for number, record in iter_rows(source):
        texts.append(row_text(source, part.column, number, record))
        rows.append(f"{part.name}:{number}")
        records.append(json.dumps(record, ensure_ascii=False, default=str))
        if len(rows) >= block_rows:
            yield _table(_row=rows, _record=records, _text=texts)
            rows, records, texts = [], [], []
    if rows:
        yield _table(_row=rows, _record=records, _text=texts)


class TextsDatasource(Datasource):
    """The texts a stream ``items()`` gives, in order, in one read task (`app monitor`:
    ``items`` reads the archive and keeps the rows the monitor will score)."""

    def __init__(self, items: Callable[[], Iterable[str]], block_rows: int, where: str) -> None:
        super().__init__()
        self.items, self.block_rows, self.where = items, block_rows, where

    def estimate_inmemory_data_size(self) -> int | None:
        return None

    def get_read_tasks(self, parallelism: int, per_task_row_limit: int | None = None,
                       data_context: Any = None) -> list[ReadTask]:
        return [ReadTask(self._read, BlockMetadata(num_rows=None, size_bytes=None,
                                                   input_files=[self.where], exec_stats=None),
                         per_task_row_limit=per_task_row_limit)]

    def _read(self) -> Iterator[pa.Table]:
        texts: list[str] = []
        for text in self.items():
            texts.append(text)
            if len(texts) >= self.block_rows:
                yield _table(_row=[""] * len(texts), _text=texts)
                texts = []
        if texts:
            yield _table(_row=[""] * len(texts), _text=texts)


def text_blocks(texts: Sequence[str], block_rows: int) -> list[pa.Table]:
    """Blocks of texts already in memory (`app evaluate`), ``_row`` their position."""
    return [_table(_row=[str(i) for i in range(start, min(start + block_rows, len(texts)))],
                   _text=texts[start:start + block_rows])
            for start in range(0, len(texts), block_rows)]


def peak_rss() -> int:
    """This process's peak resident memory in bytes (Linux reports KiB, macOS bytes)."""
    import resource

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak if sys.platform == "darwin" else peak * 1024)


class Scorer:
    """The Ray Data actor: the version loaded once per worker, on ``job.threads`` threads;
    each call predicts one batch through `Loaded.predict` (the in-process path)."""

    def __init__(self, job: Job) -> None:
        os.environ.update(job.env)
        import torch

        from ..extending.plugins import load_catalog
        from ..running.runner import load

        catalog = load_catalog(False, job.registries)
        self.loaded = load(job.task, quantize=job.quantize, catalog=catalog,
                           version=(job.artifact, job.config))
        torch.set_num_threads(job.threads)
        self.worker = f"{socket.gethostname()}:{os.getpid()}"
        self.labels = json.dumps(self.loaded.predictor.labels)

    def __call__(self, batch: pa.Table) -> pa.Table:
        outputs = self.loaded.predict(batch.column("_text").to_pylist())
        n = len(outputs)
        scored = batch.drop_columns(["_text"]) if "_record" in batch.column_names else batch
        return (scored.append_column("_prediction", pa.array(
                    [json.dumps(o, ensure_ascii=False, default=str) for o in outputs], pa.string()))
                .append_column("_worker", pa.array([self.worker] * n, pa.string()))
                .append_column("_rss", pa.array([peak_rss()] * n, pa.int64()))
                .append_column("_labels", pa.array([self.labels] * n, pa.string())))


class ShardsDatasink(Datasink):
    """Writes ``part-NNNNN.jsonl`` or ``.parquet`` files into ``folder``: every input column,
    ``row_id`` for rows without ``id_column``, and the prediction (JSONL: ``prediction`` as
    `app predict` writes it; Parquet: ``prediction_<field>`` columns, nested values as JSON
    text, as in CSV output). Each file is written under a temporary name and renamed, so a
    retried write task leaves one whole file."""

    def __init__(self, folder: Path, kind: str, id_column: str) -> None:
        self.folder, self.kind, self.id_column = Path(folder), kind, id_column
        self.results: list[dict[str, Any]] = []

    @property
    def min_rows_per_write(self) -> int:
        return ROWS_PER_SHARD

    def write(self, blocks: Iterable[pa.Table], ctx: Any) -> dict[str, Any]:
        name = f"part-{ctx.task_idx:05d}.{self.kind}"
        tmp = self.folder / f".{name}.tmp"
        workers: dict[str, int] = {}
        rows = (self._row(r, workers) for block in blocks for r in _rows(block))
        count = _write_jsonl(tmp, rows) if self.kind == "jsonl" else _write_parquet(tmp, rows)
        os.replace(tmp, self.folder / name)
        return {"file": name, "rows": count, "workers": workers}

    def _row(self, row: Mapping[str, Any], workers: dict[str, int]) -> dict[str, Any]:
        workers[row["_worker"]] = max(workers.get(row["_worker"], 0), int(row["_rss"]))
        record = json.loads(row["_record"])
        if self.id_column not in record:
            record["row_id"] = row["_row"]
        prediction = json.loads(row["_prediction"])
        if self.kind == "jsonl":
            return {**record, "prediction": prediction}
        from .predict_io import cell

        return {**record, **{f"prediction_{k}": cell(v) for k, v in prediction.items()}}

    def on_write_complete(self, write_result: Any) -> None:
        self.results = list(write_result.write_returns)


def _rows(block: pa.Table) -> Iterator[dict[str, Any]]:
    columns = {name: block.column(name).to_pylist() for name in block.column_names}
    for i in range(block.num_rows):
        yield {name: values[i] for name, values in columns.items()}


def _write_jsonl(path: Path, rows: Iterable[Mapping[str, Any]]) -> int:
    count = 0
    with open(path, "w", encoding="utf-8") as handle:
        for row in rows:
            handle.write(json.dumps(row, ensure_ascii=False, default=str) + "\n")
            count += 1
    return count


def _write_parquet(path: Path, rows: Iterable[Mapping[str, Any]]) -> int:
    import pyarrow.parquet as pq

    found = list(rows)
    try:
        table = pa.Table.from_pylist(found)
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        raise DataError(f"the rows cannot be one Parquet table ({line(exc)}): a column holds "
                        "values of different types (a number here, text there). Write .jsonl "
                        "output instead.") from None
    pq.write_table(table, path)
    return len(found)


class RayPredictor:
    """A `Loaded` predictor whose work runs on Ray: ``predict`` scores a list of inputs;
    ``evaluate`` scores the evaluation rows and builds the outputs with the head's
    ``eval_inputs``/``eval_outputs``; `OrderedScores` serves a monitored stream."""

    def __init__(self, engine: Any, job: Any, head: Any, config: Mapping[str, Any]) -> None:
        self.engine, self.job, self.head, self.config = engine, job, head, config
        self.labels: list[str] | None = None

    def predict(self, inputs: Sequence[str]) -> list[dict[str, Any]]:
        outputs, self.labels = self.engine.score(self.job, [str(x) for x in inputs])
        return outputs

    def evaluate(self, data: Any) -> Mapping[str, Any]:
        return self.head.eval_outputs(data, self.predict(self.head.eval_inputs(data, self.config)),
                                      self.config)


class OrderedScores:
    """The predictions of a stream scored ahead on Ray, handed out in order: each
    ``predict(texts)`` takes the next ones, and checks they are for those texts."""

    def __init__(self, scored: Iterator[Any]) -> None:
        self.scored, self.ahead = scored, deque()

    def _peek(self) -> Any:
        if not self.ahead:
            item = next(self.scored, None)
            if item is None:
                return None
            self.ahead.append(item)
        return self.ahead[0]

    @property
    def labels(self) -> list[str] | None:
        first = self._peek()
        return first[2] if first else None

    def predict(self, texts: Sequence[str]) -> list[dict[str, Any]]:
        outputs = []
        for text in texts:
            item = self._peek()
            if item is None or item[0] != text:
                raise BatchError("the stream scored on Ray is out of step with the rows read "
                                 f"here (at {text[:60]!r}); the input changed while it was read?")
            outputs.append(self.ahead.popleft()[1])
        return outputs


def run(fn: Callable[[], Any]) -> Any:
    """``fn()`` with a Ray failure turned into its own error: tunehub's (bad input found on a
    worker) as it was, else a `BatchError` naming the original."""
    try:
        return fn()
    except TunehubError:
        raise
    except Exception as exc:  # noqa: BLE001 - Ray wraps the worker's exception
        if type(exc).__module__.split(".")[0] != "ray":
            raise
        original = _cause(exc)
        if isinstance(original, TunehubError):
            raise original from None
        raise BatchError(f"the Ray job failed: {line(original)} "
                         "(the workers' logs: /tmp/ray/session_latest/logs).") from None


def _cause(exc: BaseException) -> BaseException:
    """The first exception under Ray's wrappers (``RayTaskError.cause``, ``__cause__``)."""
    seen = set()
    while id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, TunehubError):
            return exc
        inner = getattr(exc, "cause", None) or exc.__cause__
        if inner is None:
            break
        exc = inner
    return exc


@contextmanager
def data_context(preserve_order: bool) -> Iterator[None]:
    """Ray Data settings for one job, restored after: order kept or not, progress bars only
    on a terminal (and never with ``--quiet``)."""
    ctx = DataContext.get_current()
    saved = (ctx.execution_options.preserve_order, ctx.enable_progress_bars)
    ctx.execution_options.preserve_order = preserve_order
    ctx.enable_progress_bars = sys.stderr.isatty() and not os.environ.get("TUNEHUB_QUIET")
    try:
        yield
    finally:
        ctx.execution_options.preserve_order, ctx.enable_progress_bars = saved


def line(exc: BaseException) -> str:
    """One line naming an exception: its type and its message's start."""
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text[:300]}" if text else type(exc).__name__
