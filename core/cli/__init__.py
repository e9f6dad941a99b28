"""The `app` command line (also installed as `tunehub`).

Each command lives in its own module. Errors meant for people (`TunehubError`) print as
one message and exit with code 2, never a traceback.
"""
from __future__ import annotations

import sqlite3
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
        _sigterm_as_interrupt()
        try:
            return super().invoke(ctx)
        except TunehubError as exc:
            _fail(str(exc), exc.exit_code)
        except click.UsageError as exc:  # one line, like every other error
            command = f"app {exc.ctx.command_path.split(' ', 1)[-1]}" if exc.ctx else "app"
            _fail(f"{exc.format_message()} See `{command} --help`.", exc.exit_code)
        except OSError as exc:
            from ..running.workdirs import HOME_ERRORS, home_error

            home = _home_or_none()
            if exc.errno in HOME_ERRORS and home is not None and _under(exc.filename, home):
                _fail(str(home_error(exc)), 2)
            _fail(_os_message(exc), 2)
        except sqlite3.Error as exc:
            _fail(f"a database could not be read or written ({type(exc).__name__}: {exc}); if it "
                  "is a feedback store, restore it from a backup or move it aside (`app feedback "
                  "--help`).", 2)
        except RecursionError:
            _fail("the input nests too deeply to read (a file or value with thousands of levels "
                  "of brackets or tables); flatten it.", 2)
        except Exception as exc:  # noqa: BLE001 - library errors, without importing the libraries
            module = type(exc).__module__
            if module.startswith("safetensors"):
                _fail(f"weights could not be written or read ({' '.join(str(exc).split())[:300]}); "
                      "check free space and the file-size limit (`ulimit -f`), then run again.", 2)
            if not module.startswith("pyarrow"):
                raise
            _fail(f"a Parquet or Arrow file could not be read ({type(exc).__name__}: "
                  f"{' '.join(str(exc).split())[:300]}); check that the file is complete and "
                  "really Parquet.", 2)
        except KeyboardInterrupt:
            click.secho("Interrupted.", fg="yellow", err=True)
            sys.exit(130)


def _home_or_none():
    from ..errors import TunehubError
    from ..artifacts.hub import home

    try:
        return home()
    except TunehubError:
        return None


def _under(filename, folder) -> bool:
    from pathlib import Path

    if not filename:
        return True  # no path given: the home was being written
    try:
        Path(str(filename)).resolve().relative_to(Path(folder).resolve())
        return True
    except (ValueError, OSError):
        return False


def _os_message(exc: OSError) -> str:
    """One line for an OS error: the path, what went wrong, and the usual fix."""
    import errno
    import os

    reason = os.strerror(exc.errno) if exc.errno else (exc.strerror or str(exc))
    path = exc.filename or "a file"
    fixes = {errno.ENOENT: "check the path (a parent folder must exist)",
             errno.EISDIR: "give a file, not a folder",
             errno.ENOTDIR: "a part of the path is a file, not a folder",
             errno.EACCES: "check its permissions", errno.EPERM: "check its permissions",
             errno.ENOSPC: "free some space", errno.EFBIG: "the file is over the size limit "
             "(`ulimit -f`); raise the limit or write elsewhere",
             errno.EEXIST: "choose a new name"}
    fix = fixes.get(exc.errno, "check the path and try again")
    return f"{path}: {reason}; {fix}."


def _fail(message: str, code: int) -> None:
    click.secho(f"Error: {' '.join(message.split())}", fg="red", err=True)  # one line
    sys.exit(code)


def _sigterm_as_interrupt() -> None:
    """SIGTERM (``kill``, a scheduler stopping the job) unwinds like Ctrl+C: staging folders
    are removed and an interrupted run keeps its checkpoints for ``--resume``."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        return

    def interrupt(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupt)


@click.group(cls=App, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--strict", is_flag=True, envvar="TUNEHUB_STRICT",
              help="Fail when any plugin fails to load (default: skip it and go on).")
@click.option("--registry", "registries", multiple=True, type=click.Path(dir_okay=False),
              is_eager=True,  # read before --help, which lists the plugins' commands
              help="An extra registry.toml layered over the built-in one (repeatable).")
@click.option("--quiet", "-q", is_flag=True, envvar="TUNEHUB_QUIET",
              help="No progress lines or summaries on stderr (errors and warnings still print).")
@click.version_option(package_name="tunehub")
@click.pass_context
def main(ctx: click.Context, strict: bool, registries: tuple[str, ...], quiet: bool) -> None:
    """tunehub: fine-tune pretrained transformers for business tasks.

    \b
    app list-tasks                        tasks the installed plugins provide
    app run-task financial-sentiment      fine-tune on the bundled sample data
    app predict financial-sentiment "Profit rose 20%."
    """
    ctx.obj = {"strict": strict, "registries": registries}
    if quiet:
        import os

        os.environ["TUNEHUB_QUIET"] = "1"


def _register_commands() -> None:
    from . import (clean, evaluate, feedback, models, monitor, new_plugin, plugins, predict,
                   run, serve, tasks, ui, validate)

    for module in (tasks, plugins, models, run, validate, evaluate, predict, serve, new_plugin,
                   clean, monitor, feedback, ui):
        for command in module.COMMANDS:
            main.add_command(command)
    from . import compare, promote

    for module in (compare, promote):  # subcommands of `app models`
        for command in module.MODELS_COMMANDS:
            models.models.add_command(command)


_register_commands()
