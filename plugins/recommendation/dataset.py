"""Recommendation data: an interactions file, an items file, and the leave-last-out split.

Protocol (stated in every run's report):
  * a row is positive when its rating is >= ``dataset.min_rating`` (every row when the file
    has no rating column);
  * a seeded share of the items (``dataset.cold_start_fraction``) is held out entirely: all
    their rows leave the training data, and each user's latest positive on one of them is
    a cold-start case;
  * of the rest, each user's latest positive (by timestamp; a seeded random order when the
    file has no timestamps) is the held-out test item; the user's rows after it are dropped
    too, so neither the test item nor anything later is in training or in the history used
    for scoring. Users with a single positive stay in training only.
"""
from __future__ import annotations

import math
import random
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from tunehub.plugin import Table, column_for, id_text, read_table
from tunehub.plugin import DataError
from tunehub.plugin import TaskData


@dataclass
class Items:
    """The items: ids, display titles and the text the item tower reads."""

    ids: list[str]
    titles: list[str]
    texts: list[str]

    def __post_init__(self) -> None:
        self.index = {item: i for i, item in enumerate(self.ids)}


@dataclass
class Split:
    """Training interactions: per user, positive item indices in time order, and all seen."""

    catalog: Items
    history: dict[str, list[int]]
    seen: dict[str, set[int]]

    def without_last(self, min_history: int = 2) -> tuple["Split", list[tuple[str, int]]]:
        """Hold out each user's latest training positive (a validation split, no test data)."""
        history, seen, cases = {}, {}, []
        for user, items in self.history.items():
            if len(items) >= min_history:
                history[user], last = items[:-1], items[-1]
                seen[user] = self.seen[user] - {last}
                cases.append((user, last))
            else:
                history[user], seen[user] = list(items), set(self.seen[user])
        return Split(self.catalog, history, seen), cases


@dataclass
class Cases:
    """Evaluation cases: (user, held-out item index)."""

    test: list[tuple[str, int]]
    cold: list[tuple[str, int]] = field(default_factory=list)


@dataclass
class Row:
    user: str
    item: str
    rating: float | None
    time: float
    order: int  # file order, the last tie-breaker


def _number(table: Table, index: int, column: str, what: str) -> float:
    value = table.rows[index].get(column)
    text = "" if value is None else str(value).strip()
    try:
        number = float(text)
    except ValueError:
        number = None
    if number is not None:
        if math.isfinite(number):
            return number
        raise DataError(f"{table.where(index)}: {what} '{text}' in column '{column}' is not a "
                        "finite number. Fix the row or delete it.")
    if what == "timestamp":
        try:
            return datetime.fromisoformat(text).timestamp()
        except ValueError:
            pass
    raise DataError(
        f"{table.where(index)}: {what} '{text}' in column '{column}' is not a number"
        f"{' or an ISO date' if what == 'timestamp' else ''}. Fix the row or delete it."
    )


def _optional_column(table: Table, role: str, columns: Mapping[str, str]) -> str | None:
    name = columns.get(role, role)
    return name if name in table.columns else None


def read_interactions(path: Path, columns: Mapping[str, str]) -> tuple[list[Row], dict[str, Any]]:
    table = read_table(path)
    user_col = column_for(table, "user", columns)
    item_col = column_for(table, "item", columns)
    rating_col = _optional_column(table, "rating", columns)
    time_col = _optional_column(table, "timestamp", columns)
    rows = []
    for i, record in enumerate(table.rows):
        user, item = (id_text(record.get(c)) for c in (user_col, item_col))
        if not user or not item:
            missing = user_col if not user else item_col
            raise DataError(f"{table.where(i)}: empty '{missing}'. Fill it in or delete the row.")
        rating = _number(table, i, rating_col, "rating") if rating_col else None
        time = _number(table, i, time_col, "timestamp") if time_col else 0.0
        rows.append(Row(user, item, rating, time, i))
    info = {"ratings": rating_col, "timestamps": time_col}
    return rows, info


def read_items(path: Path, columns: Mapping[str, str], text_columns: list[str]) -> Items:
    table = read_table(path)
    key = columns.get("item_key") or (
        columns.get("item") if columns.get("item") in table.columns else "item_id")
    if key not in table.columns:
        raise DataError(
            f"{path}: no item id column '{key}'. The file has columns: "
            f"{', '.join(table.columns)}. Map it with --set dataset.columns.item_key=<column>."
        )
    if not text_columns:
        raise DataError("dataset.item_text is empty: name the items file's text columns, "
                        "e.g. --set dataset.item_text=title,genres.")
    for name in text_columns:
        if name not in table.columns:
            raise DataError(
                f"{path}: no text column '{name}' (from dataset.item_text). The file has "
                f"columns: {', '.join(table.columns)}. Fix it with --set dataset.item_text=..."
            )
    title_col = columns.get("title", "title") if columns.get("title", "title") in table.columns \
        else text_columns[0]
    ids, titles, texts, where = [], [], [], {}
    for i, record in enumerate(table.rows):
        item = id_text(record.get(key))
        if not item:
            raise DataError(f"{table.where(i)}: empty item id '{key}'. Fill it in or delete the row.")
        if item in where:
            raise DataError(f"{table.where(i)}: item '{item}' is listed twice (first at row "
                            f"{where[item]}). Keep one row per item.")
        where[item] = table.row_numbers[i]
        parts = [str(record.get(c) or "").strip().replace("|", ", ") for c in text_columns]
        ids.append(item)
        titles.append(str(record.get(title_col) or "").strip() or item)
        texts.append(". ".join(p for p in parts if p) or item)
    return Items(ids, titles, texts)


