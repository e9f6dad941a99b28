"""The monitoring report: ``report.md`` with a trend chart (``trend.png``) of the
busiest entities' negative share, alerts marked, beside ``windows.csv`` (every
(entity, window) aggregate, written as the windows closed)."""
from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import Any

TOP_ENTITIES = 5


def write_report(folder: Path, result: Any, task: str, source: str) -> Path:
    from ..running.report import _table

    folder = Path(folder).expanduser()
    c, s = result.counts, result.settings
    lines = [f"# {task}: monitoring report", "",
             f"Written {datetime.now(timezone.utc).isoformat(timespec='seconds')} from "
             f"`{source}` with {result.model}.", "",
             f"Windows of {s['window']} per entity; rule `{s['rule']}` ({s['method']}, threshold "
             f"{s['threshold']}, minimum rise {s['min_increase']}, at least {s['min_volume']} rows "
             f"against {s['min_baseline_volume']} in the last {s['baseline_windows']} windows).", "",
             "## Stream", ""]
    lines += _table(["rows read", "scored", "malformed", "out of order (kept)", "late (dropped)",
                     "entities", "windows", "alerts", "sink errors"],
                    [[c.rows, c.scored, c.malformed, c.out_of_order, c.late, len(result.entities),
                      c.windows, c.alerts, c.sink_errors]])
    if c.problems:
        lines += ["", "First malformed rows:", ""] + [f"- {p}" for p in c.problems]
    chart = folder / "trend.png"
    if _plot(result, chart):
        lines += ["", "## Trend", "", f"![negative share of the top entities]({chart.name})"]
    lines += ["", f"## Alerts ({c.alerts})", ""]
    if result.alerts:
        rows = [[a["entity"], a["window_start"], a["window_end"], a["volume"],
                 a["negative_share"], a["baseline_share"], a["score"],
                 (a["examples"][0][:80] if a["examples"] else "")] for a in result.alerts]
        lines += _table(["entity", "window start", "window end", "volume", "negative share",
                         "baseline", "score", "most negative example"], rows)
        if c.alerts > len(result.alerts):
            lines += ["", f"(the last {len(result.alerts)} alerts; all went to the sinks)"]
    else:
        lines += ["None."]
    lines += ["", "Every (entity, window) aggregate: `windows.csv`."]
    path = folder / "report.md"
    partial = folder / ".report.md.partial"
    partial.write_text("\n".join(lines) + "\n")
    partial.replace(path)  # complete or absent
    return path


def _plot(result: Any, path: Path) -> bool:
    """Negative share over time of the entities with the most rows; alerts as red marks."""
    from ..running.report import _pyplot

    top = [entity for entity, _ in result.entities.most_common(TOP_ENTITIES)]
    if not top:
        return False
    plt = _pyplot(top)
    fig, ax = plt.subplots(figsize=(9, 4.5))
    for entity in top:
        points = list(result.series[entity])
        times = [datetime.fromtimestamp(p[0], timezone.utc) for p in points]
        line, = ax.plot(times, [p[1] for p in points], marker=".", label=entity)
        flagged = [(t, p[1]) for t, p in zip(times, points) if p[3]]
        if flagged:
            ax.scatter(*zip(*flagged), s=90, marker="X", color="red", zorder=3)
    ax.set_ylabel("negative share")
    ax.set_ylim(0, 1)
    ax.set_title("Negative share per window (red X: alert)")
    ax.legend(loc="upper left", fontsize="small")
    fig.autofmt_xdate()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return True
