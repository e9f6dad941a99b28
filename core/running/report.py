"""The run report: report.md with metrics beside baselines, data summary, per-class table,
a confusion-matrix plot and a loss curve (PNG, drawn with matplotlib's Agg backend)."""
from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable, Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from .data import CJK_CHARACTERS
from .progress import readable


def _table(header: list[str], rows: list[list[Any]]) -> list[str]:
    fmt = lambda v: f"{v:.4f}" if isinstance(v, float) else readable(v)  # noqa: E731
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join(fmt(v) for v in row) + " |" for row in rows]


def metrics_rows(result) -> tuple[list[str], list[list[Any]]]:
    """Metric names down, model and each baseline across."""
    header = ["metric", "model", *result.baselines]
    rows = [[name, value, *(b.get(name, "") for b in result.baselines.values())]
            for name, value in result.metrics.items()]
    return header, rows


def render(folder: Path, result, title: str, intro: str, data_lines: list[str],
           data: Any, notes_title: str) -> list[str]:
    """The report both a run and an evaluation write: title, metrics beside baselines,
    data, warnings, notes and every detail metric (plots written into ``folder``)."""
    lines = [f"# {result.task}: {title}", "", intro, "", "## Metrics", ""]
    lines += _table(*metrics_rows(result))
    below = result.below_baseline_line()
    if below:
        lines += ["", f"**Below baseline:** {below}"]
    lines += ["", "## Data", ""] + data_lines
    if data is not None and data.warnings:
        lines += ["", "## Warnings", ""] + [f"- **{text}**" for text in data.warnings]
    lines += ["", f"## {notes_title}", ""] + note_lines(result.notes)
    return lines + detail_sections(result.details, folder)


def note_lines(notes: Mapping[str, Any]) -> list[str]:
    """A run's notes in Markdown: one ``- key: value`` line each (a mapping as ``key: value``
    text), then each table-shaped note (rows of records) as a table under its name."""
    shown = {key: value for key, value in notes.items() if value is not None}
    lines = [f"- {key}: {readable(value)}" for key, value in shown.items() if not is_records(value)]
    for key, value in shown.items():
        if is_records(value):
            lines += ["", f"**{key}**", ""] + _table(*as_table(value))
    return lines


def is_records(value: Any) -> bool:
    """Rows of records (a mapping of mappings, or a list of mappings): a table, not a line."""
    rows = list(value.values()) if isinstance(value, Mapping) else value
    return (isinstance(value, (Mapping, list)) and bool(value)
            and all(isinstance(row, Mapping) for row in rows))


def write_report(folder: Path, result, data, log_history: list[dict[str, Any]],
                 manifest: Mapping[str, Any]) -> None:
    intro = (f"Base model `{manifest['base_model']}`, created {manifest['created']}, "
             f"primary metric **{result.primary_metric}**.")
    data_lines = [f"- {key}: {readable(value)}" for key, value in data.summary.items()]
    data_lines += [f"- data hash: `{manifest['data_hash']}`"]
    lines = render(folder, result, "run report", intro, data_lines, data, "Training")
    if _plot_loss(log_history, folder / "loss_curve.png"):
        lines += ["", "## Loss", "", "![loss curve](loss_curve.png)"]
    (folder / "report.md").write_text("\n".join(lines) + "\n")


def detail_sections(details: Mapping[str, Any], folder: Path) -> list[str]:
    """Report lines for every non-scalar metric, whatever its name: a confusion matrix
    (``{"labels", "matrix"}``) as a plot written into ``folder``; a mapping of mappings
    (per-label or per-type reports) or a list of records as a table; a flat mapping as a
    two-column table; anything else as JSON."""
    lines: list[str] = []
    for name, value in details.items():
        title = name.replace("_", " ").capitalize()
        if _is_matrix(value):
            picture = folder / f"{name}.png"
            lines += ["", f"## {title}", ""]
            lines += _table(["true \\ predicted", *value["labels"]],
                            [[label, *row] for label, row in zip(value["labels"], value["matrix"])])
            if _plot_confusion(value, picture):
                lines += ["", f"![{name.replace('_', ' ')}]({picture.name})"]
            continue
        header, rows = as_table(value)
        lines += ["", f"## {title}", ""]
        if header:
            lines += _table(header, rows)
        else:
            lines += ["```json", json.dumps(value, indent=2, default=str), "```"]
    return lines


def _is_matrix(value: Any) -> bool:
    return isinstance(value, Mapping) and set(value) >= {"labels", "matrix"}


