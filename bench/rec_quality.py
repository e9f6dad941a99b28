"""Quality of `recommendation-scoring` with default settings on MovieLens (latest-small).

    nice -n 10 python bench/rec_quality.py [--set key=value ...]

Runs exactly what the acceptance command runs::

    app run-task recommendation-scoring --data ratings.csv --set dataset.items=movies.csv \\
        --set dataset.columns.user=userId --set dataset.columns.item=movieId \\
        --set dataset.columns.rating=rating --set dataset.columns.timestamp=timestamp \\
        --set dataset.item_text=title,genres

and prints full-ranking leave-last-out NDCG@10 and HR@10 (plus AUC, the sampled protocol
and cold start) of the default (fused) model and of its fine-tuned text tower alone beside
every baseline of the run (popularity, ItemKNN, EASE, transitions, the untuned tower), the
targets and the wall time:

  * fused NDCG@10 >= 1.15x the best classic baseline (popularity, ItemKNN, EASE, transitions);
  * fine-tuned tower >= 1.2x the untuned tower on NDCG@10 and on cold-start HR@10;
  * fused cold-start HR@10 >= the untuned tower's, and > 0.

Skips when ../shared/data is absent.
"""
from __future__ import annotations

import argparse
import os
import resource
import tempfile
import time

from _common import data_dir

FUSED_LIFT, TOWER_LIFT = 1.15, 1.2
CLASSIC = ("popularity", "itemknn", "ease", "transitions")
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
    tower = result.notes.get("fine-tuned text tower alone (test)") or {}
    rows = {"model (fused)": result.metrics, "fine-tuned tower": tower, **result.baselines}
    print(f"{'':17s}" + "".join(f"{name:>17s}" for name in SHOWN))
    for name, values in rows.items():
        print(f"{name:17s}" + "".join(f"{values.get(m, float('nan')):17.4f}" for m in SHOWN))
    print("\n".join(targets(result.metrics, tower, result.baselines)))
    usage = resource.getrusage(resource.RUSAGE_SELF)
    print(f"wall time {minutes:.1f} min; CPU time {(usage.ru_utime + usage.ru_stime) / 60:.1f} min "
          f"(on an idle machine the wall time is about the CPU time divided by the threads "
          f"used); load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs; "
          f"torch threads {torch_threads()}; overrides {args.overrides or 'none'}")
    for key, value in result.notes.items():
        print(f"  {key}: {value}")


def torch_threads() -> int:
    import torch

    return torch.get_num_threads()


def targets(fused: dict, tower: dict, baselines: dict) -> list[str]:
    """One line per target: the measured ratio and whether it is met."""
    def line(what: str, value: float, reference: float, factor: float) -> str:
        ratio = value / reference if reference else float("inf")
        verdict = "meets" if ratio >= factor else "below"
        return f"{what}: {value:.4f} vs {reference:.4f} = {ratio:.2f}x (target >= {factor}x: {verdict})"

    best = max((n for n in CLASSIC if n in baselines), key=lambda n: baselines[n]["ndcg@10"])
    untuned = baselines.get("untuned", {})
    out = [line(f"fused ndcg@10 over the best baseline ({best})", fused["ndcg@10"],
                baselines[best]["ndcg@10"], FUSED_LIFT)]
    for metric in ("ndcg@10", "cold_start_hr@10"):
        if metric in tower and metric in untuned:
            out.append(line(f"fine-tuned tower {metric} over untuned", tower[metric],
                            untuned[metric], TOWER_LIFT))
    if "cold_start_hr@10" in untuned:
        cold = fused["cold_start_hr@10"]
        met = cold >= untuned["cold_start_hr@10"] and cold > 0
        out.append(f"fused cold_start_hr@10 {cold:.4f} vs untuned {untuned['cold_start_hr@10']:.4f}"
                   f" (target >= and > 0: {'meets' if met else 'below'})")
    return out


if __name__ == "__main__":
    main()
