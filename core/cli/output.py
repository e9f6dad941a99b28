"""Shared output helpers: JSON to stdout for machines, rich tables for people."""
from __future__ import annotations

import json
import sys
from typing import Any

import click


def catalog_from(ctx: click.Context):
    from ..plugins import load_catalog

    return load_catalog(ctx.obj["strict"], ctx.obj["registries"])


def emit_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")


def stdout_console():
    from rich.console import Console

    return Console()


def table(title: str | None, header: list[str], rows: list[list[Any]]):
    from rich.table import Table

    out = Table(title=title, title_justify="left", header_style="bold")
    for name in header:
        out.add_column(name)
    for row in rows:
        out.add_row(*(f"{v:.4f}" if isinstance(v, float) else str(v) for v in row))
    return out


json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON to stdout.")


def data_options(func):
    """--data, --eval-data and --set, shared by commands that read task data."""
    func = click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE",
                        help="Override a config value, e.g. train.epochs=3 (repeatable).")(func)
    func = click.option("--eval-data", type=click.Path(dir_okay=False),
                        help="Evaluation file (default: a seeded split of --data).")(func)
    return click.option("--data", type=click.Path(dir_okay=False),
                        help="Training data: CSV, TSV, JSONL or Parquet.")(func)


def print_result(result) -> None:
    """The short human report of a run or an evaluation (stdout)."""
    from ..report import metrics_rows

    console = stdout_console()
    console.print(table(f"{result.task}: metrics (primary: {result.primary_metric})",
                        *metrics_rows(result)))
    from ..report import as_table

    for name, value in result.details.items():
        header, rows = as_table(value)
        if header:
            console.print(table(name.replace("_", " "), header, rows))
    for key, value in result.notes.items():
        if value is not None:
            console.print(f"{key}: {value}")
    if result.artifact:
        console.print(f"[bold green]artifact[/] {result.artifact}")
