"""What a run or an evaluation produced, and scoring evaluation outputs with metrics."""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any


@dataclass
class RunResult:
    """What a run (or an evaluation) produced; the CLI prints it, `--json` dumps it."""

    task: str
    artifact: str | None
    primary_metric: str
    metrics: dict[str, float]
    baselines: dict[str, dict[str, float]] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)
    notes: dict[str, Any] = field(default_factory=dict)
    version: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"task": self.task, "artifact": self.artifact, "version": self.version,
                "primary_metric": self.primary_metric, "metrics": self.metrics,
                "baselines": self.baselines, "details": self.details, "notes": self.notes}


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
