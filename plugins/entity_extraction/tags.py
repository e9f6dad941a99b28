"""Tag schemes and spans: IOB1/IOB2/BIOES to IOB2, validation, spans, constrained decoding.

Everything inside the head works in IOB2 (``B-X`` opens an entity, ``I-X`` continues it,
``O`` is outside). Files in IOB1 or BIOES (also written BILOU) are converted on reading.
Spans are ``(start, end, type)`` over token positions, ``end`` exclusive.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

SCHEMES = ("auto", "iob2", "iob1", "bioes")
Span = tuple[int, int, str]


class TagError(ValueError):
    """A tag sequence that breaks its scheme; ``index`` is the offending token."""

    def __init__(self, index: int, message: str) -> None:
        super().__init__(message)
        self.index = index


def split_tag(tag: str) -> tuple[str, str]:
    """("B", "PER") from "B-PER"; ("O", "") from "O". Raises TagError for a bare type."""
    if tag == "O":
        return "O", ""
    prefix, sep, kind = tag.partition("-")
    if not sep or not kind or prefix not in "BIESUL" or len(prefix) != 1:
        raise TagError(-1, f"'{tag}' is not a tag: write O, or B-TYPE / I-TYPE "
                           "(E-TYPE / S-TYPE in BIOES)")
    return prefix, kind


def detect_scheme(tags: Sequence[str]) -> str:
    """``bioes`` when any E-/S-/L-/U- prefix occurs, else ``iob2``."""
    return "bioes" if any(t[:2] in ("E-", "S-", "L-", "U-") for t in tags) else "iob2"


def to_iob2(tags: Sequence[str], scheme: str) -> list[str]:
    """Convert one sentence's tags to IOB2, checking them against ``scheme`` on the way.

    IOB2 is strict: an ``I-X`` after ``O`` or after another type is an error (that is
    what IOB1 files look like; read those with the ``iob1`` scheme).
    """
    if scheme not in SCHEMES or scheme == "auto":
        raise ValueError(f"scheme must be one of {', '.join(SCHEMES[1:])}, got '{scheme}'")
    out: list[str] = []
    previous = ("O", "")
    for index, tag in enumerate(tags):
        try:
            prefix, kind = split_tag(tag)
        except TagError as exc:
            raise TagError(index, str(exc)) from None
        prefix = {"U": "S", "L": "E"}.get(prefix, prefix)
        inside = previous[0] != "O" and previous[1] == kind and previous[0] not in ("E", "S")
        if scheme != "bioes" and prefix in ("E", "S"):
            raise TagError(index, f"'{tag}' is a BIOES tag in a file read as {scheme.upper()}")
        if prefix == "I" and not inside:
            if scheme == "iob1":
                prefix = "B"  # IOB1 opens an entity with I-
            else:
                after = "O" if previous[0] == "O" else "-".join(previous)
                raise TagError(index, f"'{tag}' follows '{after}', so it continues no "
                                      f"entity (strict {scheme.upper()}: open it with B-{kind})")
        if scheme == "bioes" and prefix == "E" and not inside:
            raise TagError(index, f"'{tag}' ends an entity that was never opened")
        if scheme == "bioes" and previous[0] in ("B", "I") and not (inside and prefix in ("I", "E")):
            raise TagError(index, f"the entity opened before '{tag}' is never closed "
                                  f"(BIOES ends it with E-{previous[1]})")
        out.append("O" if prefix == "O" else f"{'B' if prefix in ('B', 'S') else 'I'}-{kind}")
        previous = (prefix, kind)
    if scheme == "bioes" and previous[0] in ("B", "I"):
        raise TagError(len(tags) - 1, f"the sentence ends inside an entity (close it with "
                                      f"E-{previous[1]})")
    return out


def spans(tags: Sequence[str]) -> list[Span]:
    """Entities of a tag sequence with CoNLL (conlleval) semantics.

    An entity starts at ``B-X``, or at an ``I-X`` that follows ``O`` or another type,
    and runs over the ``I-X`` that follow. Never fails, so it reads model output too.
    """
    found: list[Span] = []
    start, kind = -1, ""
    for index, tag in enumerate([*tags, "O"]):
        prefix, _, this = tag.partition("-")
        continues = prefix == "I" and this == kind and start >= 0
        if start >= 0 and not continues:
            found.append((start, index, kind))
            start, kind = -1, ""
        if prefix in ("B", "I") and not continues:
            start, kind = index, this
    return found


def tags_from_spans(length: int, entities: Sequence[Span]) -> list[str]:
    """IOB2 tags for ``length`` tokens holding non-overlapping ``entities``."""
    tags = ["O"] * length
    for start, end, kind in entities:
        tags[start] = f"B-{kind}"
        for i in range(start + 1, end):
            tags[i] = f"I-{kind}"
    return tags


def repair(tags: Sequence[str]) -> list[str]:
    """Valid IOB2 for any sequence: an ``I-X`` that continues nothing becomes ``B-X``."""
    return tags_from_spans(len(tags), spans(tags))


def allowed_transitions(labels: Sequence[str]) -> np.ndarray:
    """(L, L) booleans: may ``labels[j]`` follow ``labels[i]`` in IOB2?"""
    n = len(labels)
    ok = np.ones((n, n), dtype=bool)
    for j, tag in enumerate(labels):
        if tag.startswith("I-"):
            kind = tag[2:]
            for i, prev in enumerate(labels):
                ok[i, j] = prev in (f"B-{kind}", f"I-{kind}")
    return ok


def viterbi(log_probs: np.ndarray, labels: Sequence[str]) -> list[int]:
    """The most probable label path (T, L) -> T indices that is valid IOB2.

    Per-token probabilities with a hard constraint: no ``I-X`` after ``O`` or another type,
    and none at the start. The best path under the constraint, not a greedy repair.
    """
    steps, n = log_probs.shape
    if steps == 0:
        return []
    penalty = np.where(allowed_transitions(labels), 0.0, -np.inf)  # (L, L)
    start_ok = np.array([not t.startswith("I-") for t in labels])
    score = np.where(start_ok, log_probs[0], -np.inf)  # (L,)
    back = np.zeros((steps, n), dtype=np.int64)
    for t in range(1, steps):
        total = score[:, None] + penalty  # (L prev, L next)
        back[t] = total.argmax(0)
        score = total.max(0) + log_probs[t]
    path = [int(score.argmax())]
    for t in range(steps - 1, 0, -1):
        path.append(int(back[t, path[-1]]))
    return path[::-1]
