"""Recommendation scoring: the task, its sample data, the two-tower head, metrics, baselines."""
from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from tunehub.plugin import PLUGIN_API_VERSION, hookimpl

TUNEHUB_PLUGIN_API = PLUGIN_API_VERSION
EASE_MAX_ITEMS = 20_000  # collab.EASE_MAX_ITEMS, repeated so listing baselines imports no numpy
DATA = Path(__file__).parent / "data"


def popularity_baseline(data: Any, config: Mapping[str, Any]) -> dict[str, Any]:
    """Rank items by how many training users liked them."""
    import numpy as np

    from . import scoring

    counts = scoring.popularity(data.train)
    fn = lambda users: np.broadcast_to(counts, (len(users), len(counts)))  # noqa: E731
    return scoring.evaluate(fn, data.train, data.eval, int(config["dataset"]["split_seed"]))


def itemknn_baseline(data: Any, config: Mapping[str, Any]) -> dict[str, Any]:
    """Item-item cosine similarity over the sets of users who liked each item."""
    from . import scoring

    return scoring.evaluate(scoring.ItemKNN(data.train), data.train, data.eval,
                            int(config["dataset"]["split_seed"]))


def ease_baseline(data: Any, config: Mapping[str, Any]) -> dict[str, Any]:
    """EASE (closed-form item-item regression), lambda chosen on validation."""
    cached = data.info.get("ease_outputs")
    if cached is not None:
        return cached
    from . import collab, recipe, scoring

    lam = recipe.ease_lambda(data, config)[0]
    return scoring.evaluate(collab.EASE(data.train, lam), data.train, data.eval,
                            int(config["dataset"]["split_seed"]))


def transitions_baseline(data: Any, config: Mapping[str, Any]) -> dict[str, Any]:
    """First-order item transitions from each user's last item."""
    from . import collab, scoring

    return scoring.evaluate(collab.Transitions(data.train), data.train, data.eval,
                            int(config["dataset"]["split_seed"]))


def untuned_baseline(data: Any, config: Mapping[str, Any]) -> dict[str, Any]:
    """The base encoder in the same towers (pooled item vectors), not fine-tuned."""
    cached = data.info.get("untuned_outputs")
    if cached is not None:  # computed during the run, before fine-tuning
        return cached
    from tunehub.plugin import ConfigError, TrainSettings
    from tunehub.plugin.biencoder import load_encoder

    from . import recipe, scoring, towers

    settings = TrainSettings.from_config(config["train"])
    if data.base_model is None:
        raise ConfigError("the untuned baseline scores the base model, which this data does not "
                          "name; run it through `app run-task`.")
    model = load_encoder(data.base_model, settings.max_length)
    vectors = recipe.encode_items(model, data.train, settings.eval_batch_size)
    val = recipe.validation_for(data.train, config)
    pooling, _ = towers.choose_pooling(vectors, val.split, val.warm)
    return scoring.evaluate(towers.TextScorer(vectors, data.train, pooling), data.train,
                            data.eval, int(config["dataset"]["split_seed"]))


@hookimpl
def register_tasks(register) -> None:
    register(Path(__file__).parent / "recommendation-scoring.toml")


@hookimpl
def register_datasets(register) -> None:
    register("recommendation-sample", train=DATA / "interactions.csv", items=DATA / "items.csv",
             description="300 users x 224 items (books, films, ...) written for tunehub; "
                         "5,013 rated interactions, 22 items never interacted with")


@hookimpl
def register_heads(register) -> None:
    from .head import TwoTowerHead

    register(TwoTowerHead())


@hookimpl
def register_metrics(register) -> None:
    from .scoring import register_all

    register_all(register)


@hookimpl
def register_baselines(register) -> None:
    register("popularity", popularity_baseline, description="most popular items first")
    register("itemknn", itemknn_baseline,
             description="item-item co-occurrence (cosine over user sets), summed over history")
    register("ease", ease_baseline,
             description="EASE: closed-form item-item regression, (G + lambda I)^-1, "
                         f"lambda chosen on validation; refused above {EASE_MAX_ITEMS:,} items")
    register("transitions", transitions_baseline,
             description="first-order Markov chain: items that followed the user's last item")
    # `untuned` (the base encoder's text similarity) is the two-tower head's own baseline
