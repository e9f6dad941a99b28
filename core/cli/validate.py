"""`app validate-data NAME --data P`: check data against a task without loading a model."""
from __future__ import annotations

import click

from .output import data_options, emit_json, json_option, stdout_console, table


@click.command("validate-data")
@click.argument("name")
@data_options
@json_option
@click.pass_context
def validate_data(ctx: click.Context, name: str, data: str | None, eval_data: str | None,
                  overrides: tuple[str, ...], as_json: bool) -> None:
    """Check that data files fit task NAME (columns, labels, encoding, empty rows)."""
    from ..running.runner import validate_data as validate

    task_data = validate(name, data=data, eval_data=eval_data, overrides=overrides,
                         strict=ctx.obj["strict"], registries=ctx.obj["registries"])
    summary = {"task": name, "valid": True,
               "files": {k: str(v) for k, v in task_data.files.items()}, **task_data.summary,
               "warnings": list(task_data.warnings)}
    from ..running.progress import readable, warn

    for text in task_data.warnings:  # the same warnings `app run-task` prints
        warn(text)
    if as_json:
        emit_json(summary)
        return
    summary.pop("warnings")
    stdout_console().print(table(f"{name}: data is valid", ["what", "value"],
                                 [[k, readable(v)] for k, v in summary.items() if k != "valid"]))


COMMANDS = [validate_data]
