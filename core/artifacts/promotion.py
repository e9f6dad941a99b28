"""The ``@serving`` pointer: which version of a task `app serve` answers with.

``@latest`` is always the newest version. ``@serving`` is a small JSON file,
``artifacts/<task>/serving.json``, that moves only when a version is promoted
(`app models promote TASK@vN`, or `run-task --promote-if-better`). It is written to a
temporary file and renamed over the old one, so a reader sees the old pointer or the new
one, never half of one. While no version has been promoted, ``@serving`` means ``@latest``.
"""
from __future__ import annotations

import json
import os
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ..errors import ConfigError


def pointer_path(task: str) -> Path:
    from .hub import SERVING_POINTER, artifacts_root

    return artifacts_root() / task / SERVING_POINTER


def read_pointer(task: str) -> dict[str, Any] | None:
    """The pointer's content, or None while nothing has been promoted."""
    from .hub import serving_version

    if serving_version(task) is None:  # also checks that the file is readable
        return None
    return json.loads(pointer_path(task).read_text())


def serving_artifact(task: str):
    """The promoted version, or ``@latest`` while none has been promoted."""
    from .hub import find_artifact

    return find_artifact(f"{task}@serving")


def promote(artifact, reason: str = "promoted by hand", **details: Any) -> dict[str, Any]:
    """Point ``@serving`` of the artifact's task at it (atomic rename)."""
    previous = read_pointer(artifact.task)
    pointer = {"task": artifact.task, "version": artifact.version,
               "promoted": datetime.now(timezone.utc).isoformat(timespec="seconds"),
               "reason": reason, "previous": previous["version"] if previous else None,
               **details}
    path = pointer_path(artifact.task)
    tmp = path.parent / f".{path.name}.{uuid.uuid4().hex[:8]}"
    tmp.write_text(json.dumps(pointer, indent=2, default=str) + "\n")
    os.replace(tmp, path)
    return pointer


def follower(catalog: Any, tasks: set[str], quantize: str = "none"):
    """``watch(task, current_ref)`` for `create_app`: for the ``tasks`` that follow the
    pointer, the newly promoted version, loaded, when ``@serving`` moved away from
    ``current_ref``; else None."""

    def watch(task: str, current_ref: str):
        from ..running.runner import load

        if task not in tasks:
            return None
        target = serving_artifact(task)
        if target.ref == current_ref:
            return None
        return load(task, model=str(target.path), quantize=quantize, catalog=catalog)

    return watch


def promote_if_better(task: str, new_version: str, previous: Any, catalog: Any) -> dict[str, Any]:
    """Promote ``new_version`` unless it is worse than ``previous`` beyond the 95% interval
    of the primary metric on the new run's evaluation data; else keep ``previous`` serving."""
    from . import hub
    from ..running.compare import compare_versions, not_worse

    new = hub.find_artifact(f"{task}@{new_version}")
    if previous is None:
        pointer = promote(new, reason="run-task --promote-if-better: first version")
        return {"promoted": True, "serving": new.ref, "pointer": pointer}
    try:
        comparison = compare_versions(task, str(previous.path), str(new.path), catalog=catalog)
    except ConfigError as exc:  # not comparable fairly: the serving version stays
        pointer = promote(previous, reason=f"run-task --promote-if-better: {new.ref} not "
                                           f"compared: {exc}")
        decision = {"promoted": False, "serving": previous.ref, "against": previous.ref,
                    "refused": str(exc), "pointer": pointer}
        hub.write_json(new.path / "promotion.json", decision)
        return decision
    primary = comparison["metrics"][comparison["primary_metric"]]
    summary = {"against": previous.ref, "metric": comparison["primary_metric"],
               "difference": primary["difference"], "ci95": primary["ci95"],
               "verdict": primary["verdict"], "examples": comparison["examples"],
               "rows": comparison["fairness"]}
    if not_worse(comparison):
        pointer = promote(new, reason="run-task --promote-if-better: not worse", **summary)
        decision = {"promoted": True, "serving": new.ref, **summary, "pointer": pointer}
    else:
        pointer = promote(previous, reason=f"run-task --promote-if-better: {new.ref} was worse",
                          **summary)
        decision = {"promoted": False, "serving": previous.ref, **summary, "pointer": pointer}
    hub.write_json(new.path / "promotion.json", decision)
    return decision
