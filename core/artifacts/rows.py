"""Which rows a version trained on and which it was scored on, so that comparisons are fair.

A head that names its rows (``row_keys``: one key per training and evaluation row, such as
the text a classifier reads) gets a ``rows.json`` in every version it trains: a hash per
key (never the text itself) of the training rows, and of the evaluation rows in order with
a digest of them. A retrain on feedback checks that it is scored on the previous version's
evaluation rows; `app models compare` and ``--promote-if-better`` refuse to compare two
versions on rows either of them trained on.
"""
from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from ..errors import ConfigError

ROWS_FILE = "rows.json"


def hashed(keys: Iterable[str]) -> list[str]:
    """Each key as 16 hex digits of its SHA-256 (the key itself is never stored)."""
    return [hashlib.sha256(str(key).encode("utf-8")).hexdigest()[:16] for key in keys]


def digest(hashes: Sequence[str]) -> str:
    """One digest of a set of rows (order does not matter; repeats do)."""
    return hashlib.sha256("\n".join(sorted(hashes)).encode()).hexdigest()[:16]


def record(keys: Mapping[str, Sequence[str]]) -> dict[str, Any]:
    """What ``rows.json`` holds for a run's ``{"train": keys, "eval": keys}``."""
    train, evaluation = hashed(keys["train"]), hashed(keys["eval"])
    return {"train": sorted(set(train)), "train_rows": len(train), "eval": evaluation,
            "eval_rows": len(evaluation), "eval_digest": digest(evaluation)}


def shared(keys: Mapping[str, Sequence[str]]) -> int:
    """Evaluation rows whose key is also a training row's (the same input twice in the data)."""
    train = set(keys["train"])
    return sum(1 for key in keys["eval"] if key in train)


def write(folder: Path, found: Mapping[str, Any]) -> None:
    (Path(folder) / ROWS_FILE).write_text(json.dumps(found) + "\n")


def read(folder: Path) -> dict[str, Any] | None:
    """A version's ``rows.json``, or None for a head that does not name its rows."""
    path = Path(folder) / ROWS_FILE
    if not path.is_file():
        return None
    try:
        found = json.loads(path.read_text())
        if not all(isinstance(found.get(k), list) for k in ("train", "eval")):
            raise ValueError
    except (ValueError, OSError):
        raise ConfigError(f"{path}: damaged (not the rows record of a version); the version "
                          "cannot be compared fairly. Retrain it.") from None
    return found


def trained_on(found: Mapping[str, Any], evaluation: Sequence[str]) -> int:
    """How many of the evaluation rows (hashes) the version trained on, leaving out rows that
    were in its own evaluation set too (repeats inside its data, already in its metrics)."""
    own = set(found["eval"])
    train = set(found["train"]) - own
    return sum(1 for key in evaluation if key in train)


def check_fair(versions: Sequence[tuple[str, Path]], eval_keys: Sequence[str] | None) -> str:
    """Refuse (`ConfigError`, one line) to score versions on rows any of them trained on;
    else a note of what was checked."""
    if eval_keys is None:
        return "not checked: the head does not name its rows"
    evaluation = hashed(eval_keys)
    unchecked = []
    for ref, folder in versions:
        found = read(folder)
        if found is None:
            unchecked.append(ref)
            continue
        leaked = trained_on(found, evaluation)
        if leaked:
            raise ConfigError(
                f"{ref} trained on {leaked} of the {len(evaluation)} rows these versions would "
                "be compared on, so the comparison would favour it. Compare on rows neither "
                "version trained on: --data FILE with held-out rows.")
    if unchecked:
        return (f"{len(evaluation)} rows; not checked for {', '.join(unchecked)} (trained "
                "before versions recorded their rows)")
    return f"{len(evaluation)} rows, none trained on by either version"
