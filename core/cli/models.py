"""`app models`: base-model aliases and fine-tuned versions."""
from __future__ import annotations

import click

from .output import catalog_from, emit_json, json_option, stdout_console, table


@click.command("models")
@json_option
@click.pass_context
def models(ctx: click.Context, as_json: bool) -> None:
    """List base models (aliases) and fine-tuned versions."""
    from .. import hub

    catalog = catalog_from(ctx)
    aliases = sorted(catalog.models().values(), key=lambda m: m.name)
    versions = []
    for artifact in hub.list_artifacts():
        manifest = artifact.manifest()
        versions.append({
            "ref": artifact.ref, "task": artifact.task, "version": artifact.version,
            "base_model": manifest.get("base_model"),
            "primary_metric": manifest.get("primary_metric"),
            "value": manifest.get("primary_value"), "created": manifest.get("created"),
            "path": str(artifact.path),
        })
    if as_json:
        emit_json({"base_models": [{"alias": m.name, "source": m.source,
                                    "description": m.description} for m in aliases],
                   "fine_tuned": versions})
        return
    console = stdout_console()
    console.print(table("Base models", ["alias", "source", "description"],
                        [[m.name, m.source, m.description] for m in aliases]))
    console.print(table(f"Fine-tuned versions ({hub.artifacts_root()})",
                        ["model", "base", "metric", "value", "created"],
                        [[v["ref"], v["base_model"], v["primary_metric"], v["value"], v["created"]]
                         for v in versions]))


COMMANDS = [models]
