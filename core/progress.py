"""Rich progress and console output. Everything for people goes to stderr, so that
``--json`` output on stdout stays one clean JSON object.

Every phase longer than about a second announces itself with `phase`: a spinner and a
check mark on a terminal; one timestamped line when it starts and one when it ends in a
log (CI, ``nohup``), with periodic progress lines during training. ``app --quiet`` (or
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


@lru_cache(maxsize=1)
def console():
    from rich.console import Console

    return Console(stderr=True)


def quiet() -> bool:
    return os.environ.get("TUNEHUB_QUIET", "") not in ("", "0")


def _stamp() -> str:
    return datetime.now().strftime("%H:%M:%S")


def say(text: str) -> None:
    """One progress line for people (timestamped in logs); nothing under --quiet."""
    if quiet():
        return
    out = console()
    out.print(text if out.is_terminal else f"[{_stamp()}] {text}", highlight=False, markup=False)


@contextlib.contextmanager
def phase(text: str) -> Iterator[None]:
    """Announce a phase of work: ``with phase("loading model"): ...``."""
    if quiet():
        yield
        return
    out = console()
    start = time.perf_counter()
    if out.is_terminal:
        with out.status(f"{text} ...", spinner="dots"):
            yield
        out.print(f"[green]done[/] {text} ({time.perf_counter() - start:.1f}s)", highlight=False)
        return
    out.print(f"[{_stamp()}] {text} ...", highlight=False, markup=False)
    yield
    out.print(f"[{_stamp()}] {text}: done in {time.perf_counter() - start:.1f}s",
              highlight=False, markup=False)


def summary(title: str, values: Mapping[str, Any]) -> None:
    """The data summary a run prints before training (rows, labels, split)."""
    if quiet() or not values:
        return
    say(title + ": " + "; ".join(f"{key} {value}" for key, value in values.items()))
