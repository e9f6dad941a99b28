"""FAQ and query files for customer-service QA, validated before any model loads.

Two layouts:

* FAQ style: an FAQ file (``id``, ``question``, ``answer``; other columns are kept as
  metadata) and query files (``query``, ``faq_id``). A query row with an empty ``faq_id`` is
  out of scope: nothing in the FAQ answers it.
* Intent style (no ``dataset.faq``): query files only, e.g. BANKING77's ``text,category``;
  every distinct ``faq_id`` is one FAQ entry whose question is the id made readable
  (``card_arrival`` -> "card arrival").
"""
from __future__ import annotations

import random
import re
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tunehub.plugin import (Table, column_for, id_text, key_cell, read_table, stratified_split,
                               text_cell)
from tunehub.plugin import DataError


@dataclass
class Faq:
    """The FAQ entries, in file order."""

    ids: list[str]
    questions: list[str]
    answers: list[str]
    metadata: list[dict[str, Any]] = field(default_factory=list)
    source: str = ""

    def __len__(self) -> int:
        return len(self.ids)

    def position(self) -> dict[str, int]:
        return {entry: i for i, entry in enumerate(self.ids)}

    def records(self) -> list[dict[str, Any]]:
        return [{"id": i, "question": q, "answer": a, **m}
                for i, q, a, m in zip(self.ids, self.questions, self.answers, self.metadata)]

    @classmethod
    def from_records(cls, records: list[dict[str, Any]], source: str = "") -> "Faq":
        core = ("id", "question", "answer")
        return cls([str(r["id"]) for r in records], [str(r["question"]) for r in records],
                   [str(r["answer"]) for r in records],
                   [{k: v for k, v in r.items() if k not in core} for r in records], source)


@dataclass
class Queries:
    """Questions people asked; ``faq_ids[i]`` is "" when out of scope."""

    texts: list[str] = field(default_factory=list)
    faq_ids: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.texts)

    def pick(self, indices: list[int]) -> "Queries":
        return Queries([self.texts[i] for i in indices], [self.faq_ids[i] for i in indices])

    def __add__(self, other: "Queries") -> "Queries":
        return Queries(self.texts + other.texts, self.faq_ids + other.faq_ids)

    @property
    def out_of_scope(self) -> int:
        return sum(1 for f in self.faq_ids if not f)


@dataclass
class QASplits:
    """Training queries, and held-out ones (never trained on) for calibrating the threshold."""

    train: Queries
    calibration: Queries

    def in_scope_share(self) -> float | None:
        """The share of in-scope queries among all training queries (training and
        calibration): the traffic mix the hand-off is calibrated for. None with no queries."""
        total = len(self.train) + len(self.calibration)
        if not total:
            return None
        return sum(bool(f) for q in (self.train, self.calibration) for f in q.faq_ids) / total


def readable(name: str) -> str:
    """An id made readable: 'card_arrival' -> 'card arrival'."""
    return re.sub(r"\s+", " ", re.sub(r"[_\-]+", " ", name)).strip()


def read_faq(path: Path, columns: Mapping[str, str]) -> Faq:
    table = read_table(path)
    id_col = column_for(table, "id", columns)
    q_col = column_for(table, "question", columns)
    a_col = column_for(table, "answer", columns)
    ids, questions, answers, metadata, first_row = [], [], [], [], {}
    for i, row in enumerate(table.rows):
        entry = key_cell(table, i, id_col)
        if entry in first_row:
            raise DataError(f"{table.where(i)}: duplicate FAQ id '{entry}' (first at row "
                            f"{table.row_numbers[first_row[entry]]}). Give every entry its own id.")
        first_row[entry] = i
        question = text_cell(table, i, q_col)
        if not str(row.get(a_col) or "").strip():
            raise DataError(f"{table.where(i)}: empty '{a_col}' for FAQ id '{entry}'. Write the "
                            "answer, or delete the entry.")
        ids.append(entry)
        questions.append(question)
        answers.append(str(row[a_col]).strip())
        metadata.append({k: v for k, v in row.items() if k not in (id_col, q_col, a_col)})
    return Faq(ids, questions, answers, metadata, str(path))


def read_queries(path: Path, columns: Mapping[str, str], known: set[str] | None) -> tuple[Table, Queries]:
    """Query rows; with ``known`` (an FAQ's ids) an unknown ``faq_id`` is an error."""
    table = read_table(path)
    q_col = column_for(table, "query", columns)
    f_col = column_for(table, "faq_id", columns)
    queries = Queries()
    for i, row in enumerate(table.rows):
        text = text_cell(table, i, q_col)
        entry = id_text(row.get(f_col))  # 0 is an id; only empty means out of scope
        if known is not None and entry and entry not in known:
            sample = ", ".join(sorted(known)[:5])
            raise DataError(
                f"{table.where(i)}: faq_id '{entry}' is not an id in the FAQ file "
                f"(ids look like: {sample}, ...). Fix the id, add the entry to the FAQ, or leave "
                "faq_id empty for an out-of-scope question."
            )
        queries.texts.append(text)
        queries.faq_ids.append(entry)
    return table, queries


