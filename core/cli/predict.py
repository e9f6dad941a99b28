"""`app predict NAME TEXT...` or `--input FILE --output FILE`: predictions of a fine-tuned
version. Files stream in batches (bounded memory); outputs keep input order. With
``--engine ray`` files and folders of them are scored on Ray Data into shards."""
from __future__ import annotations

from pathlib import Path

import click

from .output import catalog_from, deprecated_alias, emit_json, json_option, stdout_console, table
from .scale import engine_options, make_engine


@click.command("predict")
@click.argument("name")
@click.argument("texts", nargs=-1)
@click.option("--model", help="TASK@latest (default), TASK@vN, or an artifact folder.")
@click.option("--input", "--data", "input_path", type=click.Path(),
              help="A CSV, TSV, JSONL or Parquet file to predict, streamed in batches "
                   "(--data is the same option, as in `app evaluate`); with --engine ray, "
                   "also a folder of them.")
@click.option("--output", type=click.Path(),
              help="Where to write predictions (.csv, .tsv or .jsonl); default JSONL to stdout. "
                   "With --engine ray: a folder of shards, OUT.parquet or OUT.jsonl (a folder "
                   "without a suffix: Parquet).")
@click.option("--column", help="The input column (default: the task's text/query column).")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE",
              help="A predict option the task declares, e.g. predict.k=5 (recommendation: "
                   "items to return) or predict.items=i1,i2 (repeatable; `app show-task NAME`).")
@click.option("--user", "users", multiple=True, hidden=True,
              callback=deprecated_alias("predict --user", "the user id as TEXT"))
@click.option("--k", type=click.IntRange(min=1), hidden=True,
              callback=deprecated_alias("predict --k", "--set predict.k=N"))
@click.option("--items", hidden=True,
              callback=deprecated_alias("predict --items", "--set predict.items=ID,ID"))
@click.option("--overwrite", is_flag=True, help="Replace an existing --output file.")
@click.option("--batch-size", default=256, show_default=True, type=click.IntRange(min=1),
              help="Rows per batch with --input.")
@click.option("--quantize", type=click.Choice(["none", "int8"]), default="none", show_default=True,
              help="Dynamic int8 quantisation (check its accuracy with `app evaluate --quantize`).")
@engine_options
@click.option("--id-column",
              help="With --engine ray: the input's id column, kept as it is (default: id); "
                   "rows without one get row_id, FILE:ROW.")