def as_table(value: Any) -> tuple[list[str], list[list[Any]]]:
    """(header, rows) for a detail metric, or ([], []) when it is not table-shaped."""
    if isinstance(value, Mapping) and value and all(isinstance(v, Mapping) for v in value.values()):
        columns = list(dict.fromkeys(k for v in value.values() for k in v))
        return ["", *columns], [[key, *(row.get(c, "") for c in columns)] for key, row in value.items()]
    if isinstance(value, list) and value and all(isinstance(v, Mapping) for v in value):
        columns = list(dict.fromkeys(k for v in value for k in v))
        return columns, [[row.get(c, "") for c in columns] for row in value]
    if isinstance(value, Mapping) and value and not any(isinstance(v, (Mapping, list)) for v in value.values()):
        return ["", "value"], [[k, v] for k, v in value.items()]
    return [], []


# Fonts with Chinese (and Japanese) glyphs, in order of preference; the first one installed
# backs up matplotlib's default font, glyph by glyph. TUNEHUB_CJK_FONT names a font file
# to use instead.
CJK_FONTS = ("Noto Sans CJK SC", "Noto Sans SC", "Source Han Sans SC", "Source Han Sans CN",
             "WenQuanYi Micro Hei", "WenQuanYi Zen Hei", "Droid Sans Fallback", "AR PL UMing CN",
             "Microsoft YaHei", "PingFang SC", "Hiragino Sans GB", "SimHei", "Noto Sans CJK JP")
CJK = re.compile(f"[{CJK_CHARACTERS}]")
NO_CJK_FONT = ("the plot has Chinese (CJK) text and no installed font has its characters, so "
               "they show as boxes: install one (Debian/Ubuntu: apt install fonts-noto-cjk or "
               "fonts-wqy-microhei) or set TUNEHUB_CJK_FONT to a .ttf/.otf/.ttc file.")


@lru_cache(maxsize=1)
def cjk_font() -> str | None:
    """The family name of the font that draws CJK characters in plots, or None."""
    from matplotlib import font_manager

    path = os.environ.get("TUNEHUB_CJK_FONT", "").strip()
    if path:
        if not Path(path).expanduser().is_file():
            raise ConfigError(f"TUNEHUB_CJK_FONT={path}: no such font file; name a .ttf, .otf "
                              "or .ttc file, or unset it.")
        font_manager.fontManager.addfont(str(Path(path).expanduser()))
        return font_manager.FontProperties(fname=str(Path(path).expanduser())).get_name()
    manager = font_manager.fontManager

    def installed() -> str | None:
        names = {font.name for font in manager.ttflist}
        return next((name for name in CJK_FONTS if name in names), None)

    if installed() is None:  # installed after matplotlib cached its font list: add the new files
        known = {font.fname for font in manager.ttflist}
        for path in font_manager.findSystemFonts():
            if path not in known:
                try:
                    manager.addfont(path)
                except (OSError, RuntimeError, ValueError):
                    continue
    return installed()


def _pyplot(texts: Iterable[str] = ()):
    """pyplot on the Agg backend, with a CJK font behind the default one when installed;
    one warning when ``texts`` (what the plot will show) need one and none is."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    font = cjk_font()
    if font:
        plt.rcParams["font.family"] = ["DejaVu Sans", font]  # glyph by glyph
    elif any(CJK.search(str(t)) for t in texts):
        from .progress import warn

        warn(NO_CJK_FONT)
    return plt


def _plot_confusion(matrix: Mapping[str, Any], path: Path) -> bool:
    labels, counts = matrix["labels"], matrix["matrix"]
    plt = _pyplot(labels)
    size = max(3.5, 0.6 * len(labels) + 2)
    fig, ax = plt.subplots(figsize=(size, size))
    ax.imshow(counts, cmap="Blues")
    ax.set_xticks(range(len(labels)), labels, rotation=45, ha="right")
    ax.set_yticks(range(len(labels)), labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    peak = max((max(row) for row in counts), default=0)
    for i, row in enumerate(counts):
        for j, value in enumerate(row):
            ax.text(j, i, str(value), ha="center", va="center",
                    color="white" if value > peak / 2 else "black")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return True


def _plot_loss(log_history: list[dict[str, Any]], path: Path) -> bool:
    train = [(e["step"], e["loss"]) for e in log_history if "loss" in e and "step" in e]
    evals = [(e["step"], e["eval_loss"]) for e in log_history if "eval_loss" in e]
    if not train and not evals:
        return False
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 3.5))
    for points, label in ((train, "train loss"), (evals, "validation loss")):
        if points:
            ax.plot(*zip(*points), marker="o" if len(points) < 20 else None, label=label)
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return True