def intent_faq(*sets: Queries, source: str) -> Faq:
    """One FAQ entry per distinct faq_id (sorted); question and answer are its readable name."""
    ids = sorted({f for queries in sets for f in queries.faq_ids if f})
    names = [readable(i) for i in ids]
    return Faq(ids, names, list(names), [{} for _ in ids], source)


def load(config: Mapping[str, Any], files: Mapping[str, Path]) -> tuple[Faq, QASplits, Queries, dict]:
    """(faq, training splits, evaluation queries, summary) for a run or an evaluation."""
    ds = config["dataset"]
    columns = ds["columns"]
    faq_path = Path(ds["faq"]).expanduser() if ds["faq"] else files.get("faq")
    faq = read_faq(Path(faq_path), columns) if faq_path else None
    known = set(faq.ids) if faq else None
    train = evaluation = None
    if "train" in files:
        _, train = read_queries(files["train"], columns, known)
    if "eval" in files:
        _, evaluation = read_queries(files["eval"], columns, known)
    if train is None and evaluation is None:
        raise DataError("no query file: pass --data QUERIES (query,faq_id) or --eval-data.")
    if faq is None:
        faq = intent_faq(*(q for q in (train, evaluation) if q is not None),
                         source="intent style: one entry per faq_id")
    summary: dict[str, Any] = {"FAQ": f"{len(faq)} entries ({faq.source})"}
    if train is None:  # evaluation only
        summary["eval queries"] = _describe(evaluation)
        return faq, QASplits(Queries(), Queries()), evaluation, summary
    seed = ds["split_seed"]
    if evaluation is None:
        labels = [f or "<out of scope>" for f in train.faq_ids]
        keep, held = stratified_split(labels, ds["eval_fraction"], seed)
        train, evaluation = train.pick(keep), train.pick(held)
        summary["eval source"] = (f"stratified {ds['eval_fraction']:.0%} of "
                                  f"{files['train'].name} (seed {seed})")
    splits = calibration_split(train, ds["validation_fraction"], seed)
    if len({f for f in splits.train.faq_ids}) < 2:
        raise DataError(f"{files['train']}: training queries cover fewer than two FAQ entries; "
                        "contrastive training needs at least two. Add queries with faq_id set.")
    summary.update({"train queries": _describe(splits.train),
                    "calibration queries (held out of training)": _describe(splits.calibration),
                    "eval queries": _describe(evaluation)})
    return faq, splits, evaluation, summary


def calibration_split(queries: Queries, fraction: float, seed: int) -> QASplits:
    """In-scope queries split per entry (entries with 2+ queries give some); out-of-scope
    ones all go to calibration, since nothing can be trained on them."""
    in_scope = [i for i, f in enumerate(queries.faq_ids) if f]
    oos = [i for i, f in enumerate(queries.faq_ids) if not f]
    held: list[int] = []
    if fraction > 0 and len(in_scope) >= 10:
        try:
            keep_pos, held_pos = stratified_split([queries.faq_ids[i] for i in in_scope], fraction, seed)
            in_scope, held = [in_scope[p] for p in keep_pos], [in_scope[p] for p in held_pos]
        except DataError:
            held = []
    return QASplits(queries.pick(in_scope), queries.pick(held + oos))


def cap_per_entry(queries: Queries, cap: int, seed: int) -> Queries:
    """At most ``cap`` queries per FAQ entry (seeded sample); ``cap <= 0`` keeps all."""
    if cap <= 0:
        return queries
    by_entry: dict[str, list[int]] = {}
    for i, entry in enumerate(queries.faq_ids):
        by_entry.setdefault(entry, []).append(i)
    rng, keep = random.Random(seed), []
    for entry in sorted(by_entry):
        rows = by_entry[entry]
        keep += rows if len(rows) <= cap else rng.sample(rows, cap)
    return queries.pick(sorted(keep))


def check_known(queries: Queries, faq: Faq, where: str) -> None:
    unknown = sorted({f for f in queries.faq_ids if f} - set(faq.ids))
    if unknown:
        raise DataError(f"{where}: faq_id(s) {', '.join(unknown[:5])} are not entries of the "
                        f"model's FAQ ({len(faq)} entries). Use ids the model was trained with.")


def _describe(queries: Queries) -> str:
    entries = Counter(f for f in queries.faq_ids if f)
    return (f"{len(queries)} ({len(queries) - queries.out_of_scope} in scope over "
            f"{len(entries)} entries, {queries.out_of_scope} out of scope)")
