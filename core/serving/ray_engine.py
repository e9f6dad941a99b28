"""Batch prediction on Ray Data: `app predict|evaluate|monitor --engine ray`.

The version loads once per worker (a stateful actor, one CPU and one torch thread each)
and the rows stream through the workers in batches. Without an address a local Ray starts
on this machine and stops after; with one the job joins that cluster, whose nodes must
have tunehub installed and see the same paths (input, output, ``TUNEHUB_HOME``).

Everything a person can get wrong (flags, files, columns, empty texts) is checked on the
driver before Ray starts. A worker that dies (killed, out of memory) is restarted and its
batch retried, as Ray Data's actors are by default; an error in a batch stops the job with
that error. Rows are counted in and out, and a job that lost one fails: nothing is ever
dropped silently.
"""
from __future__ import annotations

import json
import logging
import os
import shutil
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from ..errors import BatchError, ConfigError, DataError
from ..running.data import FORMATS

INSTALL = "pip install 'tunehub[ray]'"
SHARD_KINDS = {".parquet": "parquet", ".jsonl": "jsonl"}
ENV_PREFIXES = ("TUNEHUB_", "HF_", "TRANSFORMERS_", "XDG_CONFIG_HOME")  # what workers inherit


def require_ray() -> Any:
    """The ``ray`` module, or one line naming the install command."""
    try:
        import ray
        import ray.data  # noqa: F401 - the extra installs both
    except ImportError:
        raise ConfigError(f"--engine ray needs Ray Data: {INSTALL}") from None
    return ray


def check_flags(engine: str, workers: int | None, address: str | None) -> None:
    """``--workers``/``--address`` belong to ``--engine ray``, which needs Ray installed."""
    if engine != "ray":
        given = [flag for flag, value in (("--workers", workers), ("--address", address)) if value]
        if given:
            raise ConfigError(f"{' and '.join(given)} need{'s' * (len(given) == 1)} --engine ray.")
        return
    require_ray()
    if address:
        check_address(address)


def check_address(address: str) -> None:
    """A cluster address that nothing answers at is one line now, not Ray's minutes of
    retries: ``HOST:PORT`` (the head's GCS port, 6379 by default), ``ray://HOST:PORT``
    (Ray Client, 10001), or ``auto`` (the cluster this machine belongs to)."""
    import socket

    if address in ("auto", "local"):
        return
    host, _, port = address.split("://", 1)[-1].rpartition(":")
    if not host or not port.isdigit():
        raise ConfigError(f"--address {address}: give HOST:PORT (the head's port, 6379), "
                          "ray://HOST:10001 or auto.")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=5).close()
    except OSError as exc:
        raise ConfigError(f"--address {address}: nothing answers at {host}:{port} "
                          f"({exc.strerror or type(exc).__name__}); check the address and that "
                          "the cluster is up (`ray status` on its head).") from None


# -- the driver's checks, before Ray starts ---------------------------------------------


def input_files(path: str | Path) -> list[Path]:
    """``--input``: one data file, or a folder of them (read recursively; names starting with
    ``.`` or ``_`` are skipped, as Spark and Arrow skip them)."""
    root = Path(path).expanduser()
    if not root.is_dir():
        return [root]  # open_source names a missing or unknown file
    files = sorted(p for p in root.rglob("*") if p.is_file() and not any(
        part.startswith((".", "_")) for part in p.relative_to(root).parts))
    others = [p for p in files if p.suffix.lower() not in FORMATS]
    if others:
        raise DataError(f"--input {root}: {others[0].relative_to(root)} is not a data file "
                        f"({', '.join(sorted(FORMATS))}); move it out of the folder.")
    if not files:
        raise DataError(f"--input {root}: the folder holds no data files "
                        f"({', '.join(sorted(FORMATS))}).")
    return files


def scan(path: str | Path, column: str | None, roles: Mapping[str, str], role: str,
         id_column: str) -> list[Any]:
    """Every input file checked and counted on the driver: the column the model reads, a
    text in every row, ids that cannot clash. Returns the files as `ray_io.Part` items."""
    from .predict_io import input_column, iter_rows, open_source, row_text
    from .ray_io import Part

    root = Path(path).expanduser()
    parts = []
    for file in input_files(root):
        source = open_source(file)
        name = input_column(source, column, roles, role)
        rows = 0
        for number, record in iter_rows(source):
            row_text(source, name, number, record)
            if id_column not in record and "row_id" in record:
                raise DataError(f"{file}, row {number}: a 'row_id' column but no '{id_column}': "
                                "name the id column with --id-column row_id.")
            rows += 1
        label = str(file.relative_to(root)) if root.is_dir() else file.name
        parts.append(Part(file.resolve(), source.kind, name, label, rows, source.size))
    return parts


