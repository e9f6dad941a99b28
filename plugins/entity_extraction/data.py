"""Reading entity data: token/tag sentences or raw text with character spans.

Three layouts, chosen by extension and columns:

- CoNLL column files (``.conll``, ``.iob``): one token per line, the token in the first
  column and its tag in the last, a blank line between sentences, ``-DOCSTART-`` ignored.
- Tables (JSONL, CSV, TSV, Parquet) with ``tokens`` and ``tags`` columns: lists, or in
  CSV a JSON list or space-separated string.
- Tables with ``text`` and ``spans``: ``[{"start": 0, "end": 5, "label": "PER"}, ...]``
  character offsets into the text (``end`` exclusive); in CSV a JSON string.

Tags are converted to IOB2 (``dataset.tag_scheme``: auto, iob2, iob1 or bioes). Every
problem is one `DataError` naming the file, the row or line, and the fix.
"""
from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tunehub.plugin import DataError, Table, read_table

from .tags import SCHEMES, TagError, detect_scheme, spans, tags_from_spans, to_iob2

COLUMN_FILES = (".conll", ".iob")
# Scripts written without spaces between words (Chinese characters, Japanese kana): each
# character is a word of its own, so entity offsets fall on character boundaries.
UNSPACED = ("\u2e80-\u2fdf\u3005-\u3007\u3021-\u3029\u3040-\u30ff\u3100-\u312f"
            "\u31a0-\u31ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0003134f")
_SPACED = f"(?:(?![{UNSPACED}])\\w)"
# One unspaced character, a number with inner separators ("4.5", "1,200"), a (hyphenated)
# word, or one symbol.
WORD = re.compile(f"[{UNSPACED}]|\\d+(?:[.,]\\d+)+|{_SPACED}+(?:[-']{_SPACED}+)*|[^\\w\\s]")


@dataclass
class Sentences:
    """Tokenised sentences with IOB2 tags; ``texts`` and ``offsets`` locate tokens in the
    original strings (tokens joined by spaces when the data came as tokens)."""

    tokens: list[list[str]] = field(default_factory=list)
    tags: list[list[str]] = field(default_factory=list)
    texts: list[str] = field(default_factory=list)
    offsets: list[list[tuple[int, int]]] = field(default_factory=list)
    where: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.tokens)

    def add(self, tokens: list[str], tags: list[str], where: str, text: str | None = None,
            offsets: list[tuple[int, int]] | None = None) -> None:
        if text is None:
            text, offsets = join_tokens(tokens)
        self.tokens.append(tokens)
        self.tags.append(tags)
        self.texts.append(text)
        self.offsets.append(list(offsets or []))
        self.where.append(where)

    def subset(self, indices: Sequence[int]) -> Sentences:
        pick = lambda values: [values[i] for i in indices]  # noqa: E731
        return Sentences(pick(self.tokens), pick(self.tags), pick(self.texts),
                         pick(self.offsets), pick(self.where))

    def entity_counts(self) -> dict[str, int]:
        return dict(sorted(Counter(k for tags in self.tags for *_, k in spans(tags)).items()))


def join_tokens(tokens: Sequence[str]) -> tuple[str, list[tuple[int, int]]]:
    """Tokens joined by single spaces, and each token's (start, end) in that text."""
    offsets, position = [], 0
    for token in tokens:
        offsets.append((position, position + len(token)))
        position += len(token) + 1
    return " ".join(tokens), offsets


def words(text: str, cuts: Sequence[int] = ()) -> list[tuple[int, int]]:
    """(start, end) of each word of ``text``, also split at the character positions ``cuts``
    (entity edges), so that every entity covers whole words."""
    points = sorted(set(cuts))
    out = []
    for match in WORD.finditer(text):
        start = match.start()
        for cut in points:
            if match.start() < cut < match.end():
                out.append((start, cut))
                start = cut
        out.append((start, match.end()))
    return out


