"""`app monitor TASK --input FILE|-`: sentiment per entity over time windows, with alerts."""
from __future__ import annotations

from contextlib import nullcontext

import click

from .output import catalog_from, emit_json
from .scale import engine_options, make_engine


@click.command("monitor")
@click.argument("name")
@click.option("--input", "source", required=True,
              help="CSV, TSV, JSONL or Parquet file, or - for JSON lines on stdin.")
@click.option("--format", "fmt", type=click.Choice(["jsonl", "csv", "tsv"]),
              help="Format of the input when it has no telling extension (stdin: jsonl).")
@click.option("--model", help="TASK@latest (default), TASK@vN or an artifact folder.")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE",
              help="Override a setting, e.g. monitor.window=1h or monitor.columns.time=published_at.")
@click.option("--alerts", "alerts_file", type=click.Path(dir_okay=False),
              help="Append alerts as JSON lines to this file (default: stdout).")
@click.option("--sink", "sinks", multiple=True, metavar="SPEC",
              help="Also send alerts to: stdout, file:PATH, webhook:URL (or a plain http URL), "
                   "or a plugin's NAME:TARGET (repeatable).")
@click.option("--report", "report_dir", type=click.Path(file_okay=False),
              help="Write report.md, trend.png and windows.csv into this folder.")
@click.option("--json", "as_json", is_flag=True,
              help="Print the summary as JSON on stdout (alerts then need --alerts or --sink).")
@click.option("--no-state", is_flag=True,
              help="Do not keep the windows and alerts in TUNEHUB_HOME/monitor/NAME/state.sqlite3 "
                   "(what the dashboard shows).")
@engine_options
@click.pass_context
def monitor(ctx: click.Context, name: str, source: str, fmt: str | None, model: str | None,
            overrides: tuple[str, ...], alerts_file: str | None, sinks: tuple[str, ...],
            report_dir: str | None, as_json: bool, no_state: bool, engine: str = "process",
            workers: int | None = None, address: str | None = None) -> None:
    """Classify a stream with task NAME and alert when an entity turns negative.

    \b
    app monitor financial-sentiment --input news.csv --alerts alerts.jsonl --report out/
    tail -f feed.jsonl | app monitor financial-sentiment --input - --set monitor.window=1h
    """
    from ..errors import ConfigError
    from ..operations.monitor_run import run_monitor

    specs = [*sinks, *([f"file:{alerts_file}"] if alerts_file else [])]
    if as_json and not specs:
        raise ConfigError("--json prints the summary on stdout: send the alerts elsewhere "
                          "with --alerts FILE or --sink.")
    ray = make_engine(engine, workers, address)
    catalog = catalog_from(ctx)
    with ray or nullcontext():
        result = run_monitor(name, source, fmt=fmt, model=model, overrides=overrides,
                             sinks=specs, report_dir=report_dir, catalog=catalog,
                             keep_state=not no_state, engine=ray)
    summary = result.to_json()
    if as_json:
        emit_json(summary)
        return
    c = result.counts
    click.echo(f"{c.rows} rows ({c.scored} scored, {c.malformed} malformed, {c.out_of_order} out "
               f"of order, {c.late} late), {len(result.entities)} entities, {c.windows} windows, "
               f"{c.alerts} alerts with {result.model}"
               + (f", {c.sink_errors} not delivered" if c.sink_errors else "")
               + (f"; report {result.report}" if result.report else ""), err=True)
    for problem in c.problems[:3]:
        click.echo(f"  malformed: {problem}", err=True)


COMMANDS = [monitor]
