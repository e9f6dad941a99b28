"""`app plugins`: what loaded, from where, which hooks, and what failed or is disabled.

Also the lookup of commands that plugins add to `app` (hook ``register_commands``).
"""
from __future__ import annotations

from collections.abc import Container
from typing import Any

import click

from ..extending import registry as registry_module

from .output import catalog_from, emit_json, json_option, stdout_console, table, warn_failed

STATUS_STYLE = {"ok": "ok", "failed": "[red]failed[/]", "disabled": "[yellow]disabled[/]"}


def plugin_commands(ctx: click.Context, builtin: Container[str]) -> dict[str, Any]:
    """Commands the plugins register, loaded once per invocation; never raises.

    A plugin command may not shadow a built-in one. Loading is not strict here: a failed
    plugin only loses its commands (`app plugins` says why).
    """
    root = ctx.find_root()
    cached = root.meta.get("tunehub.plugin_commands")
    if cached is None:
        from ..extending.plugins import load_catalog

        try:
            catalog = load_catalog(False, root.params.get("registries") or ())
            cached = {name: entry.command for name, entry in catalog.commands.items()
                      if name not in builtin}
        except Exception:  # a broken registry file: the built-in commands report it
            cached = {}
        root.meta["tunehub.plugin_commands"] = cached
    return cached


def missing_files(catalog) -> dict[str, list[str]]:
    """Plugin -> registered data-set files that no longer exist (the data set would fail)."""
    from pathlib import Path

    out: dict[str, list[str]] = {}
    for entry in catalog.items["datasets"].values():
        gone = [path for path in entry.files.values() if not Path(path).expanduser().exists()]
        if gone:
            out.setdefault(entry.plugin, []).extend(gone)
    return out


@click.command("plugins")
@json_option
@click.pass_context
def plugins(ctx: click.Context, as_json: bool) -> None:
    """List plugins: version, source, hooks, plugin API, registry file and status."""
    catalog = catalog_from(ctx)
    missing = missing_files(catalog)
    warn_failed(catalog)
    project = registry_module.project_registry().resolve()
    if project in catalog.registry.files and project != registry_module.builtin_registry().resolve():
        from ..running.progress import warn

        warn(f"read {project} from the current folder; a registry file can load plugin code, "
             "so run `app` only in folders you trust.")
    if as_json:
        emit_json([{**p.to_json(), "missing_files": missing.get(p.name, [])} for p in catalog.plugins])
        return
    rows = []
    for p in catalog.plugins:
        notes = "\n".join(x for x in (p.error, *p.warnings) if x)
        if missing.get(p.name):
            notes = (notes + "\n" if notes else "") + "missing files: " + ", ".join(missing[p.name])
        where = p.source + (f"\n{p.registry}" if p.registry else "")
        hooks = "\n".join(h.removeprefix("register_") for h in p.hooks) or "-"
        rows.append([p.name, STATUS_STYLE.get(p.status, p.status), p.version or "-", where, hooks,
                     "-" if p.api is None else str(p.api), notes or "-"])
    stdout_console().print(table(None, ["plugin", "status", "version", "source", "hooks", "api",
                                        "notes"], rows, keep=2))
    stdout_console().print(table("Registry files read (later ones win)", ["file", "from"],
                                 [[str(path), _layer(path)] for path in catalog.registry.files]))


def _layer(path) -> str:
    """Which layer a registry file came from (docs/plugins.md, "Registries layer")."""
    if path == registry_module.builtin_registry().resolve():
        return "built in"
    if path == registry_module.user_registry().resolve():
        return "your config"
    if path == registry_module.project_registry().resolve():
        return "current folder"
    return "TUNEHUB_REGISTRY or --registry"


COMMANDS = [plugins]
