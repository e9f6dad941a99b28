"""Time and peak memory of each recommendation model as users and items grow.

    OMP_NUM_THREADS=1 python bench/rec_scale.py [--scales ml,synthetic] [--methods ...]

Data sets: MovieLens latest-small (610 users, 9,742 items, 100,836 ratings; skipped when
../shared/data is absent) and a synthetic set 10x larger in users and items (6,100 users,
97,420 items, about 1M interactions with Zipf popularity and taste clusters, item text made
of cluster words). The data are loaded once per data set; each method then runs in a
forked child process, so its peak resident memory (ru_maxrss) is the loaded data (the
``data`` row) plus that method alone.
Measured: load = reading and splitting the files; fit = building the model (for
``text-encode`` encoding 200 x ``--steps`` items with the packaged MiniLM, and the
catalogue's time at that rate; for ``adapter-epoch`` one epoch of the item-tower adapter
timed over ``--steps`` steps and scaled to the epoch; both projections say so: ``_est``); score = scoring every test user against the whole catalogue.
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import resource
import tempfile
import time
from pathlib import Path

from _common import SHARED_DATA

METHODS = ("data", "popularity", "itemknn", "transitions", "ease", "text-encode", "adapter-epoch")
SCALE = 10


def synthetic(folder: Path, users: int, items: int, per_user: float, seed: int = 0) -> None:
    """Write interactions.csv and items.csv: Zipf-popular items in 50 taste clusters."""
    import numpy as np

    rng = np.random.default_rng(seed)
    words = [f"w{n}" for n in range(500)]
    cluster = rng.integers(0, 50, size=items)
    weight = 1.0 / np.arange(1, items + 1) ** 0.9
    rng.shuffle(weight)
    with open(folder / "items.csv", "w", newline="") as handle:
        out = csv.writer(handle)
        out.writerow(["item_id", "title", "genres"])
        for i in range(items):
            tags = rng.choice(words[cluster[i] * 10:cluster[i] * 10 + 10], size=3, replace=False)
            out.writerow([f"i{i}", f"Item {i} {' '.join(tags)}", "|".join(tags[:2])])
    members = [np.flatnonzero(cluster == c) for c in range(50)]
    with open(folder / "interactions.csv", "w", newline="") as handle:
        out = csv.writer(handle)
        out.writerow(["user_id", "item_id", "timestamp"])
        for u in range(users):
            n = max(5, int(rng.lognormal(np.log(per_user) - 0.5, 1.0)))
            likes = rng.choice(50, size=3, replace=False)
            pool = np.concatenate([members[c] for c in likes])
            p = weight[pool] / weight[pool].sum()
            picked = rng.choice(pool, size=min(n, len(pool)), replace=False, p=p)
            for t, i in enumerate(picked):
                out.writerow([f"u{u}", f"i{i}", t])


def load(files: dict) -> tuple:
    from tunehub.core.running.runner import prepare

    started = time.perf_counter()
    p = prepare("recommendation-scoring", data=files["interactions"], overrides=[
        f"dataset.items={files['items']}", *files["columns"],
        "baselines=popularity,itemknn,transitions,untuned"])  # `ease` is measured below
    data = p.head.load_data(p.config, p.files)
    split = data.train
    row = {"users": len(split.history), "items": len(split.catalog.ids),
           "interactions": sum(len(h) for h in split.history.values()),
           "load_s": time.perf_counter() - started}
    return p.config, data, row


def run_one(method: str, config: dict, data, steps: int) -> dict[str, float]:
    """Build ``method`` on loaded data and score every test user; seconds and peak MB."""
    import numpy as np

    from tunehub.plugins.recommendation import collab, scoring

    split, users = data.train, [u for u, _ in data.eval.test]
    row: dict = {}
    started = time.perf_counter()
    scorer = None
    if method == "popularity":
        counts = scoring.popularity(split)
        scorer = lambda us: np.broadcast_to(counts, (len(us), len(counts)))  # noqa: E731
    elif method == "itemknn":
        scorer = scoring.ItemKNN(split)
    elif method == "transitions":
        scorer = collab.Transitions(split)
    elif method == "ease":
        try:
            scorer = collab.EASE(split, 75.0)
        except Exception as error:  # noqa: BLE001 - the refusal is the measurement
            row["note"] = str(error).split(";")[0]
    elif method == "text-encode":
        row.update(_encode(split, config, steps * 200))
    elif method == "adapter-epoch":
        row.update(_adapter_epoch(split, steps))
    row["fit_s"] = time.perf_counter() - started
    if scorer is not None:
        started = time.perf_counter()
        for start in range(0, len(users), scoring.CHUNK):
            np.asarray(scorer(users[start:start + scoring.CHUNK]))
        row["score_s"] = time.perf_counter() - started
    row["peak_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return row


def _child(method, config, data, steps, queue) -> None:
    try:
        queue.put(run_one(method, config, data, steps))
    except Exception as error:  # noqa: BLE001 - reported in the table
        queue.put({"error": f"{type(error).__name__}: {error}"})


def _encode(split, config, sample: int) -> dict[str, float]:
    """Items encoded per second on ``sample`` items (all when fewer), and the catalogue's
    projected encoding time at that rate."""
    from tunehub.core.artifacts import hub
    from tunehub.core.models.biencoder import encode, load_encoder
    from tunehub.core.extending.plugins import load_catalog

    model = load_encoder(hub.resolve_model(config["model"], load_catalog().models()),
                         int(config["train"]["max_length"]))
    texts = split.catalog.texts[:sample]
    started = time.perf_counter()
    encode(model, texts, 128)
    rate = len(texts) / (time.perf_counter() - started)
    return {"encoded": len(texts), "items_per_s": rate,
            "catalogue_s_est": len(split.catalog.texts) / rate}


def _adapter_epoch(split, steps: int) -> dict[str, float]:
    import numpy as np
    import torch

    from tunehub.plugins.recommendation import adapter
    from tunehub.plugins.recommendation.towers import Pooling

    rng = np.random.default_rng(0)
    base = rng.normal(size=(len(split.catalog.ids), 384)).astype(np.float32)
    base /= np.linalg.norm(base, axis=1, keepdims=True)
    settings = adapter.AdapterSettings(batch_size=2048)  # the task's default batch
    pooling = Pooling()
    prefixes, targets = (torch.as_tensor(a) for a in adapter.samples(split, pooling.history_len))
    params = adapter.init_params(384, settings.kind, settings.hidden, 0)
    for tensor in params.values():
        tensor.requires_grad_(True)
    optimizer = torch.optim.Adam(params.values(), lr=settings.learning_rate)
    generator = torch.Generator().manual_seed(0)
    total = (len(targets) + settings.batch_size - 1) // settings.batch_size
    started = time.perf_counter()
    for step in range(min(steps, total)):
        batch = torch.randint(len(targets), (settings.batch_size,), generator=generator)
        loss = adapter._step(params, torch.as_tensor(base), prefixes[batch], targets[batch],
                             settings, pooling, generator)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    per_step = (time.perf_counter() - started) / max(min(steps, total), 1)
    return {"samples": len(targets), "step_s": per_step, "epoch_s_est": per_step * total}


def datasets(work: Path) -> dict[str, dict]:
    found = {}
    ml = SHARED_DATA / "movielens_latest_small"
    if ml.is_dir():
        found["ml"] = {"interactions": str(ml / "ratings.csv"), "items": str(ml / "movies.csv"),
                       "columns": ["dataset.columns.user=userId", "dataset.columns.item=movieId",
                                   "dataset.columns.rating=rating",
                                   "dataset.columns.timestamp=timestamp",
                                   "dataset.item_text=title,genres"]}
    else:
        print(f"MovieLens skipped: {ml} not found (set TUNEHUB_BENCH_DATA)")
    folder = work / "synthetic"
    if not (folder / "items.csv").is_file():
        folder.mkdir(parents=True, exist_ok=True)
        synthetic(folder, 610 * SCALE, 9742 * SCALE, 165.0)
    found["synthetic"] = {"interactions": str(folder / "interactions.csv"),
                          "items": str(folder / "items.csv"),
                          "columns": ["dataset.item_text=title,genres"]}
    return found


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--scales", default="ml,synthetic")
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument("--steps", type=int, default=20,
                        help="adapter steps timed per run; 200x this many items encoded")
    parser.add_argument("--work", default=os.path.join(tempfile.gettempdir(), "tunehub-rec-scale"))
    args = parser.parse_args()
    import multiprocessing

    context = multiprocessing.get_context("fork")
    found = datasets(Path(args.work))
    print(f"threads: OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}; "
          f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    for scale in args.scales.split(","):
        if scale not in found:
            continue
        config, data, loaded = load(found[scale])
        for method in args.methods.split(","):
            queue = context.Queue()
            child = context.Process(target=_child, args=(method, config, data, args.steps, queue))
            child.start()
            row = {**loaded, **queue.get()}
            child.join()
            shown = {k: (round(v, 1) if isinstance(v, float) else v) for k, v in row.items()}
            print(f"{scale:10s} {method:14s} {json.dumps(shown)}", flush=True)


if __name__ == "__main__":
    main()
