"""The `app` command line (also installed as `tunehub`).

Each command lives in its own module. Errors meant for people (`TunehubError`) print as
one message and exit with code 2, never a traceback.
"""
from __future__ import annotations

import sys

import click

from ..errors import TunehubError


class App(click.Group):
    # Plugin commands (hook `register_commands`) are looked up only when a name is not a
    # built-in command or when help lists them; a broken plugin just adds no command.
    def list_commands(self, ctx: click.Context) -> list[str]:
        from .plugins import plugin_commands

        return sorted({*super().list_commands(ctx), *plugin_commands(ctx, self.commands)})

    def get_command(self, ctx: click.Context, name: str):
        found = super().get_command(ctx, name)
        if found is not None:
            return found
        from .plugins import plugin_commands

        return plugin_commands(ctx, self.commands).get(name)

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except TunehubError as exc:
            click.secho(f"Error: {exc}", fg="red", err=True)
            sys.exit(exc.exit_code)
        except KeyboardInterrupt:
            click.secho("Interrupted. `app run-task ... --resume` continues from the last "
                        "checkpoint.", fg="yellow", err=True)
            sys.exit(130)


@click.group(cls=App, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--strict", is_flag=True, envvar="TUNEHUB_STRICT",
              help="Fail when any plugin fails to load (default: skip it and go on).")
@click.option("--registry", "registries", multiple=True, type=click.Path(dir_okay=False),
              is_eager=True,  # read before --help, which lists the plugins' commands
              help="An extra registry.toml layered over the built-in one (repeatable).")
@click.version_option(package_name="tunehub")
@click.pass_context
def main(ctx: click.Context, strict: bool, registries: tuple[str, ...]) -> None:
    """tunehub: fine-tune pretrained transformers for business tasks.

    \b
    app list-tasks                        tasks the installed plugins provide
    app run-task financial-sentiment      fine-tune on the bundled sample data
    app predict financial-sentiment "Profit rose 20%."
    """
    ctx.obj = {"strict": strict, "registries": registries}


def _register_commands() -> None:
    from . import evaluate, models, new_plugin, plugins, predict, run, serve, tasks, validate

    for module in (tasks, plugins, models, run, validate, evaluate, predict, serve, new_plugin):
        for command in module.COMMANDS:
            main.add_command(command)


_register_commands()
