"""Closing the loop after a run: training on production feedback, and promoting a new
version only when it is not worse than the one serving.

Feedback joins the training data of classification tasks: each feedback item is a
(text, label) row; when a text is already in the training file with another label, the
feedback wins (the latest feedback for a text, if it was corrected twice). The merged file
is written under ``$TUNEHUB_HOME/feedback-data/`` and its counts go into the run's manifest
and report.
"""
from __future__ import annotations

import csv
import hashlib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .errors import ConfigError


def merge_feedback(task: str, config: Mapping[str, Any], train: Path,
                   feedback: list[dict[str, Any]]) -> tuple[Path, dict[str, Any]]:
    """(merged training file, counts). Feedback wins over a conflicting training label."""
    from .data import column_for, read_table
    from .hub import home

    table = read_table(train)
    columns = config["dataset"]["columns"]
    text_col, label_col = column_for(table, "text", columns), column_for(table, "label", columns)
    rows = {str(r.get(text_col) or "").strip(): str(r.get(label_col) or "").strip()
            for r in table.rows}
    declared = set(config["dataset"]["labels"])
    latest: dict[str, str] = {}
    skipped = 0
    for item in feedback:  # oldest first: a later correction replaces an earlier one
        text, label = item.get("input"), item.get("label")
        if item.get("kind") != "label" or not isinstance(text, str) or not text.strip() \
                or (declared and label not in declared):
            skipped += 1
            continue
        latest[text.strip()] = str(label)
    counts = {"feedback items": len(feedback), "added": 0, "overrode a training label": 0,
              "agreed with training": 0, "skipped (not a text with a known label)": skipped}
    for text, label in latest.items():
        before = rows.get(text)
        key = "added" if before is None else "agreed with training" if before == label \
            else "overrode a training label"
        counts[key] += 1
        rows[text] = label
    digest = hashlib.sha256(json.dumps(sorted(rows.items())).encode()).hexdigest()[:12]
    out = home() / "feedback-data" / f"{task}-{digest}.csv"
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow([text_col, label_col])
        writer.writerows(rows.items())
    return out, counts


def feedback_training_file(task: str, *, data: str | None, overrides, catalog: Any
                           ) -> tuple[Path, dict[str, Any]]:
    """The run's training file with the task's stored feedback merged in."""
    from .feedback import db_path, list_feedback
    from .runner import prepare

    p = prepare(task, data=data, overrides=overrides, catalog=catalog)
    if p.task.head != "sequence-classification":
        raise ConfigError(f"--with-feedback retrains classification tasks; for '{task}' export "
                          f"the feedback (`app feedback export {task}`) and add it to --data.")
    feedback = list_feedback(task)
    if not feedback:
        raise ConfigError(f"--with-feedback: no feedback stored for '{task}' in {db_path()}. "
                          "Send some to a server's POST /v1/feedback first.")
    merged, counts = merge_feedback(task, p.config, p.files["train"], feedback)
    return merged, {"feedback": {"source": str(p.files["train"]), "merged": str(merged),
                                 "store": str(db_path()), **counts}}


def previous_serving(task: str):
    """What serves now (the promoted version, else the latest), or None before any run."""
    from .errors import ModelError
    from .promotion import serving_artifact

    try:
        return serving_artifact(task)
    except ModelError:
        return None


def promote_if_better(task: str, new_version: str, previous: Any, catalog: Any) -> dict[str, Any]:
    """Promote ``new_version`` unless it is worse than ``previous`` beyond the 95% interval
    of the primary metric on the new run's evaluation data; else keep ``previous`` serving."""
    from . import hub
    from .compare import compare_versions, not_worse
    from .promotion import promote

    new = hub.find_artifact(f"{task}@{new_version}")
    if previous is None:
        pointer = promote(new, reason="run-task --promote-if-better: first version")
        return {"promoted": True, "serving": new.ref, "pointer": pointer}
    comparison = compare_versions(task, str(previous.path), str(new.path), catalog=catalog)
    primary = comparison["metrics"][comparison["primary_metric"]]
    summary = {"against": previous.ref, "metric": comparison["primary_metric"],
               "difference": primary["difference"], "ci95": primary["ci95"],
               "verdict": primary["verdict"], "examples": comparison["examples"]}
    if not_worse(comparison):
        pointer = promote(new, reason="run-task --promote-if-better: not worse", **summary)
        decision = {"promoted": True, "serving": new.ref, **summary, "pointer": pointer}
    else:
        pointer = promote(previous, reason=f"run-task --promote-if-better: {new.ref} was worse",
                          **summary)
        decision = {"promoted": False, "serving": previous.ref, **summary, "pointer": pointer}
    hub.write_json(new.path / "promotion.json", decision)
    return decision
