"""Errors meant for people: each says what was wrong, where, and how to fix it.

The CLI prints a `TunehubError` as one message (no traceback) and exits with code 2.
"""
from __future__ import annotations

import difflib
from collections.abc import Iterable


class TunehubError(Exception):
    """A problem the user can fix; the message names what, where and the fix."""

    exit_code = 2


class ConfigError(TunehubError):
    """A task file, registry file or `--set` override is wrong."""


class DataError(TunehubError):
    """A data file is missing, unreadable or does not match the task's schema."""


class PluginError(TunehubError):
    """A plugin failed to load or register (fatal only with `--strict`)."""


class ModelError(TunehubError):
    """A model cannot be found, or would need unsafe loading."""


class BatchError(TunehubError):
    """A batch job failed for a reason that is not the input's (a lost worker, rows that do
    not add up); exit code 1."""

    exit_code = 1


def did_you_mean(name: str, choices: Iterable[str]) -> str:
    """Return ' Did you mean 'x'?' for the closest choice, or ''."""
    close = difflib.get_close_matches(name, list(choices), n=1, cutoff=0.6)
    return f" Did you mean '{close[0]}'?" if close else ""


def unknown(kind: str, name: str, choices: Iterable[str]) -> str:
    """Message for an unknown registered name, with a near miss and the known names."""
    choices = sorted(choices)
    known = ", ".join(choices) if choices else "none"
    return f"Unknown {kind} '{name}'.{did_you_mean(name, choices)} Known: {known}."
