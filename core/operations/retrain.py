"""Retraining on production feedback (`promotion.promote_if_better` then decides whether
the new version serves).

A retrain (``run-task --with-feedback``) starts from the version that serves (else the
latest): its saved settings and its data files unless others are given. The head reads the
data as before, so the evaluation rows are that version's (checked against its
``rows.json``); then the head joins the stored feedback to the training rows only
(`join_feedback`), skipping any item whose input is an evaluation row. What joined goes
into the run's manifest and report.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from ..errors import ConfigError, PluginError


def retrain_from(task: str, data: Any, eval_data: Any, catalog: Any):
    """(previous version, its saved config, training file, evaluation file) of a retrain:
    the files the previous version was trained and scored on, unless ``data`` is given."""
    from ..extending.tasks import read_toml

    head = catalog.head_of(catalog.task(task))
    if not head.takes_feedback:
        raise ConfigError(f"--with-feedback: head '{head.name}' of task '{task}' takes no "
                          f"feedback; export it (`app feedback export {task}`) and add it to --data.")
    previous = previous_serving(task)
    if previous is None:
        raise ConfigError(f"--with-feedback retrains a version of '{task}', and there is none "
                          f"yet: run `app run-task {task}` first, serve it, collect feedback.")
    if data is None:
        used = previous.manifest().get("data", {})
        data, eval_data = used.get("train"), eval_data or used.get("eval")
        missing = [path for path in (data, eval_data) if path and not Path(path).is_file()]
        if missing:
            raise ConfigError(f"--with-feedback: {missing[0]}, which {previous.ref} was trained "
                              "on, is gone; pass the training file again with --data FILE.")
    return previous, read_toml(previous.path / "config.toml", "artifact config"), data, eval_data


def join_feedback(p: Any, task_data: Any, previous: Any) -> dict[str, Any]:
    """Join the task's stored feedback to ``task_data.train`` through the head; the record
    for the manifest. Refuses when the evaluation rows are not ``previous``'s."""
    from ..artifacts import rows
    from .feedback import db_path, list_feedback

    task, head = p.task.name, p.head
    keys = head.row_keys(task_data, p.config)
    before = rows.read(previous.path)
    evaluation = rows.hashed(keys["eval"])
    if before is not None and before["eval_digest"] != rows.digest(evaluation):
        raise ConfigError(
            f"--with-feedback scores the retrain on {previous.ref}'s {before['eval_rows']} "
            f"evaluation rows, but this data gives {len(evaluation)} other ones (another file "
            "or split setting). Leave out --data/--eval-data and dataset.* settings to reuse "
            f"{previous.ref}'s, or train anew without --with-feedback.")
    stored = list_feedback(task)
    if not stored:
        raise ConfigError(f"--with-feedback: no feedback stored for '{task}' in {db_path()}. "
                          "Send some to a server's POST /v1/feedback first.")
    fields = head.corrections(p.config, task_data.info.get("labels"))
    items = [item for item in stored if item.get("kind") in fields]
    held_out = set(keys["eval"])
    counts = head.join_feedback(task_data, items, p.config, held_out)
    after = head.row_keys(task_data, p.config)
    leaked = (set(after["train"]) - set(keys["train"])) & held_out
    if leaked:
        raise PluginError(f"head '{head.name}' joined feedback into {len(leaked)} evaluation "
                          "rows; join_feedback must skip items whose key is in held_out.")
    return {"feedback": {"retrained": previous.ref, "store": str(db_path()),
                         "feedback items": len(stored), **counts,
                         "not a correction this head takes": len(stored) - len(items),
                         "evaluation rows": f"{previous.ref}'s ({len(evaluation)})"
                         if before is not None else "this run's split (the previous version "
                         "recorded none)"}}


def previous_serving(task: str):
    """What serves now (the promoted version, else the latest), or None before any run."""
    from ..errors import ModelError
    from ..artifacts.hub import find_artifact

    try:
        return find_artifact(f"{task}@serving")
    except ModelError:
        return None
