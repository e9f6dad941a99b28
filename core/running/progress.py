"""Rich progress and console output. Everything for people goes to stderr, so that
``--json`` output on stdout stays one clean JSON object.

Every phase longer than about a second announces itself with `phase`: a spinner and a
"done" line on a terminal; in a log (CI, ``nohup``) a timestamped line once it has run a
second and one when it ends, with periodic progress lines during training. ``app --quiet`` (or
``TUNEHUB_QUIET=1``) silences all of it; errors and warnings still print.
"""
from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator, Mapping
from datetime import datetime
from functools import lru_cache
from typing import Any

LOG_EVERY_SECONDS = 30.0  # progress lines during training when stderr is not a terminal
ANNOUNCE_AFTER = 1.0  # seconds before a phase announces itself in a log


@lru_cache(maxsize=1)
def console():
    from rich.console import Console

    return Console(stderr=True)


def quiet() -> bool:
    return os.environ.get("TUNEHUB_QUIET", "") not in ("", "0")


def _stamp() -> str:
    return datetime.now().strftime("%H:%M:%S")


def warn(text: str) -> None:
    """One warning line on stderr, shown even under --quiet; brackets in ``text`` are shown
    as written (never read as markup). In a log it stays one line, as `say`'s do."""
    from rich.markup import escape

    out = console()
    out.print(f"[bold yellow]warning:[/] {escape(text)}", highlight=False,
              soft_wrap=not out.is_terminal)


def say(text: str) -> None:
    """One progress line for people (timestamped in logs); nothing under --quiet."""
    if quiet():
        return
    out = console()
    out.print(text if out.is_terminal else f"[{_stamp()}] {text}", highlight=False, markup=False,
              soft_wrap=not out.is_terminal)  # a log line stays one line


@contextlib.contextmanager
def phase(text: str) -> Iterator[None]:
    """Announce a phase of work: ``with phase("loading model"): ...``."""
    if quiet():
        yield
        return
    out = console()
    start = time.perf_counter()
    if out.is_terminal:
        from rich.markup import escape

        with out.status(f"{escape(text)} ...", spinner="dots"):  # "[x=y]" is text, not markup
            yield
        out.print(f"[green]done[/] {escape(text)} ({time.perf_counter() - start:.1f}s)",
                  highlight=False)
        return
    # In a log, a phase is announced once it has taken ANNOUNCE_AFTER seconds: quick steps
    # (and checks that fail at once) stay silent, so an error is the only line it prints.
    import threading

    announced = threading.Event()

    def announce() -> None:
        announced.set()
        out.print(f"[{_stamp()}] {text} ...", highlight=False, markup=False, soft_wrap=True)

    timer = threading.Timer(ANNOUNCE_AFTER, announce)
    timer.daemon = True
    timer.start()
    try:
        yield
    finally:
        timer.cancel()
    seconds = time.perf_counter() - start
    if announced.is_set() or seconds >= ANNOUNCE_AFTER:
        out.print(f"[{_stamp()}] {text}: done in {seconds:.1f}s", highlight=False, markup=False,
                  soft_wrap=True)


def readable(value: Any) -> str:
    """A value as people read it: a mapping as ``key: value, key: value`` (nested ones in
    parentheses), a list as ``a, b``, anything else as ``str``; never a Python repr."""
    if isinstance(value, Mapping):
        return ", ".join(f"{key}: {_inner(item)}" for key, item in value.items()) or "none"
    if isinstance(value, (list, tuple, set, frozenset)):
        return ", ".join(_inner(item) for item in value) or "none"
    return str(value)


def _inner(value: Any) -> str:
    nested = isinstance(value, (Mapping, list, tuple, set, frozenset))
    return f"({readable(value)})" if nested else readable(value)


SHOWN_COUNTS = 8  # label counts listed in full; more are summed up in one phrase


def _brief(value: Any) -> Any:
    """A mapping of counts with many entries, in a phrase: a line stays readable with 77 labels
    (the report keeps every count)."""
    if not isinstance(value, Mapping) or len(value) <= SHOWN_COUNTS:
        return value
    counts = sorted(value.items(), key=lambda item: item[1])
    if not all(isinstance(count, int) for _, count in counts):
        return value
    (low_name, low), (_, high) = counts[0], counts[-1]
    return f"{len(counts)} labels, {low} to {high} rows each (fewest: {low_name})"


def summary(title: str, values: Mapping[str, Any]) -> None:
    """The data summary a run prints before training (rows, labels, split)."""
    if quiet() or not values:
        return
    say(title + ": " + "; ".join(f"{key} {readable(_brief(value))}" for key, value in values.items()))
