"""`app run-task NAME`: fine-tune, evaluate against baselines, save a versioned artifact."""
from __future__ import annotations

import click

from .output import catalog_from, data_options, deprecated_alias, emit_json, print_result


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
@click.option("--with-feedback", is_flag=True,
              help="Retrain the serving version on the feedback `app serve` stored: its settings "
                   "and data, the feedback joined to the training rows only, scored on its "
                   "evaluation rows.")
@click.option("--promote-if-better", is_flag=True,
              help="Point @serving at the new version unless it is worse than the serving one "
                   "beyond the 95% interval of the primary metric.")
@click.option("--json", "as_json", is_flag=True,
              help="Print one JSON object (task, artifact, metrics, baselines) to stdout.")
@click.pass_context
def run_task(ctx: click.Context, name: str, data: str | None, eval_data: str | None,
             overrides: tuple[str, ...], base_model: str | None, model: str | None,
             resume: str | None, with_feedback: bool, promote_if_better: bool,
             as_json: bool) -> None:
    """Fine-tune and evaluate task NAME (bundled sample data unless --data is given)."""
    from ..running.engine import is_main_process
    from ..operations.retrain import previous_serving
    from ..running.runner import run_task as run

    catalog = catalog_from(ctx)
    previous = previous_serving(name) if promote_if_better else None
    result = run(name, data=data, eval_data=eval_data, model=base_model or model,
                 overrides=overrides, resume=resume or False, catalog=catalog,
                 with_feedback=with_feedback)
    if not is_main_process():
        return
    record = {"feedback": result.notes["feedback"]} if with_feedback else None
    decision = None
    if promote_if_better:
        from ..artifacts.promotion import promote_if_better as decide

        decision = decide(name, result.version, previous, catalog)
    if as_json:
        emit_json({**result.to_json(), **(record or {}),
                   **({"promotion": decision} if decision else {})})
        return
    print_result(result)
    if decision and "refused" in decision:
        click.echo(f"@serving -> {decision['serving']} (kept: {decision['refused']})", err=True)
    elif decision:
        against = (f" vs {decision['against']}: {decision['metric']} {decision['difference']:+.4f}, "
                   f"95% interval [{decision['ci95'][0]:+.4f}, {decision['ci95'][1]:+.4f}]"
                   if "against" in decision else "")
        click.echo(f"@serving -> {decision['serving']}"
                   f"{' (promoted)' if decision['promoted'] else ' (kept: the new version is worse)'}"
                   f"{against}", err=True)


COMMANDS = [run_task]
