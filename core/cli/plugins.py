"""`app plugins`: what loaded, from where, which hooks, and what failed."""
from __future__ import annotations

import click

from .output import catalog_from, emit_json, json_option, stdout_console, table


@click.command("plugins")
@json_option
@click.pass_context
def plugins(ctx: click.Context, as_json: bool) -> None:
    """List plugins with their source, hooks and status."""
    catalog = catalog_from(ctx)
    if as_json:
        emit_json([{"name": p.name, "source": p.source, "version": p.version,
                    "status": p.status, "error": p.error, "hooks": p.hooks, "api": p.api}
                   for p in catalog.plugins])
        return
    rows = [[p.name, p.version or "-", p.source, ", ".join(p.hooks) or "-",
             "ok" if p.status == "ok" else f"[red]failed[/]: {p.error}"]
            for p in catalog.plugins]
    stdout_console().print(table(None, ["plugin", "version", "source", "hooks", "status"], rows))


COMMANDS = [plugins]
