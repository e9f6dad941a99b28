"""The steps of a two-tower run, shared by training, evaluation, serving and the baselines."""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from tunehub.plugin import ConfigError

from . import collab, fusion, scoring, towers
from .dataset import Split

SIGNALS = ("ease", "transitions", "itemknn")


def check_signals(names: Sequence[str]) -> list[str]:
    names = list(names)
    unknown = [n for n in names if n not in SIGNALS]
    if unknown:
        raise ConfigError(f"head.signals: unknown signal(s) {', '.join(unknown)}; choose from "
                          f"{', '.join(SIGNALS)} (e.g. --set head.signals=ease,transitions).")
    return names


def usable_signals(split: Split, names: Sequence[str]) -> tuple[list[str], str | None]:
    """The signals that fit this data; EASE gives way to ItemKNN above its item limit."""
    names = list(names)
    count = len(collab.warm_items(split))
    if "ease" in names and count > collab.EASE_MAX_ITEMS:
        names = [n for n in names if n != "ease"] + ([] if "itemknn" in names else ["itemknn"])
        return names, (f"EASE skipped: {count:,} items with interactions > "
                       f"{collab.EASE_MAX_ITEMS:,} (items^2 memory); ItemKNN used instead")
    return names, None


BASELINE_PARTS = {"popularity": "pop", "ease": "ease", "itemknn": "itemknn",
                  "transitions": "transitions"}  # baselines that rank as one part of the fusion


def check_never_below(names: Sequence[str]) -> None:
    unknown = [n for n in names if n not in BASELINE_PARTS]
    if unknown:
        raise ConfigError(f"head.never_below: {', '.join(unknown)} cannot be kept up with (not a "
                          f"part of the fused scorer); choose from {', '.join(BASELINE_PARTS)}, "
                          "or none (--set head.never_below=).")


def baseline_parts(split: Split, names: Sequence[str]) -> dict[str, str]:
    """``head.never_below``'s baselines, baseline name -> the part of the fused scorer that
    ranks as it does: the fusion is chosen never to fall below them on validation (EASE only
    within its item limit, as everywhere)."""
    too_big = len(collab.warm_items(split)) > collab.EASE_MAX_ITEMS
    return {name: BASELINE_PARTS[name] for name in names if not (name == "ease" and too_big)}


def collaborative(split: Split, names: Sequence[str], ease_lambda: float,
                  fitted: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Scorers of the named collaborative signals, fitted on ``split`` (or taken from
    ``fitted``, models already fitted on that split)."""
    out: dict[str, Any] = {}
    for name in names:
        if fitted and name in fitted:
            out[name] = fitted[name]
        elif name == "ease":
            out[name] = collab.EASE(split, ease_lambda)
        elif name == "transitions":
            out[name] = collab.Transitions(split)
        elif name == "itemknn":
            out[name] = scoring.ItemKNN(split)
    return out


def validation_for(split: Split, config: Mapping[str, Any]) -> fusion.Validation:
    """The validation split every choice of a run is made on (training data only)."""
    ds = config["dataset"]
    return fusion.validation(split, max(float(ds["cold_start_fraction"]), 0.05),
                             int(ds["split_seed"]))


def ease_lambda(data: Any, config: Mapping[str, Any]) -> tuple[float, dict[float, float], Any]:
    """EASE's lambda chosen on validation, its values, and the EASE model fitted on the
    validation split; cached per run (the fused model and the baseline share it)."""
    cached = data.info.get("ease_lambda")
    if cached is None:
        val = validation_for(data.train, config)
        collab.check_ease_size(len(collab.warm_items(val.split)))
        cached = collab.choose_lambda(val.split, val.warm)
        data.info["ease_lambda"] = cached
    return cached


def encode_items(model: Any, split: Split, batch_size: int) -> np.ndarray:
    from tunehub.plugin.biencoder import encode

    return encode(model, split.catalog.texts, batch_size)


def fused(split: Split, vectors: np.ndarray, pooling: towers.Pooling, names: Sequence[str],
          lam: float, choice: fusion.Fusion, fitted: Mapping[str, Any] | None = None
          ) -> fusion.FusedScorer:
    signals = {"text": towers.TextScorer(vectors, split, pooling),
               **collaborative(split, names, lam, fitted)}
    return fusion.FusedScorer(signals, split, vectors, choice)