@json_option
@click.pass_context
def predict(ctx: click.Context, name: str, texts: tuple[str, ...], model: str | None,
            input_path: str | None, output: str | None, column: str | None, overwrite: bool,
            batch_size: int, quantize: str, as_json: bool, overrides: tuple[str, ...] = (),
            users: tuple[str, ...] = (), k: int | None = None, items: str | None = None,
            engine: str = "process", workers: int | None = None, address: str | None = None,
            id_column: str | None = None) -> None:
    """Predict with task NAME's latest (or --model) fine-tuned version."""
    from ..errors import ConfigError
    from ..serving.predict_io import predict_file
    from ..running.progress import console
    from ..running.runner import check_inputs, load

    ray = make_engine(engine, workers, address, batch_size)
    if id_column and ray is None:
        raise ConfigError("--id-column needs --engine ray (the default engine keeps every "
                          "input column, in input order).")
    texts = (*texts, *users)
    overrides = [*overrides, *[f"predict.k={k}"] * (k is not None),
                 *[f"predict.items={items}"] * bool(items)]
    if bool(texts) == bool(input_path):
        raise ConfigError("give TEXT arguments or --input FILE (one of them), e.g. "
                          "app predict financial-sentiment \"Profit rose.\"")
    if output and not input_path:
        raise ConfigError("--output needs --input FILE.")
    check_inputs(texts)  # before the model loads
    if ray is not None:
        if texts:
            raise ConfigError("--engine ray scores files: give --input DATA --output OUT "
                              "instead of TEXT arguments.")
        return _predict_on_ray(ctx, ray, name, model, overrides, input_path, output, column,
                               id_column or "id", quantize, overwrite, as_json)
    if input_path and Path(input_path).expanduser().is_dir():
        raise ConfigError(f"--input {input_path} is a folder: give one file, or score the "
                          "folder with --engine ray.")
    if output and Path(output).expanduser().exists() and not overwrite:
        raise ConfigError(f"--output {output} already exists; choose a new file or add --overwrite.")
    from ..running.runner import version_config

    catalog = catalog_from(ctx)
    version = version_config(name, model=model, overrides=overrides, catalog=catalog)
    if input_path:  # the file, its rows and its column are checked before the model loads
        from ..serving.predict_io import input_column, open_source

        role = catalog.head_of(catalog.task(name)).input_role
        input_column(open_source(input_path), column, version[1]["dataset"]["columns"], role)
    loaded = load(name, quantize=quantize, catalog=catalog, version=version)
    if input_path:
        summary = predict_file(loaded, input_path, output, column, batch_size)
        if as_json and output:
            emit_json(summary)
        else:
            console().print(f"{summary['rows']} predictions -> {summary['output']} "
                            f"({summary['rows_per_second']} rows/s, model {loaded.artifact.ref})",
                            markup=False)
        return
    outputs = loaded.predict(list(texts))
    if as_json:
        emit_json([{"input": t, **o} for t, o in zip(texts, outputs)])
        return
    if all("label" in o for o in outputs):
        rows = [[t, o["label"], ", ".join(f"{k} {v:.3f}" for k, v in o.get("probabilities", {}).items())]
                for t, o in zip(texts, outputs)]
        stdout_console().print(table(None, ["input", "label", "probabilities"], rows))
    elif all("results" in o for o in outputs):  # ranked answers, e.g. recommended items
        for t, o in zip(texts, outputs):
            header = list(dict.fromkeys(key for r in o["results"] for key in r))
            stdout_console().print(table(t, header, [[r.get(h, "") for h in header]
                                                     for r in o["results"]]))
    else:
        _print_records(texts, outputs)


def _predict_on_ray(ctx: click.Context, ray, name: str, model: str | None, overrides,
                    input_path: str, output: str | None, column: str | None, id_column: str,
                    quantize: str, overwrite: bool, as_json: bool) -> None:
    """Every file and row checked here, then scored on Ray into shards in ``output``."""
    from ..running.progress import console
    from ..running.runner import version_config
    from ..serving.ray_engine import output_kind, scan

    folder, kind = output_kind(output, overwrite, input_path)
    catalog = catalog_from(ctx)
    artifact, config = version_config(name, model=model, overrides=overrides, catalog=catalog)
    role = catalog.head_of(catalog.task(name)).input_role
    parts = scan(input_path, column, config["dataset"]["columns"], role, id_column)
    with ray:
        job = ray.job(name, artifact, config, catalog, quantize)
        summary = ray.predict_files(job, parts, folder, kind, id_column, overwrite)
    if as_json:
        emit_json(summary)
        return
    peaks = summary["worker_peak_rss_mib"]
    console().print(f"{summary['rows_out']} of {summary['rows_in']} rows -> {summary['output']} "
                    f"({summary['shards']} {kind} shard{'s' * (summary['shards'] != 1)}, "
                    f"{summary['rows_per_second']} rows/s on "
                    f"{summary['workers']} Ray workers, peak memory per worker "
                    f"{max(peaks.values(), default=0):.0f} MiB, model {artifact.ref})",
                    markup=False, highlight=False)


def _print_records(texts, outputs) -> None:
    """Outputs without a label: scalar fields on one line, lists of records as tables."""
    import json

    console = stdout_console()
    for text, out in zip(texts, outputs):
        lists = {k: v for k, v in out.items()
                 if isinstance(v, list) and v and all(isinstance(x, dict) for x in v)}
        fields = "  ".join(f"{k}: {v if isinstance(v, str) else json.dumps(v, default=str)}"
                           for k, v in out.items() if k not in lists)
        console.print(f"{text}\n  {fields}", markup=False, highlight=False)
        for key, records in lists.items():
            columns = [c for c in records[0] if not isinstance(records[0][c], (dict, list))]
            console.print(table(key, columns, [[r.get(c, "") for c in columns] for r in records]))


COMMANDS = [predict]