# -- one file -----------------------------------------------------------------------------
def read_file(path: Path, columns: Mapping[str, str], scheme: str, types: Sequence[str]) -> Sentences:
    """Sentences of one file, tags in IOB2, types checked against ``types`` (when given)."""
    if scheme not in SCHEMES:
        raise DataError(f"dataset.tag_scheme must be one of {', '.join(SCHEMES)}, got '{scheme}'.")
    if path.suffix.lower() in COLUMN_FILES:
        raw = _read_columns(path)
    else:
        raw = _read_table(read_table(path), columns)
    if scheme == "auto":
        scheme = detect_scheme([t for _, tags, *_ in raw for t in tags])
    out = Sentences()
    for tokens, tags, where, located, locate in raw:
        try:
            iob2 = to_iob2(tags, scheme)
        except TagError as exc:
            hint = (" If the file is IOB1, read it with --set dataset.tag_scheme=iob1."
                    if "follows" in str(exc) else "")
            raise DataError(f"{locate(exc.index)}: {exc}.{hint}") from None
        _check_types(iob2, types, locate)
        text, offsets = located or (None, None)
        out.add(tokens, iob2, where, text, offsets)
    if not len(out):
        raise DataError(f"{path}: no sentences found. Check the file layout (docs: entity extraction).")
    return out


def _check_types(tags: Sequence[str], types: Sequence[str], locate) -> None:
    if not types:
        return
    for index, tag in enumerate(tags):
        if tag != "O" and tag[2:] not in types:
            raise DataError(
                f"{locate(index)}: unknown entity type '{tag[2:]}'. Expected one of "
                f"{', '.join(types)}; fix the tag or add the type to dataset.labels.")


def _read_columns(path: Path) -> list:
    """CoNLL columns: token first, tag last, blank lines between sentences."""
    try:
        lines = path.read_text(encoding="utf-8-sig").splitlines()
    except FileNotFoundError:
        raise DataError(f"{path}: no such file. Check the path given to --data/--eval-data.") from None
    except UnicodeDecodeError:
        raise DataError(f"{path}: not valid UTF-8. Save the file as UTF-8.") from None
    raw, tokens, tags, first = [], [], [], 0
    for number, line in enumerate([*lines, ""], start=1):
        fields = line.split()
        if fields and fields[0] != "-DOCSTART-":
            if len(fields) < 2:
                raise DataError(f"{path}, line {number}: one column ('{line.strip()}'); write "
                                "the token first and its tag last, separated by a space or tab.")
            first = first or number
            tokens.append(fields[0])
            tags.append(fields[-1])
            continue
        if tokens:
            start = first
            raw.append((tokens, tags, f"{path}, line {start}", None,
                        lambda i, s=start, t=tokens: f"{path}, line {s + max(i, 0)} ('{t[max(i, 0)]}')"))
        tokens, tags, first = [], [], 0
    return raw


def _cell_list(table: Table, index: int, column: str) -> list[str]:
    value = table.rows[index].get(column)
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            try:
                value = json.loads(text)
            except json.JSONDecodeError:
                raise DataError(f"{table.where(index)}: '{column}' is not a valid JSON list.") from None
        else:
            value = text.split()
    if not isinstance(value, (list, tuple)) or not value:
        raise DataError(f"{table.where(index)}: '{column}' must be a non-empty list of strings "
                        f"(got {str(value)[:40]!r}).")
    odd = next((i for i, v in enumerate(value) if not isinstance(v, str) or not v), None)
    if odd is not None:
        raise DataError(f"{table.where(index)}: '{column}' item {odd + 1} is "
                        f"{'empty' if value[odd] == '' else repr(value[odd])}, not a word or tag; "
                        "every item must be a non-empty string.")
    return list(value)


def _read_table(table: Table, columns: Mapping[str, str]) -> list:
    names = {role: columns.get(role, role) for role in ("tokens", "tags", "text", "spans")}
    if names["tokens"] in table.columns:
        if names["tags"] not in table.columns:
            raise DataError(f"{table.path}: a '{names['tokens']}' column but no '{names['tags']}' "
                            f"column. Add the tags, or map it with --set dataset.columns.tags=<column>.")
        return [_token_row(table, i, names) for i in range(len(table))]
    if names["text"] in table.columns and names["spans"] in table.columns:
        return [_span_row(table, i, names) for i in range(len(table))]
    raise DataError(
        f"{table.path}: needs columns '{names['tokens']}' + '{names['tags']}' or "
        f"'{names['text']}' + '{names['spans']}'; it has {', '.join(table.columns)}. Map them "
        "with --set dataset.columns.tokens=<column> (likewise tags, text, spans).")