def output_kind(output: str | None, overwrite: bool, input_path: str | Path) -> tuple[Path, str]:
    """``--output`` of a Ray job: a folder of shards, Parquet unless it ends in ``.jsonl``."""
    if not output:
        raise ConfigError("--engine ray writes shards: give --output DIR (Parquet), "
                          "or OUT.parquet / OUT.jsonl (a folder of that name).")
    path = Path(output).expanduser()
    suffix = path.suffix.lower()
    if suffix and suffix not in SHARD_KINDS:
        raise ConfigError(f"--output {path}: --engine ray writes .parquet or .jsonl shards into "
                          "a folder; name it OUT.parquet, OUT.jsonl or a folder without a suffix.")
    if path.exists() and not overwrite:
        raise ConfigError(f"--output {path} already exists; choose a new name or add --overwrite.")
    if not path.parent.is_dir():
        raise ConfigError(f"--output {path}: no folder {path.parent}; create it first.")
    source = Path(input_path).expanduser().resolve()
    if source.is_dir() and path.resolve().is_relative_to(source):
        raise ConfigError(f"--output {path} is inside --input {input_path}: its shards would be "
                          "read as input next time. Write it outside that folder.")
    return path, SHARD_KINDS.get(suffix, "parquet")


# -- the engine -------------------------------------------------------------------------


