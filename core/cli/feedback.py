"""`app feedback list|export TASK`: feedback the server stored (SQLite under TUNEHUB_HOME)."""
from __future__ import annotations

import json
import sys
from typing import Any

import click

from .output import emit_json, stdout_console, table

since_option = click.option(
    "--since", help="Only feedback stored since this ISO 8601 time, or this long ago (7d, 12h).")


def _rows(task: str, since: str | None, limit: int | None = None) -> list[dict[str, Any]]:
    from ..operations.feedback import list_feedback, parse_since

    return list_feedback(task, parse_since(since), limit)


def _value(row: dict[str, Any]) -> Any:
    return row[row["kind"]]


def _short(value: Any, width: int = 60) -> str:
    text = value if isinstance(value, str) else json.dumps(value)
    return text if len(text) <= width else text[:width - 1] + "…"


@click.group("feedback")
def feedback() -> None:
    """Feedback sent to `app serve` (POST /v1/feedback).

    \b
    app feedback list financial-sentiment --since 7d
    app feedback export financial-sentiment --output feedback.csv
    """


@feedback.command("list")
@click.argument("task")
@since_option
@click.option("--limit", default=50, show_default=True, help="The newest N items (0: all).")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array to stdout.")
def list_command(task: str, since: str | None, limit: int, as_json: bool) -> None:
    """The newest feedback of TASK, oldest first."""
    rows = _rows(task, since, limit or None)
    if as_json:
        emit_json(rows)
        return
    predicted = lambda r: (r["predicted"] or {}).get("label", "")  # noqa: E731
    stdout_console().print(table(
        f"feedback on {task} ({len(rows)})",
        ["id", "time", "model", "input", r"right \[kind]", "predicted"],
        [[r["id"], r["created"][:19], r["model"] or "", _short(r["input"]),
          f"{_short(_value(r), 30)} [{r['kind']}]", predicted(r)] for r in rows]))


@feedback.command("export")
@click.argument("task")
@since_option
@click.option("--output", type=click.Path(dir_okay=False),
              help="Write to this .csv or .jsonl file (default: CSV on stdout).")
@click.option("--json", "as_json", is_flag=True, help="JSON lines on stdout.")
def export(task: str, since: str | None, output: str | None, as_json: bool) -> None:
    """All feedback of TASK as training rows: input (text), the right answer, model, time.

    A CSV export of a classification task has the columns text,label and loads with
    `app run-task TASK --data FILE`.
    """
    import csv
    from pathlib import Path

    rows = _rows(task, since)
    records = [{"text" if isinstance(r["input"], str) else "input": r["input"], r["kind"]: _value(r),
                "model": r["model"], "created": r["created"], "prediction_id": r["prediction_id"],
                "feedback_id": r["id"]} for r in rows]
    jsonl = as_json or (output or "").endswith((".jsonl", ".json"))
    handle = open(Path(output).expanduser(), "w", newline="", encoding="utf-8") if output else sys.stdout
    try:
        if jsonl:
            for record in records:
                handle.write(json.dumps(record, ensure_ascii=False) + "\n")
        else:
            keys = list(dict.fromkeys(k for record in records for k in record))
            writer = csv.DictWriter(handle, fieldnames=keys or ["text", "label"])
            writer.writeheader()
            for record in records:
                writer.writerow({k: spreadsheet_safe(v if isinstance(v, (str, int, float)) or v is None
                                                     else json.dumps(v)) for k, v in record.items()})
    finally:
        if output:
            handle.close()
    if output:
        click.echo(f"{len(records)} feedback rows -> {output}", err=True)


FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_safe(value):
    """A CSV cell a spreadsheet shows as text: one starting with ``= + - @`` (or a tab or
    carriage return) gets a leading ``'``, so it is never run as a formula (OWASP's advice
    on CSV injection)."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


COMMANDS = [feedback]
