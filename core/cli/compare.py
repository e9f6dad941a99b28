"""`app models compare TASK@vA TASK@vB --data FILE`: is B better than A, or only different?"""
from __future__ import annotations

from typing import Any

import click

from .output import catalog_from, emit_json, stdout_console, table


def _task_of(ref_a: str, ref_b: str) -> str:
    from ..errors import ConfigError

    task_a, task_b = ref_a.partition("@")[0], ref_b.partition("@")[0]
    if "@" not in ref_a or "@" not in ref_b or task_a != task_b:
        raise ConfigError(f"compare two versions of one task: TASK@vA TASK@vB (got {ref_a} "
                          f"and {ref_b}).")
    return task_a


@click.command("compare")
@click.argument("ref_a")
@click.argument("ref_b")
@click.option("--data", type=click.Path(dir_okay=False),
              help="Labelled data to score both on (default: B's own evaluation data).")
@click.option("--changed", default=10, show_default=True, type=click.IntRange(0, None),
              help="How many inputs whose answer changed to list.")
@click.option("--bootstrap", "rounds", default=1000, show_default=True,
              type=click.IntRange(1, 1_000_000),
              help="Paired bootstrap resamples for the 95% intervals (1 to 1,000,000).")
@click.option("--seed", default=0, show_default=True, type=click.IntRange(0, 2**32 - 1),
              help="Seed of the resampling.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON to stdout.")
@click.pass_context
def compare(ctx: click.Context, ref_a: str, ref_b: str, data: str | None, changed: int,
            rounds: int, seed: int, as_json: bool) -> None:
    """Score versions A and B of a task on the same data: metrics side by side, a paired
    bootstrap 95% interval of each difference B - A, McNemar's test for classification,
    and the first inputs whose answer changed."""
    from ..running.compare import compare_versions

    task = _task_of(ref_a, ref_b)
    result = compare_versions(task, ref_a, ref_b, data=data, catalog=catalog_from(ctx),
                              rounds=rounds, seed=seed, changed=changed)
    if as_json:
        emit_json(result)
    else:
        print_comparison(result)


def print_comparison(result: dict[str, Any]) -> None:
    console = stdout_console()
    a, b = result["a"], result["b"]
    rows = [[name, m["a"], m["b"], f"{m['difference']:+.4f}",
             f"[{m['ci95'][0]:+.4f}, {m['ci95'][1]:+.4f}]", m["verdict"]]
            for name, m in result["metrics"].items()]
    console.print(table(f"{a} (A) vs {b} (B) on {result['examples']} examples",
                        ["metric", "A", "B", "B - A", "95% interval", "verdict"], rows))
    console.print(f"rows: {result['fairness']}", markup=False, highlight=False)
    test = result.get("mcnemar")
    if test:
        console.print(f"McNemar: {test['only_a_right']} right only with A, {test['only_b_right']} "
                      f"only with B, p = {test['p_value']:.4g} ({test['method']})")
    console.print(f"{result['changed']} answers changed"
                  + (f"; the first {len(result['changed_examples'])}:" if result["changed"] else "."))
    if result["changed_examples"]:
        console.print(table(None, ["#", "input", "A", "B", "truth"],
                            [[e["index"], _short(e["input"]), e["a"], e["b"], _short(e["truth"])]
                             for e in result["changed_examples"]]))


def _short(value: Any, width: int = 70) -> str:
    text = "" if value is None else str(value)
    return text if len(text) <= width else text[:width - 1] + "…"


MODELS_COMMANDS = [compare]
