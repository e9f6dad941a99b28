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
    from ..artifacts.promotion import promote as move
    from .models import _artifact

    from ..artifacts import hub
    from ..errors import ConfigError

    artifact = _artifact(ref)
    if not hub.in_hub(artifact.path):
        raise ConfigError(f"{artifact.path} is not a version of the hub ({hub.artifacts_root()}); "
                          "`app models promote` takes TASK@vN. Publish the model with "
                          "`app run-task` first.")
    pointer = move(artifact, reason="app models promote")
    if as_json:
        emit_json(pointer)
    else:
        was = f" (was {pointer['previous']})" if pointer["previous"] else ""
        click.echo(f"{pointer['task']}@serving -> {pointer['version']}{was}", err=True)


MODELS_COMMANDS = [promote]
