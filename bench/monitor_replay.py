"""Alert quality and throughput of `app monitor` on a replayed news stream.

    python bench/monitor_replay.py [--model TASK@vN|FOLDER] [--train] [--seed 0]

The stream is built from Financial PhraseBank sentences the model never trained on
(allagree_test.csv): 20 entities over 60 days, about 25 sentences per entity and day drawn
with the corpus's label mix, and 12 planted surges (one entity, one day, 55% negative
sentences). An alert is a true positive when its (entity, day) is a planted surge.
Three classifiers feed the same monitor: the label oracle (the sentences' own labels:
the rule's ceiling), the fine-tuned model (--model, or --train to fine-tune one on
allagree_train.csv first) and the finance-lexicon baseline. Prints precision, recall and
rows/s for each. Skips when ../shared/data is absent.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

from _common import data_dir, read_column

ENTITIES, DAYS, PER_DAY, SURGES, SURGE_SHARE = 20, 60, 25, 12, 0.55
DAY0 = datetime(2024, 1, 1, tzinfo=timezone.utc)


def build_stream(texts: list[str], labels: list[str], seed: int, path: Path):
    rng = random.Random(seed)
    pools = {name: [t for t, lab in zip(texts, labels) if lab == name] for name in set(labels)}
    mix = {name: len(pool) / len(texts) for name, pool in pools.items()}
    entities = [f"ENT{i:02d}" for i in range(ENTITIES)]
    planted = set()
    while len(planted) < SURGES:
        planted.add((rng.choice(entities), rng.randrange(10, DAYS)))  # after a baseline
    rows = []
    for day in range(DAYS):
        for entity in entities:
            volume = max(1, int(rng.gauss(PER_DAY, 5)))
            for _ in range(volume):
                if (entity, day) in planted and rng.random() < SURGE_SHARE:
                    label = "negative"
                else:
                    label = rng.choices(list(mix), weights=list(mix.values()))[0]
                moment = DAY0 + timedelta(days=day, seconds=rng.randrange(86400))
                rows.append((moment, entity, rng.choice(pools[label]), label))
    rows.sort(key=lambda r: r[0])
    with open(path, "w", encoding="utf-8") as handle:
        for moment, entity, text, _ in rows:
            handle.write(json.dumps({"published_at": moment.isoformat(), "ticker": entity,
                                     "headline": text}) + "\n")
    truth = {text: label for _, _, text, label in rows}
    return planted, truth, len(rows)


class TableModel:
    """A 'model' that answers from a lookup (the oracle) or a function (the lexicon)."""

    def __init__(self, name: str, answer) -> None:
        self.answer, self.predictor = answer, self
        self.labels = ["negative", "neutral", "positive"]
        self.artifact = type("A", (), {"ref": name})()

    def predict(self, texts):
        return [{"label": (label := self.answer(t)),
                 "probabilities": {n: float(n == label) for n in self.labels}} for t in texts]


def score(name: str, stream: Path, planted: set, rows: int, loaded=None, model=None) -> None:
    from tunehub.core.operations.monitor_run import run_monitor

    alerts = stream.with_name(f"alerts-{name}.jsonl")
    started = time.perf_counter()
    result = run_monitor("financial-sentiment", str(stream), model=model, loaded=loaded,
                         sinks=[f"file:{alerts}"],
                         overrides=["monitor.columns.time=published_at",
                                    "monitor.columns.entity=ticker",
                                    "monitor.columns.text=headline"])
    seconds = time.perf_counter() - started
    found = [json.loads(line) for line in alerts.read_text().splitlines()]
    fired = {(a["entity"], (datetime.fromisoformat(a["window_start"].replace("Z", "+00:00"))
                            - DAY0).days) for a in found}
    hits = len(fired & planted)
    precision = hits / len(fired) if fired else 0.0
    print(f"{name:16s} alerts {len(fired):3d}  precision {precision:.3f}  recall "
          f"{hits / len(planted):.3f}  {rows / seconds:9.1f} rows/s  ({result.model})")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", help="a fine-tuned financial-sentiment version or folder")
    parser.add_argument("--train", action="store_true",
                        help="fine-tune on allagree_train.csv first (defaults)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    folder = data_dir("financial_phrasebank")
    os.environ.setdefault("TUNEHUB_HOME", tempfile.mkdtemp(prefix="tunehub-bench-"))
    test = folder / "allagree_test.csv"
    texts, labels = read_column(test, "text"), read_column(test, "label")
    stream = Path(tempfile.mkdtemp(prefix="tunehub-monitor-")) / "stream.jsonl"
    planted, truth, rows = build_stream(texts, labels, args.seed, stream)
    print(f"stream: {rows} rows, {ENTITIES} entities x {DAYS} days, {len(planted)} planted "
          f"surges ({SURGE_SHARE:.0%} negative); threads {os.environ.get('OMP_NUM_THREADS', 'all')}")
    from tunehub.plugins.financial_sentiment import lexicon_label

    score("label oracle", stream, planted, rows, loaded=TableModel("oracle", truth.get))
    score("finance-lexicon", stream, planted, rows, loaded=TableModel("lexicon", lexicon_label))
    model = args.model
    if args.train and not model:
        import tunehub

        result = tunehub.run_task("financial-sentiment", data=folder / "allagree_train.csv",
                                  eval_data=test)
        model = result.artifact
        print(f"fine-tuned {result.version}: accuracy {result.metrics['accuracy']:.4f}")
    if model:
        score("fine-tuned", stream, planted, rows, model=model)


if __name__ == "__main__":
    main()
