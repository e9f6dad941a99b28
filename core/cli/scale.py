"""The ``--engine``/``--workers``/``--address`` options `app predict`, `app evaluate` and
`app monitor` share: where the batch scoring runs."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click


def engine_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """Add the engine options to a click command (parameters ``engine``, ``workers``,
    ``address``)."""
    options = [
        click.option("--engine", type=click.Choice(["process", "ray"]), default="process",
                     show_default=True,
                     help="Where the batches are scored: in this process, or on Ray Data "
                          "(needs pip install 'tunehub[ray]'; a local Ray, or --address)."),
        click.option("--workers", type=click.IntRange(min=1),
                     help="Ray workers, one CPU and one model each (default: this machine's "
                          "CPUs; on a cluster, its CPUs but one)."),
        click.option("--address",
                     help="Join this Ray cluster (auto, HOST:6379 or ray://HOST:10001) instead "
                          "of starting a local Ray."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def make_engine(engine: str, workers: int | None, address: str | None,
                batch_size: int = 256) -> Any:
    """A `RayEngine` (nothing started yet) for ``--engine ray``, else None; flags that need
    ``--engine ray``, and Ray itself, are checked here, before any model loads."""
    from ..serving.ray_engine import RayEngine, check_flags

    check_flags(engine, workers, address)
    return RayEngine(workers, address, batch_size) if engine == "ray" else None
