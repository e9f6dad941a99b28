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
@click.option("--head", "with_head", is_flag=True,
              help="Also write a head of the package's own (a Trainer-based text classifier).")
@click.option("--force", is_flag=True, help="Write into an existing, non-empty folder.")
@json_option
@click.pass_context
def new_plugin(ctx: click.Context, name: str, output: str | None, task: str | None,
               with_head: bool, force: bool, as_json: bool) -> None:
    """Create a plugin package NAME, ready for `pip install -e`.

    \b
    app new-plugin acme-tickets          # a task on the built-in classification head
    app new-plugin acme-tickets --head   # ... on a head of its own (acme_tickets/head.py)
    pip install -e ./acme-tickets
    app list-tasks && app run-task acme-tickets
    """
    from ..scaffold import check_free, names, write_plugin
    from .output import catalog_from

    fields = names(name, task)
    check_free(fields, catalog_from(ctx), with_head)  # before anything is written
    dest = Path(output or name)
    files = write_plugin(name, dest, task, force, with_head)
    if as_json:
        emit_json({"folder": str(dest), "task": fields["task"], "module": fields["module"],
                   "head": fields["head"] if with_head else None,
                   "files": [str(f) for f in files]})
        return
    own = f", head {fields['head']}" if with_head else ""
    click.echo(f"Created plugin package {dest}/ (module {fields['module']}, task {fields['task']}{own}):")
    for path in files:
        click.echo(f"  {path.relative_to(dest)}")
    click.echo("\nNext:\n"
               f"  pip install -e {dest}\n"
               f"  app list-tasks\n"
               f"  app run-task {fields['task']}\n"
               f"  cd {dest} && pytest")


COMMANDS = [new_plugin]
