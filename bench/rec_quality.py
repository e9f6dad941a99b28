"""Quality of `recommendation-scoring` with default settings on MovieLens (latest-small).

    nice -n 10 python bench/rec_quality.py [--set key=value ...]

Runs exactly what the acceptance command runs::

    app run-task recommendation-scoring --data ratings.csv --set dataset.items=movies.csv \\
        --set dataset.columns.user=userId --set dataset.columns.item=movieId \\
        --set dataset.columns.rating=rating --set dataset.columns.timestamp=timestamp \\
        --set dataset.item_text=title,genres

and prints full-ranking leave-last-out NDCG@10 and HR@10 (plus AUC, the sampled protocol
and cold start) of the default model beside most-popular, ItemKNN and the untuned text
model, the target (NDCG@10 at least 20% above most-popular) and the wall time.
Skips when ../shared/data is absent.
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time

from _common import data_dir

TARGET_LIFT = 0.20  # relative NDCG@10 gain over most-popular
SHOWN = ("ndcg@10", "hr@10", "auc", "ndcg@10_sampled", "hr@10_sampled", "cold_start_hr@10")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    args = parser.parse_args()
    folder = data_dir("movielens_latest_small")
    os.environ.setdefault("TUNEHUB_HOME", tempfile.mkdtemp(prefix="tunehub-bench-"))
    import tunehub

    overrides = [f"dataset.items={folder / 'movies.csv'}", "dataset.columns.user=userId",
                 "dataset.columns.item=movieId", "dataset.columns.rating=rating",
                 "dataset.columns.timestamp=timestamp", "dataset.item_text=title,genres",
                 *args.overrides]
    started = time.perf_counter()
    result = tunehub.run_task("recommendation-scoring", data=folder / "ratings.csv",
                              overrides=overrides)
    minutes = (time.perf_counter() - started) / 60
    rows = {"model": result.metrics, **result.baselines}
    print(f"{'':14s}" + "".join(f"{name:>18s}" for name in SHOWN))
    for name, values in rows.items():
        print(f"{name:14s}" + "".join(f"{values.get(m, float('nan')):18.4f}" for m in SHOWN))
    pop = result.baselines["popularity"]["ndcg@10"]
    lift = result.metrics["ndcg@10"] / pop - 1 if pop else float("inf")
    verdict = "meets" if lift >= TARGET_LIFT else "below"
    print(f"ndcg@10 lift over most-popular: {lift:+.1%} (target >= +{TARGET_LIFT:.0%}: {verdict}); "
          f"wall time {minutes:.1f} min; load average {os.getloadavg()[0]:.1f} on "
          f"{os.cpu_count()} CPUs; overrides {args.overrides or 'none'}")
    for key, value in result.notes.items():
        print(f"  {key}: {value}")


if __name__ == "__main__":
    main()