def _token_row(table: Table, index: int, names: Mapping[str, str]):
    tokens = _cell_list(table, index, names["tokens"])
    tags = _cell_list(table, index, names["tags"])
    if len(tokens) != len(tags):
        raise DataError(f"{table.where(index)}: {len(tokens)} tokens but {len(tags)} tags. "
                        "Give every token exactly one tag.")
    where = table.where(index)
    return tokens, tags, where, None, lambda i: f"{where}, token {max(i, 0) + 1} ('{tokens[max(i, 0)]}')"


def _span_row(table: Table, index: int, names: Mapping[str, str]):
    row, where = table.rows[index], table.where(index)
    text = row.get(names["text"])
    if not isinstance(text, str) or not text.strip():
        raise DataError(f"{where}: empty '{names['text']}'. Fill it in or delete the row.")
    tokens, tags, offsets = from_spans(text, row.get(names["spans"]), where, names["spans"])
    return tokens, tags, where, (text, offsets), lambda i: where


def from_spans(text: str, value: Any, where: str, column: str = "entities"):
    """(tokens, IOB2 tags, token offsets) of ``text`` with the character spans ``value``
    (a list of {start, end, label}); `DataError` naming ``where`` for a bad span."""
    entities = _spans_cell(value, text, where, column)
    offsets = words(text, [edge for start, end, _ in entities for edge in (start, end)])
    starts = {start: i for i, (start, _) in enumerate(offsets)}
    ends = {end: i + 1 for i, (_, end) in enumerate(offsets)}
    token_spans = []
    for start, end, kind in entities:
        if start not in starts or end not in ends:
            raise DataError(f"{where}: span {start}-{end} ({text[start:end]!r}) does not start "
                            "and end on a word. Move its edges to word boundaries.")
        token_spans.append((starts[start], ends[end], kind))
    tokens = [text[s:e] for s, e in offsets]
    return tokens, tags_from_spans(len(tokens), token_spans), offsets


def _spans_cell(value: Any, text: str, where: str, column: str) -> list[tuple[int, int, str]]:
    """Validated (start, end, label) spans, sorted; edges trimmed of white space."""
    if isinstance(value, str):
        try:
            value = json.loads(value) if value.strip() else []
        except json.JSONDecodeError:
            raise DataError(f"{where}: '{column}' is not valid JSON; write a list such as "
                            '[{"start": 0, "end": 5, "label": "PER"}].') from None
    if value is None:
        value = []
    if not isinstance(value, list):
        raise DataError(f"{where}: '{column}' must be a list of {{start, end, label}} objects.")
    out = []
    for span in value:
        whole = lambda v: isinstance(v, int) and not isinstance(v, bool)  # noqa: E731 - true is no offset
        if not (isinstance(span, dict) and whole(span.get("start")) and whole(span.get("end"))
                and isinstance(span.get("label"), str)):
            raise DataError(f"{where}: span {span!r} needs integer 'start', 'end' and a "
                            "string 'label'.")
        start, end, label = span["start"], span["end"], span["label"]
        if not 0 <= start < end <= len(text):
            raise DataError(f"{where}: span {start}-{end} ({label}) is outside the text "
                            f"(0-{len(text)}). Offsets count characters, end exclusive.")
        while start < end and text[start].isspace():
            start += 1
        while end > start and text[end - 1].isspace():
            end -= 1
        if start == end:
            raise DataError(f"{where}: span ({label}) covers only white space; remove it.")
        out.append((start, end, label))
    out.sort()
    for (s1, e1, l1), (s2, e2, l2) in zip(out, out[1:]):
        if s2 < e1:
            raise DataError(f"{where}: spans {s1}-{e1} ({l1}) and {s2}-{e2} ({l2}) overlap. "
                            "Entities must not overlap; keep one.")
    return out
