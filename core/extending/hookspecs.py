"""Hook specifications: the whole plugin contract of tunehub.

Every hook has the shape ``register_<noun>(register)``: the core passes a callback, the
plugin calls it once per thing it adds. The core records which plugin added what, rejects
duplicate names naming both plugins, and suggests near misses for unknown names.

A plugin module may set ``TUNEHUB_PLUGIN_API``: the plugin API it was written against, an
int (accepted from ``OLDEST_PLUGIN_API`` to ``PLUGIN_API_VERSION``: each version only adds
optional members) or a range such as ``">=1,<3"``. Outside the range the plugin is refused
with a clear message.
"""
from __future__ import annotations

from typing import Any, Callable

import pluggy

PROJECT = "tunehub"
PLUGIN_API_VERSION = 4  # 2: heads may declare row_keys, corrections, join_feedback, monitor_outputs,
# paths; 3: models; 4: eval_inputs, eval_outputs
OLDEST_PLUGIN_API = 1  # the oldest plugin API this tunehub still runs plugins of


def api_problem(wanted: object) -> str:
    """Why a plugin declaring ``TUNEHUB_PLUGIN_API = wanted`` cannot run here, or ""."""
    provided = f"this tunehub runs plugin API {OLDEST_PLUGIN_API} to {PLUGIN_API_VERSION}"
    if isinstance(wanted, int) and not isinstance(wanted, bool):
        if OLDEST_PLUGIN_API <= wanted <= PLUGIN_API_VERSION:
            return ""
        return f"needs plugin API {wanted}, {provided}; install a matching version of the plugin."
    if isinstance(wanted, str):
        from packaging.specifiers import InvalidSpecifier, SpecifierSet

        try:
            accepted = SpecifierSet(wanted)
        except InvalidSpecifier:
            return (f"TUNEHUB_PLUGIN_API = {wanted!r} is not a version range; write an int "
                    "such as 2 or a range such as '>=1,<3'.")
        if any(str(v) in accepted for v in range(OLDEST_PLUGIN_API, PLUGIN_API_VERSION + 1)):
            return ""
        return f"needs plugin API {wanted}, {provided}; install a matching version of the plugin."
    return (f"TUNEHUB_PLUGIN_API = {wanted!r}: write an int such as {PLUGIN_API_VERSION} or a "
            "range such as '>=1,<3'.")

hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def register_tasks(register: Callable[[Any], None]) -> None:
    """Add tasks: ``register(path_to_task_toml)`` or ``register(mapping)`` with the TOML's content."""


@hookspec
def register_datasets(register: Callable[..., None]) -> None:
    """Add named data sets: ``register(name, train=path, eval=None, description="", **files)``."""


@hookspec
def register_heads(register: Callable[[Any], None]) -> None:
    """Add heads (model types): ``register(head)`` where ``head`` follows `tunehub.core.extending.heads.Head`."""


@hookspec
def register_metrics(register: Callable[..., None]) -> None:
    """Add metrics: ``register(name, fn, higher_is_better=True, scalar=True, description="")``.

    ``fn(outputs)`` takes the evaluation outputs of a head (a mapping) and returns a float
    (``scalar=True``) or a JSON-serialisable detail such as a table (``scalar=False``).
    """


@hookspec
def register_baselines(register: Callable[..., None]) -> None:
    """Add baselines: ``register(name, fn, description="")``.

    ``fn(data, config)`` returns evaluation outputs in the same shape as the task's head,
    so every metric applies to the baseline too.
    """


@hookspec
def register_models(register: Callable[..., None]) -> None:
    """Add base-model aliases: ``register(alias, source, description="")``.

    ``source`` is a local path, a Hugging Face id, or ``package:<module>/<folder>`` for
    weights shipped inside an installed Python package.
    """


@hookspec
def register_commands(register: Callable[[Any], None]) -> None:
    """Add `app` subcommands: ``register(command)`` where ``command`` is a `click.Command`.

    Commands are looked up lazily, so a plugin's command module should import heavy
    libraries inside the command function. A name that a built-in command already uses is
    refused.
    """


@hookspec
def register_run_listeners(register: Callable[[Callable[[dict[str, Any]], None]], None]) -> None:
    """Add run listeners: ``register(fn)``; ``fn(event)`` receives every run event.

    ``event`` is a dict with ``event`` (``run_started``, ``run_finished`` or ``run_failed``),
    ``task``, ``config``, ``time`` and, when finished, ``metrics``, ``baselines``,
    ``artifact`` and ``version``; when failed, ``error``. A listener that raises is
    reported as a warning and never breaks the run.
    """


@hookspec
def register_alert_rules(register: Callable[..., None]) -> None:
    """Add monitoring alert rules: ``register(name, fn, description="")``.

    ``fn(window, history, settings)`` decides whether one entity's window is an alert.
    ``window`` is a `tunehub.core.operations.monitor.WindowStats` (``entity``, ``start``, ``end``,
    ``volume``, ``negative``, ``positive``, ``negative_share``, ``net``), ``history`` the
    entity's trailing windows (oldest first, at most ``monitor.baseline_windows``) and
    ``settings`` the task's ``[monitor]`` section. It returns None (no alert) or a mapping
    with at least ``score`` and ``baseline_share``; other keys are added to the alert.
    A task picks its rule with ``monitor.rule``.
    """


@hookspec
def register_alert_sinks(register: Callable[..., None]) -> None:
    """Add alert sinks: ``register(name, factory, description="")``.

    ``factory(target, settings)`` returns an object with ``send(alert)`` (and optionally
    ``close()``); ``target`` is what follows ``NAME:`` in ``app monitor --sink NAME:TARGET``
    and ``settings`` the task's ``[monitor]`` section. ``send`` gets each alert as a dict;
    an exception from it is counted and reported, and the monitor goes on.
    """