def load(config: Mapping[str, Any], files: Mapping[str, Path]) -> TaskData:
    """Validate both files and build the split; no model is loaded."""
    ds = config["dataset"]
    source = files.get("train") or files.get("eval")
    items_path = Path(ds["items"]).expanduser() if ds["items"] else files.get("items")
    if source is None:
        raise DataError("no interactions file: pass --data FILE (user, item[, rating, timestamp]).")
    if items_path is None:
        raise DataError(f"{source}: no items file. Pass --set dataset.items=FILE "
                        "(item id plus text columns such as title, genres).")
    catalog = read_items(items_path, ds["columns"], list(ds["item_text"]))
    rows, found = read_interactions(source, ds["columns"])
    if ds["min_rating"] > 0 and not found["ratings"]:
        raise DataError(f"{source}: dataset.min_rating is {ds['min_rating']} but the file has no "
                        f"rating column '{ds['columns'].get('rating', 'rating')}'. Map it with "
                        "--set dataset.columns.rating=<column> or set dataset.min_rating=0.")
    known = [r for r in rows if r.item in catalog.index]
    unknown_items = {r.item for r in rows} - set(catalog.index)
    if not known:
        raise DataError(f"{source}: none of its item ids are in the items file {items_path} "
                        f"(e.g. '{rows[0].item}'). Check the files and dataset.columns.item.")
    split, cases, summary = split_rows(known, catalog, ds, found)
    summary = {"interactions file": str(source), "items file": str(items_path),
               "rows": len(rows),
               "rows dropped (item not in the items file)": len(rows) - len(known),
               "unknown item ids": len(unknown_items), **summary}
    role_files = {"train": Path(source), "items": Path(items_path)}
    return TaskData(split, cases, role_files, summary,
                    {"serving": serving_history(known, catalog, ds["min_rating"])})


def _ordered(rows: list[Row], seed: int, timestamps: bool) -> dict[str, list[Row]]:
    """Rows per user, oldest first; one row per (user, item): the latest."""
    by_user: dict[str, dict[str, Row]] = defaultdict(dict)
    rng = random.Random(seed)
    keys = {r.order: (r.time, r.order) if timestamps else (rng.random(), r.order) for r in rows}
    for r in sorted(rows, key=lambda r: keys[r.order]):
        by_user[r.user].pop(r.item, None)
        by_user[r.user][r.item] = r
    return {u: list(items.values()) for u, items in by_user.items()}


def _positive(row: Row, min_rating: float) -> bool:
    return row.rating is None or row.rating >= min_rating


def split_rows(rows: list[Row], catalog: Items, ds: Mapping[str, Any], found: Mapping[str, Any]):
    """(training Split, test/cold Cases, summary) by the protocol in the module docstring."""
    seed, min_rating = int(ds["split_seed"]), float(ds["min_rating"])
    per_user = _ordered(rows, seed, bool(found["timestamps"]))
    engaged = sorted({catalog.index[r.item] for r in rows if _positive(r, min_rating)})
    n_cold = int(round(len(engaged) * float(ds["cold_start_fraction"])))
    cold_items = set(random.Random(seed).sample(engaged, n_cold)) if n_cold else set()
    history, seen, test, cold = {}, {}, [], []
    for user in sorted(per_user):
        user_rows = [(catalog.index[r.item], r) for r in per_user[user]]
        cold_pos = [i for i, r in user_rows if i in cold_items and _positive(r, min_rating)]
        kept = [(i, r) for i, r in user_rows if i not in cold_items]
        positives = [n for n, (_, r) in enumerate(kept) if _positive(r, min_rating)]
        if len(positives) >= 2:
            last = positives[-1]
            test.append((user, kept[last][0]))
            kept = kept[:last]  # the test item and anything after it leave training
        history[user] = [i for i, r in kept if _positive(r, min_rating)]
        seen[user] = {i for i, _ in kept}
        if cold_pos and history[user]:
            cold.append((user, cold_pos[-1]))
    order = "timestamp" if found["timestamps"] else f"random order (seed {seed}; no timestamp column)"
    summary = {
        "users": len(per_user), "items in catalogue": len(catalog.ids),
        "positive": f"rating >= {min_rating:g}" if found["ratings"] and min_rating > 0
        else "every interaction",
        "split": f"leave-last-out per user by {order}; test users: {len(test)}",
        "training positives": sum(len(h) for h in history.values()),
        "cold-start items": f"{len(cold_items)} held out entirely (seed {seed}), "
                            f"{len(cold)} cold-start cases",
    }
    if not test:
        raise DataError("no user has two or more positive interactions, so nothing can be held "
                        "out for evaluation. Add data or lower dataset.min_rating.")
    return Split(catalog, history, seen), Cases(test, cold), summary


def serving_history(rows: list[Row], catalog: Items, min_rating: float) -> dict[str, Any]:
    """Every user's full history (all rows, nothing held out) for predictions."""
    per_user = _ordered(rows, 0, True)
    return {user: {"positives": [r.item for r in rs if _positive(r, min_rating)],
                   "seen": [r.item for r in rs]} for user, rs in per_user.items()}
