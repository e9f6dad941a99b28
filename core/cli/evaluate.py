"""`app evaluate NAME --model M --data P`: metrics of a saved model, no training."""
from __future__ import annotations

from contextlib import nullcontext

import click

from .output import catalog_from, emit_json, json_option, print_result
from .scale import engine_options, make_engine


@click.command("evaluate")
@click.argument("name")
@click.option("--model", help="TASK@latest (default), TASK@vN, or an artifact folder.")
@click.option("--data", "--input", "data", type=click.Path(dir_okay=False),
              help="Labelled data to evaluate on (default: the run's own eval split); "
                   "--input is the same option, as in `app predict`.")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE",
              help="Override a config value, e.g. dataset.columns.text=sentence.")
@click.option("--quantize", type=click.Choice(["none", "int8"]), default="none", show_default=True,
              help="Evaluate the dynamic-int8 model and print its metrics beside full precision.")
@click.option("--no-report", is_flag=True,
              help="Do not write evaluations/<time>/report.md into the artifact.")
@engine_options
@click.option("--batch-size", default=256, show_default=True, type=click.IntRange(min=1),
              help="Rows per batch with --engine ray.")
@json_option
@click.pass_context
def evaluate(ctx: click.Context, name: str, model: str | None, data: str | None,
             overrides: tuple[str, ...], quantize: str, no_report: bool, as_json: bool,
             engine: str = "process", workers: int | None = None, address: str | None = None,
             batch_size: int = 256) -> None:
    """Evaluate a fine-tuned version of task NAME on --data (or its own eval data)."""
    from ..running.runner import evaluate as run_evaluate

    ray = make_engine(engine, workers, address, batch_size)
    with ray or nullcontext():
        result = run_evaluate(name, model=model, data=data, overrides=overrides,
                              quantize=quantize, write=not no_report, catalog=catalog_from(ctx),
                              engine=ray)
    if as_json:
        emit_json({**result.to_json(), "model": result.notes.get("model"),
                   "report": result.notes.get("report"),
                   **({"quantize": {k: v for k, v in result.notes.items() if "vs fp32" in k}}
                      if quantize != "none" else {})})
    else:
        print_result(result)


COMMANDS = [evaluate]