class RayEngine:
    """A Ray session started on first use and stopped on exit (when this engine started it;
    one already running in the process, `ray.init` by the caller, is used and left running).

    ``workers``: actors, one CPU each (default: this machine's CPUs; on a cluster, its CPUs
    but one, left to the readers and writers). ``address``: a Ray cluster (``auto``,
    ``HOST:6379``, ``ray://HOST:10001``); None starts a local Ray.
    """

    def __init__(self, workers: int | None = None, address: str | None = None,
                 batch_size: int = 256) -> None:
        if workers is not None and workers < 1:
            raise ConfigError(f"--workers must be at least 1, got {workers}.")
        if batch_size < 1:
            raise ConfigError(f"--batch-size must be at least 1, got {batch_size}.")
        self.ray = require_ray()
        self.workers, self.address, self.batch_size = workers, address, batch_size
        self.started = False
        self.startup_seconds = 0.0

    def __enter__(self) -> RayEngine:
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.started:
            self.ray.shutdown()
            self.started = False

    def start(self) -> int:
        """Start (or join) Ray once; returns the number of workers."""
        from .ray_io import line

        ray = self.ray
        if not ray.is_initialized():
            begin = time.perf_counter()
            os.environ.setdefault("RAY_BACKEND_LOG_LEVEL", "fatal")  # no core-worker chatter
            common = dict(logging_level=logging.ERROR, log_to_driver=False)
            try:
                if self.address:
                    ray.init(address=self.address, **common)
                else:
                    ray.init(num_cpus=(self.workers or _cpus()) + 1, include_dashboard=False,
                             **common)
            except (ConnectionError, RuntimeError, ValueError) as exc:
                if not self.address:
                    raise BatchError(f"a local Ray did not start ({line(exc)}); its logs are in "
                                     "/tmp/ray/session_latest/logs.") from None
                raise ConfigError(f"--address {self.address}: could not join the Ray cluster "
                                  f"there ({line(exc)}); check the address and that the cluster "
                                  "is up (`ray status` on its head).") from None
            self.started = True
            self.startup_seconds = time.perf_counter() - begin
        logging.getLogger("ray.data").setLevel(logging.ERROR)
        if self.workers is None:
            cpus = int(ray.cluster_resources().get("CPU", 1))
            self.workers = max(1, cpus - 1) if self.address else _cpus()
        return self.workers

    def job(self, task: str, artifact: Any, config: dict[str, Any], catalog: Any,
            quantize: str = "none") -> Any:
        """What each worker loads: the version, the registry files and settings read here."""
        from .ray_io import Job

        env = {k: v for k, v in os.environ.items() if k.startswith(ENV_PREFIXES)}
        return Job(task, artifact, config, quantize,
                   tuple(str(p) for p in catalog.registry.files), env)

    def _scored(self, dataset: Any, job: Any) -> Any:
        from ray.data import ActorPoolStrategy

        from .ray_io import Scorer

        return dataset.map_batches(
            Scorer, fn_constructor_args=(job,), batch_size=self.batch_size,
            batch_format="pyarrow", compute=ActorPoolStrategy(size=self.workers), num_cpus=1)

    # -- a loaded version whose predictions run here -----------------------------------
    def load(self, task: str, catalog: Any, version: tuple[Any, dict[str, Any]],
             quantize: str = "none",
             stream: tuple[Callable[[], Iterable[str]], str] | None = None) -> Any:
        """A `Loaded` version whose predictions run on Ray (started on first use): for
        `app evaluate`, or with ``stream`` (a function giving the texts, and where they are
        from) the scores of a monitored stream, in order."""
        from ..running.runner import Loaded
        from .ray_io import OrderedScores, RayPredictor

        head = catalog.head_of(catalog.task(task))
        if stream is None and not head.evaluates_predictions:
            raise ConfigError(f"task '{task}' cannot be evaluated on Ray: its head '{head.name}' "
                              "declares no eval_inputs/eval_outputs (docs/heads.md); use "
                              "--engine process.")
        if quantize != "none" and stream is None:
            raise ConfigError("--quantize compares int8 with fp32 in one process; run it "
                              "without --engine ray.")
        artifact, config = version
        job = self.job(task, artifact, config, catalog, quantize)
        predictor = (OrderedScores(self.stream(job, *stream)) if stream
                     else RayPredictor(self, job, head, config))
        return Loaded(task, artifact, config, head, predictor, quantize)

    # -- app predict --input DATA --output OUT ------------------------------------------
    def predict_files(self, job: Any, parts: Sequence[Any], output: Path, kind: str,
                      id_column: str, overwrite: bool = False) -> dict[str, Any]:
        """Score every row of ``parts`` into shards in ``output`` (complete or absent)."""
        import ray.data

        from .ray_io import FilesDatasource, ShardsDatasink, data_context, run

        workers = self.start()
        stage = output.parent.resolve() / f".{output.name}.partial-{uuid.uuid4().hex[:8]}"
        stage.mkdir()
        try:
            begin = time.perf_counter()
            sink = ShardsDatasink(stage, kind, id_column)
            with data_context(preserve_order=False):
                dataset = ray.data.read_datasource(FilesDatasource(parts, self.batch_size),
                                                   num_cpus=0.5)
                run(lambda: self._scored(dataset, job).write_datasink(
                    sink, ray_remote_args={"num_cpus": 0.5}))
            seconds = time.perf_counter() - begin
            rows_in = sum(part.rows for part in parts)
            rows_out = sum(result["rows"] for result in sink.results)
            _check_counts(rows_in, rows_out)
            peaks: dict[str, int] = {}
            for result in sink.results:
                for worker, rss in result["workers"].items():
                    peaks[worker] = max(peaks.get(worker, 0), rss)
            summary = {
                "engine": "ray", "address": self.address or "local", "workers": workers,
                "model": job.artifact.ref, "files": len(parts),
                "column": ", ".join(sorted({part.column for part in parts})),
                "output": str(output),
                "format": kind, "shards": len(sink.results), "rows_in": rows_in,
                "rows_out": rows_out, "rows": rows_out, "seconds": round(seconds, 2),
                "rows_per_second": round(rows_out / seconds, 1) if seconds else None,
                "ray_startup_seconds": round(self.startup_seconds, 2),
                "worker_peak_rss_mib": {w: round(peak / 2**20, 1)
                                        for w, peak in sorted(peaks.items())},
            }
            (stage / "_summary.json").write_text(json.dumps(summary, indent=2) + "\n")
            if overwrite and output.exists():
                shutil.rmtree(output) if output.is_dir() else output.unlink()
            os.replace(stage, output)
            return summary
        finally:
            shutil.rmtree(stage, ignore_errors=True)

    # -- app evaluate: texts in memory, predictions back in order ----------------------
    def score(self, job: Any, texts: Sequence[str]) -> tuple[list[dict[str, Any]], Any]:
        """Predictions of ``texts`` in input order, and the predictor's labels."""
        import ray.data

        from .ray_io import data_context, run, text_blocks

        self.start()
        found: list[Any] = [None] * len(texts)
        labels = None
        with data_context(preserve_order=False):
            dataset = ray.data.from_arrow(text_blocks(list(texts), self.batch_size))

            def gather() -> None:
                nonlocal labels
                for batch in self._scored(dataset, job).iter_batches(batch_format="pyarrow",
                                                                      batch_size=None):
                    for row, prediction in zip(batch.column("_row").to_pylist(),
                                               batch.column("_prediction").to_pylist()):
                        found[int(row)] = json.loads(prediction)
                    labels = labels or json.loads(batch.column("_labels")[0].as_py())

            run(gather)
        _check_counts(len(texts), sum(p is not None for p in found))
        return found, labels

    # -- app monitor: a stream scored in order ------------------------------------------
    def stream(self, job: Any, items: Callable[[], Iterable[str]], where: str) -> Iterator[Any]:
        """(text, prediction, labels) for each text ``items()`` yields, in order, scored
        ahead of the caller (Ray Data's streaming keeps memory bounded)."""
        import ray.data

        from .ray_io import TextsDatasource, data_context, run

        self.start()
        with data_context(preserve_order=True):
            dataset = ray.data.read_datasource(TextsDatasource(items, self.batch_size, where),
                                               num_cpus=0.5)
            batches = iter(self._scored(dataset, job).iter_batches(batch_format="pyarrow",
                                                                  batch_size=None))
            while True:
                batch = run(lambda: next(batches, None))
                if batch is None:
                    return
                labels = json.loads(batch.column("_labels")[0].as_py())
                for text, prediction in zip(batch.column("_text").to_pylist(),
                                            batch.column("_prediction").to_pylist()):
                    yield text, json.loads(prediction), labels


# -- helpers ------------------------------------------------------------------------------


def _cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS
        return os.cpu_count() or 1


def _check_counts(rows_in: int, rows_out: int) -> None:
    if rows_in != rows_out:
        raise BatchError(f"{rows_in} rows went in and {rows_out} came out: "
                         f"{abs(rows_in - rows_out)} {'lost' if rows_out < rows_in else 'extra'}; "
                         "nothing was written. Run it again; if it repeats, check the workers' "
                         "logs (/tmp/ray/session_latest/logs).")
