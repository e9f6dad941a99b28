"""What a run or an evaluation produced, and scoring evaluation outputs with metrics."""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any


@dataclass
class RunResult:
    """What a run (or an evaluation) produced; the CLI prints it, `--json` dumps it.

    ``higher_is_better`` is the primary metric's direction, which `below_baseline` reads."""

    task: str
    artifact: str | None
    primary_metric: str
    metrics: dict[str, float]
    baselines: dict[str, dict[str, float]] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)
    notes: dict[str, Any] = field(default_factory=dict)
    version: str | None = None
    higher_is_better: bool = True

    @property
    def below_baseline(self) -> list[dict[str, Any]]:
        """Every baseline that beats the model on the primary metric, best first:
        ``{"baseline", "metric", "model", "baseline_value", "difference"}`` (model minus
        baseline); empty when the model is at least as good as each one."""
        metric, model = self.primary_metric, self.metrics.get(self.primary_metric)
        if model is None:
            return []
        sign = 1.0 if self.higher_is_better else -1.0
        beaten = [(name, values[metric]) for name, values in self.baselines.items()
                  if isinstance(values.get(metric), (int, float))
                  and sign * (values[metric] - model) > 0]
        beaten.sort(key=lambda found: -sign * found[1])
        return [{"baseline": name, "metric": metric, "model": model, "baseline_value": value,
                 "difference": round(model - value, 6)} for name, value in beaten]

    def below_baseline_line(self) -> str | None:
        """The one line a run prints and its report holds when a baseline beats the model,
        e.g. ``ndcg@10 0.3530 for the model, 0.4120 for ease (-0.0590), ...``; else None."""
        beaten = self.below_baseline
        if not beaten:
            return None
        direction = "" if self.higher_is_better else " (lower is better)"
        others = ", ".join(f"{b['baseline_value']:.4f} for {b['baseline']} ({b['difference']:+.4f})"
                           for b in beaten)
        return f"{self.primary_metric}{direction} {beaten[0]['model']:.4f} for the model, {others}"

    def to_json(self) -> dict[str, Any]:
        return {"task": self.task, "artifact": self.artifact, "version": self.version,
                "primary_metric": self.primary_metric, "metrics": self.metrics,
                "baselines": self.baselines, "below_baseline": self.below_baseline,
                "details": self.details, "notes": self.notes}


def warn_below_baseline(result: RunResult) -> None:
    """The stderr warning of a model below a baseline on its primary metric (if it is)."""
    from .progress import warn

    line = result.below_baseline_line()
    if line:
        warn(f"below baseline: {line}")


def score(catalog: Any, names: Sequence[str], outputs: Mapping[str, Any]):
    """(scalar metrics, detail tables) for one set of evaluation outputs."""
    scalars, details = {}, {}
    for name in names:
        metric = catalog.metric(name)
        value = metric.fn(outputs)
        if metric.scalar:
            scalars[name] = round(float(value), 6)
        else:
            details[name] = value
    return scalars, details
