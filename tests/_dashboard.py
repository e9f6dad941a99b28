"""Shared by the dashboard tests: versions in the test's home, a fast stand-in classifier
served with the real classification head, and a news stream with a planted surge."""
from __future__ import annotations

import json
import random
import shutil
from datetime import datetime, timedelta, timezone
from pathlib import Path

from tunehub.core.artifacts import hub

TASK = "financial-sentiment"
KEY = "k" * 20
DAY0 = datetime(2024, 3, 1, tzinfo=timezone.utc)
BAD, CALM = "Shares fell after the profit warning.", "The company will publish its report in May."


def copy_versions(shared: str, count: int = 2) -> list[hub.Artifact]:
    """``count`` versions of ``TASK`` in this test's TUNEHUB_HOME, copies of the shared tiny one."""
    made = []
    for number in range(1, count + 1):
        target = hub.artifacts_root() / TASK / f"v{number}"
        shutil.copytree(shared, target)
        made.append(hub.Artifact(TASK, f"v{number}", target))
    return made


class Classifier:
    """Stands in for a loaded financial-sentiment version (no torch): the catalog's own
    head and settings, and a keyword rule whose neutral answers are unsure."""

    labels = ["negative", "neutral", "positive"]
    streams = False

    def __init__(self, artifact: hub.Artifact) -> None:
        from tunehub.core.extending.plugins import load_catalog
        from tunehub.core.running.runner import load_artifact_config, resolve_config

        catalog = load_catalog()
        spec = catalog.task(TASK)
        self.task, self.artifact, self.head = TASK, artifact, catalog.head_of(spec)
        self.config = resolve_config(catalog, spec, base=load_artifact_config(artifact))
        self.predictor = self

    def predict(self, texts):
        outputs = []
        for text in texts:
            if "fell" in text or "跌" in text:
                label, scores = "negative", {"negative": 0.9, "neutral": 0.08, "positive": 0.02}
            elif "rose" in text:
                label, scores = "positive", {"negative": 0.05, "neutral": 0.15, "positive": 0.8}
            else:
                label, scores = "neutral", {"negative": 0.3, "neutral": 0.45, "positive": 0.25}
            outputs.append({"label": label, "probabilities": scores})
        return outputs


def news(path: Path, days: int = 10, surges=(("BETA", 7),), per_day: int = 24,
         seed: int = 5) -> Path:
    """A JSON-lines feed for three tickers, about 10% negative, with planted entity-days
    (``surges``: (ticker, day) pairs) at 75%."""
    rng = random.Random(seed)
    rows = []
    for day in range(days):
        for ticker in ("ALFA", "BETA", "GAMA"):
            share = 0.75 if (ticker, day) in surges else 0.1
            for i in range(per_day):
                moment = DAY0 + timedelta(days=day, minutes=rng.randrange(24 * 60))
                rows.append({"time": moment.isoformat(), "entity": ticker,
                             "text": f"{BAD if rng.random() < share else CALM} #{i}"})
    rows.sort(key=lambda r: r["time"])
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def monitor(path: Path, **stream) -> None:
    """`app monitor` (its code, with the stand-in classifier) over a planted feed."""
    from tunehub.core.operations.monitor_run import run_monitor

    feed = news(path / "news.jsonl", **stream)
    run_monitor(TASK, str(feed), sinks=[f"file:{path / 'alerts.jsonl'}"],
                loaded=Classifier(hub.find_artifact(f"{TASK}@latest")))


def surge_start(day: int) -> float:
    return (DAY0 + timedelta(days=day)).timestamp()
