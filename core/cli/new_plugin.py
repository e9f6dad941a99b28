"""`app new-plugin NAME`: scaffold a plugin package (entry point, task, data, tests)."""
from __future__ import annotations

from pathlib import Path

import click

from .output import emit_json, json_option


@click.command("new-plugin")
@click.argument("name")
@click.option("--output", "-o", type=click.Path(file_okay=False), default=None,
              help="Folder to create (default: ./NAME).")
@click.option("--task", "task", default=None, help="Task name (default: NAME with '-').")
@click.option("--force", is_flag=True, help="Write into an existing, non-empty folder.")
@json_option
def new_plugin(name: str, output: str | None, task: str | None, force: bool,
               as_json: bool) -> None:
    """Create a plugin package NAME, ready for `pip install -e`.

    \b
    app new-plugin acme-tickets
    pip install -e ./acme-tickets
    app list-tasks && app run-task acme-tickets
    """
    from ..scaffold import names, write_plugin

    dest = Path(output or name)
    files = write_plugin(name, dest, task, force)
    fields = names(name, task)
    if as_json:
        emit_json({"folder": str(dest), "task": fields["task"], "module": fields["module"],
                   "files": [str(f) for f in files]})
        return
    click.echo(f"Created plugin package {dest}/ (module {fields['module']}, task {fields['task']}):")
    for path in files:
        click.echo(f"  {path.relative_to(dest)}")
    click.echo("\nNext:\n"
               f"  pip install -e {dest}\n"
               f"  app list-tasks\n"
               f"  app run-task {fields['task']}\n"
               f"  cd {dest} && pytest")


COMMANDS = [new_plugin]
