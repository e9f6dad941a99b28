"""`app run-task NAME`: fine-tune, evaluate against baselines, save a versioned artifact."""
from __future__ import annotations

import click

from .output import data_options, deprecated_alias, emit_json, print_result


@click.command("run-task")
@click.argument("name")
@data_options
@click.option("--base-model", "base_model",
              help="The model to fine-tune: alias (see `app models`), folder or Hugging Face id.")
@click.option("--model", hidden=True, callback=deprecated_alias("run-task --model", "--base-model"),
              help="Old spelling of --base-model.")
@click.option("--resume", is_flag=False, flag_value="latest", default=None, metavar="[RUN_ID]",
              help="Continue an interrupted run from its last checkpoint: the latest one of this "
                   "task, data and settings, or RUN_ID (`app clean --dry-run` lists them).")
@click.option("--json", "as_json", is_flag=True,
              help="Print one JSON object (task, artifact, metrics, baselines) to stdout.")
@click.pass_context
def run_task(ctx: click.Context, name: str, data: str | None, eval_data: str | None,
             overrides: tuple[str, ...], base_model: str | None, model: str | None,
             resume: str | None, as_json: bool) -> None:
    """Fine-tune and evaluate task NAME (bundled sample data unless --data is given)."""
    from ..engine import is_main_process
    from ..runner import run_task as run

    result = run(name, data=data, eval_data=eval_data, model=base_model or model, overrides=overrides,
                 resume=resume or False, strict=ctx.obj["strict"], registries=ctx.obj["registries"])
    if not is_main_process():
        return
    if as_json:
        emit_json(result.to_json())
    else:
        print_result(result)


COMMANDS = [run_task]
