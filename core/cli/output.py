"""Shared output helpers: JSON to stdout for machines, rich tables for people."""
from __future__ import annotations

import json
import sys
from collections.abc import Collection
from typing import Any

import click


def catalog_from(ctx: click.Context):
    """The command's catalog: plugins and task files loaded once per command."""
    from ..extending.plugins import load_catalog

    root = ctx.find_root()
    if "catalog" not in root.obj:
        root.obj["catalog"] = load_catalog(root.obj["strict"], root.obj["registries"])
    return root.obj["catalog"]


def warn_failed(catalog) -> None:
    """One stderr line per plugin that failed to load (listings go on without it)."""
    for info in catalog.failed:
        click.secho(f"warning: plugin '{info.name}' failed to load: {info.error} "
                    "(see `app plugins`)", fg="yellow", err=True)


def emit_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")


def stdout_console():
    """Rich output on stdout; in a pipe or a log (no terminal) 120 columns, not 80."""
    import os

    from rich.console import Console

    console = Console()
    if not console.is_terminal and "COLUMNS" not in os.environ:
        console = Console(width=120)
    return console


def table(title: str | None, header: list[str], rows: list[list[Any]], keep: int = 1,
          whole: Collection[str] = ()):
    """A rich table; the first ``keep`` columns (names, refs) and the columns named in
    ``whole`` (short names such as a metric) are never cut or wrapped, however narrow the
    terminal or log: the other columns wrap instead (at spaces; a long path or id folds).
    Every string is shown as written: brackets are text, not Rich markup."""
    from rich.markup import escape
    from rich.table import Table

    from ..running.progress import readable

    cells = [[f"{v:.4f}" if isinstance(v, float) else readable(v) for v in row] for row in rows]
    out = Table(title=escape(title) if title else title, title_justify="left", header_style="bold")
    for i, name in enumerate(header):
        if i < keep or name in whole:
            widest = max((len(line) for row in cells for line in row[i].splitlines()), default=0)
            out.add_column(escape(name), no_wrap=True, min_width=max(widest, len(name)))
        else:
            out.add_column(escape(name), overflow="fold")
    for row in cells:
        out.add_row(*(escape(cell) for cell in row))
    return out


json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON to stdout.")


def deprecated_alias(old: str, new: str):
    """A click callback for a hidden old spelling: warns once on stderr, keeps working."""

    def warn(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
        if value not in (None, (), False):
            click.secho(f"warning: {old} is deprecated here; use {new} (the old spelling goes "
                        "away in the next release).", fg="yellow", err=True)
        return value

    return warn


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
    from rich.markup import escape

    from ..running.progress import readable
    from ..running.report import as_table, is_records, metrics_rows

    console = stdout_console()
    console.print(table(f"{result.task}: metrics (primary: {result.primary_metric})",
                        *metrics_rows(result)))
    below = result.below_baseline_line()
    if below:
        console.print(f"[bold yellow]below baseline:[/] {escape(below)}", highlight=False,
                      soft_wrap=True)  # one line, however many baselines
    for name, value in result.details.items():
        header, rows = as_table(value)
        if header:
            console.print(table(name.replace("_", " "), header, rows))
    notes = {key: value for key, value in result.notes.items() if value is not None}
    for key, value in notes.items():  # as written: "[head.rerank=auto]" is text, not markup
        if not is_records(value):
            console.print(f"{key}: {readable(value)}", markup=False, highlight=False)
    for key, value in notes.items():  # rows of records (scores per variant, say): a table
        if is_records(value):
            console.print(table(key, *as_table(value)))
    if result.artifact:
        console.print(f"[bold green]artifact[/] {escape(result.artifact)}")
