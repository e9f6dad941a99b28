"""`app list-tasks` and `app show-task NAME`."""
from __future__ import annotations

import click

from .output import catalog_from, emit_json, json_option, stdout_console, table, warn_failed


@click.command("list-tasks")
@json_option
@click.pass_context
def list_tasks(ctx: click.Context, as_json: bool) -> None:
    """List the tasks the loaded plugins provide."""
    catalog = catalog_from(ctx)
    tasks = sorted(catalog.tasks.values(), key=lambda t: t.name)
    warn_failed(catalog)
    if as_json:
        # "task", as the table's column says; "name" too, the key earlier releases gave
        emit_json([{"task": t.name, "name": t.name, "head": t.head, "plugin": t.plugin,
                    "description": t.description, "source": t.source} for t in tasks])
        return
    stdout_console().print(table(None, ["task", "head", "plugin", "description"],
                                 [[t.name, t.head, t.plugin, t.description] for t in tasks],
                                 keep=3))


@click.command("show-task")
@click.argument("name")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE",
              help="Override a config value (repeatable).")
@json_option
@click.pass_context
def show_task(ctx: click.Context, name: str, overrides: tuple[str, ...], as_json: bool) -> None:
    """Show a task's resolved configuration."""
    from ..running.config import to_toml
    from ..running.runner import resolve_config

    catalog = catalog_from(ctx)
    task = catalog.task(name)
    config = resolve_config(catalog, task, overrides)
    if as_json:
        emit_json({"task": task.name, "name": task.name, "plugin": task.plugin,
                   "source": task.source, "config": config})
        return
    click.echo(f"# task {task.name} (plugin {task.plugin}, file {task.source})")
    click.echo(to_toml(config), nl=False)


COMMANDS = [list_tasks, show_task]
