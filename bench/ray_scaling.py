"""Batch prediction on Ray Data: rows/s with 1 and 2 Ray workers against the in-process path.

    python bench/ray_scaling.py [--rows 100000] [--model TASK@vN|FOLDER] [--batch-size 256]

A CSV of ``--rows`` rows (an ``id`` and a ``text``) is built from the Financial PhraseBank
sentences in ../shared/data (the bundled financial-sentiment sample when absent), each
sentence tagged with its row number so no two rows are alike. One fine-tuned MiniLM
classifier (``--model``, else one trained here with `app run-task financial-sentiment`
defaults on the bundled sample) scores it three ways, one after another in this process:

- in-process (`app predict --input`), torch on 2 threads (both cores), then on 1 thread
  (the per-core baseline a Ray worker is compared with);
- Ray Data with 1 worker, then 2 workers: one actor per worker, one CPU and one torch thread
  each, in a local Ray started for that run (its start-up is reported apart).

Each run's time covers loading the model and scoring every row into its output (for Ray,
the actors' start-up too). Prints rows/s, the ratios (targets: 2 workers >= 1.7x 1 worker,
and within 15% of the in-process path on 2 threads), peak memory per worker, and checks
that every id comes out once and that the labels agree with the in-process run.
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import resource
import tempfile
import time
from pathlib import Path

from _common import ROOT, SHARED_DATA, cpu_class, read_column


def sentences() -> tuple[list[str], str]:
    folder = SHARED_DATA / "financial_phrasebank"
    if folder.is_dir():
        texts = [t for name in ("50agree_train.csv", "50agree_test.csv")
                 for t in read_column(folder / name, "text")]
        return texts, f"{folder} (50agree train and test)"
    sample = ROOT / "plugins" / "financial_sentiment" / "data" / "sample.csv"
    return read_column(sample, "text"), str(sample)


def build_input(path: Path, rows: int, texts: list[str]) -> None:
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "text"])
        for i in range(rows):
            writer.writerow([f"r{i:07d}", f"{texts[i % len(texts)]} ({i})"])


def in_process(task: str, model: str, source: Path, out: Path, batch_size: int, threads: int,
               measured_peak: bool) -> dict:
    """The in-process path on ``threads`` threads; its peak memory is this process's
    (meaningless when this process trained the model: ``measured_peak`` False)."""
    import torch

    from tunehub.core.running.runner import load
    from tunehub.core.serving.predict_io import predict_file

    start = time.perf_counter()
    loaded = load(task, model=model)
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    summary = predict_file(loaded, source, out, batch_size=batch_size, show_progress=False)
    seconds = time.perf_counter() - start
    torch.set_num_threads(before)
    labels = {}
    with open(out, encoding="utf-8") as handle:
        for line in handle:
            row = json.loads(line)
            labels[row["id"]] = row["prediction"]["label"]
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    return {"rows": summary["rows"], "seconds": seconds, "labels": labels,
            "peaks": {"process": peak} if measured_peak else {}}


def on_ray(task: str, model: str, source: Path, out: Path, workers: int, batch_size: int) -> dict:
    import pyarrow.parquet as pq

    from tunehub.core.extending.plugins import load_catalog
    from tunehub.core.running.runner import version_config
    from tunehub.core.serving.ray_engine import RayEngine, scan

    catalog = load_catalog()
    artifact, config = version_config(task, model=model, catalog=catalog)
    parts = scan(source, None, config["dataset"]["columns"], "text", "id")
    with RayEngine(workers=workers, batch_size=batch_size) as engine:
        engine.start()
        job = engine.job(task, artifact, config, catalog)
        summary = engine.predict_files(job, parts, out, "parquet", "id")
        startup = engine.startup_seconds
    table = pq.read_table(out, columns=["id", "prediction_label"]).to_pydict()
    labels = dict(zip(table["id"], table["prediction_label"]))
    return {"rows": summary["rows_out"], "seconds": summary["seconds"], "labels": labels,
            "ids": len(table["id"]), "startup": startup,
            "peaks": summary["worker_peak_rss_mib"]}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--model", help="a fine-tuned financial-sentiment version or folder")
    parser.add_argument("--batch-size", type=int, default=256)
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TUNEHUB_HOME", tempfile.mkdtemp(prefix="tunehub-bench-"))
    task, work = "financial-sentiment", Path(tempfile.mkdtemp(prefix="tunehub-ray-bench-"))
    model = args.model
    if not model:
        import tunehub

        result = tunehub.run_task(task)  # the packaged MiniLM on the bundled sample
        model = result.artifact
        print(f"trained {result.version} (test accuracy {result.metrics['accuracy']:.3f})")
    texts, origin = sentences()
    source = work / "posts.csv"
    build_input(source, args.rows, texts)
    ids = {f"r{i:07d}" for i in range(args.rows)}
    print(f"{args.rows} rows from {len(texts)} sentences of {origin}; {cpu_class()}; "
          f"load average {os.getloadavg()[0]:.1f}", flush=True)

    runs = {}
    for threads in (2, 1):
        name = f"in-process, {threads} thread{'s' * (threads > 1)}"
        runs[name] = in_process(task, model, source, work / f"process{threads}.jsonl",
                                args.batch_size, threads, bool(args.model))
        print(f"  {name} done (load average {os.getloadavg()[0]:.1f})", flush=True)
    for workers in (1, 2):
        name = f"Ray, {workers} worker{'s' * (workers > 1)}"
        runs[name] = on_ray(task, model, source, work / f"ray{workers}.parquet", workers,
                            args.batch_size)
        print(f"  {name} done (load average {os.getloadavg()[0]:.1f})", flush=True)

    base = runs["in-process, 2 threads"]
    print(f"\n{'run':<24}{'rows/s':>9}{'seconds':>9}  peak memory (MiB)  ids   labels = in-process")
    for name, run in runs.items():
        rate = run["rows"] / run["seconds"]
        peaks = run["peaks"]
        every_id = set(run["labels"]) == ids and run.get("ids", len(run["labels"])) == args.rows
        agree = sum(run["labels"][i] == base["labels"][i] for i in ids) / len(ids)
        print(f"{name:<24}{rate:>9.1f}{run['seconds']:>9.1f}  "
              f"{', '.join(f'{v:.0f}' for v in peaks.values()) or '-':<17}  "
              f"{'all' if every_id else 'MISSING'}  {agree:.4f}")
    rate = {name: run["rows"] / run["seconds"] for name, run in runs.items()}
    two, one = rate["Ray, 2 workers"], rate["Ray, 1 worker"]
    print(f"\n2 workers / 1 worker: {two / one:.2f}x (target >= 1.7)")
    print(f"2 workers / in-process on 2 threads: {two / rate['in-process, 2 threads']:.2f}x "
          "(target >= 0.85)")
    print(f"1 worker / in-process on 1 thread (Ray's cost per worker): "
          f"{one / rate['in-process, 1 thread']:.2f}x")
    print("Ray start-up (not in the rows/s): "
          + ", ".join(f"{runs[n]['startup']:.1f} s" for n in ("Ray, 1 worker", "Ray, 2 workers")))


if __name__ == "__main__":
    main()
