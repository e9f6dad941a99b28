"""`app models promote TASK@vN`: point @serving at a version (what `app serve` answers with)."""
from __future__ import annotations

import click

from .output import emit_json


@click.command("promote")
@click.argument("ref")
@click.option("--json", "as_json", is_flag=True, help="Print the new pointer as JSON.")
def promote(ref: str, as_json: bool) -> None:
    """Make version REF (TASK@vN) the one `app serve` answers with.

    A running `app serve TASK` (started without --model) follows the pointer and switches
    to REF within seconds, without dropping requests. `TASK@latest` is unaffected.
    """
    from ..promotion import promote as move
    from .models import _artifact

    pointer = move(_artifact(ref), reason="app models promote")
    if as_json:
        emit_json(pointer)
    else:
        was = f" (was {pointer['previous']})" if pointer["previous"] else ""
        click.echo(f"{pointer['task']}@serving -> {pointer['version']}{was}", err=True)


MODELS_COMMANDS = [promote]
