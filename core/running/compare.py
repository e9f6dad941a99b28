"""Comparing two versions of a task on the same data: is B better than A, or only different?

Both versions are scored through the evaluation path (`runner.load` + the head's
evaluation outputs) on one data set, loaded with B's settings. Every scalar metric of the
task is then recomputed on paired bootstrap resamples (the same resampled examples for A
and B), which gives a 95% interval of the difference B - A. Classification adds McNemar's
test on the examples exactly one version gets right. The evaluation outputs of every head
are per-example lists (``y_true``/``y_pred`` or ``ranked``/``relevant``, plus nested parts
such as a recommender's ``cold_start``), so one resampler serves every task.
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ConfigError


def example_count(outputs: Mapping[str, Any]) -> int:
    for key in ("y_true", "ranked", "relevant"):
        if isinstance(outputs.get(key), (list, tuple)):
            return len(outputs[key])
    raise ConfigError("these evaluation outputs have no per-example lists (y_true or ranked); "
                      "the versions cannot be compared example by example.")


def _parts(outputs: Mapping[str, Any], path: str = "") -> list[tuple[str, int]]:
    """(path, example count) of the top level and of every nested per-example part."""
    found = [(path, example_count(outputs))]
    for key, value in outputs.items():
        if isinstance(value, Mapping) and any(k in value for k in ("y_true", "ranked")):
            found += _parts(value, f"{path}/{key}")
    return found


def resample(outputs: Mapping[str, Any], picks: Mapping[str, np.ndarray], path: str = "") -> dict[str, Any]:
    """``outputs`` with every per-example list of each part re-indexed by ``picks[part]``."""
    n, idx = example_count(outputs), picks[path]
    out: dict[str, Any] = {}
    for key, value in outputs.items():
        if isinstance(value, Mapping) and f"{path}/{key}" in picks:
            out[key] = resample(value, picks, f"{path}/{key}")
        elif key != "labels" and isinstance(value, (list, tuple)) and len(value) == n:
            out[key] = [value[i] for i in idx]
        else:
            out[key] = value
    return out


def paired_bootstrap(catalog: Any, metrics: Sequence[str], a: Mapping[str, Any],
                     b: Mapping[str, Any], rounds: int = 1000, seed: int = 0) -> dict[str, list[float]]:
    """metric -> the differences B - A over ``rounds`` paired resamples."""
    parts = _parts(b)
    if [n for _, n in parts] != [n for _, n in _parts(a)]:
        raise ConfigError("the two versions were scored on different examples; compare them on "
                          "the same --data.")
    rng = np.random.default_rng(seed)
    diffs: dict[str, list[float]] = {m: [] for m in metrics}
    for _ in range(rounds):
        picks = {path: rng.integers(0, n, n) if n else np.zeros(0, int) for path, n in parts}
        ra, rb = resample(a, picks), resample(b, picks)
        for name in metrics:
            fn = catalog.metric(name).fn
            diffs[name].append(float(fn(rb)) - float(fn(ra)))
    return diffs


def mcnemar(correct_a: Sequence[bool], correct_b: Sequence[bool]) -> dict[str, Any]:
    """McNemar's test on paired right/wrong answers (exact binomial below 25 discordant pairs)."""
    only_a = sum(1 for x, y in zip(correct_a, correct_b) if x and not y)
    only_b = sum(1 for x, y in zip(correct_a, correct_b) if y and not x)
    n = only_a + only_b
    if n == 0:
        p, method = 1.0, "no discordant pairs"
    elif n < 25:
        tail = sum(math.comb(n, k) for k in range(min(only_a, only_b) + 1)) / 2 ** n
        p, method = min(1.0, 2 * tail), "exact binomial"
    else:
        chi2 = (abs(only_a - only_b) - 1) ** 2 / n
        p, method = math.erfc(math.sqrt(chi2 / 2)), "chi-square with continuity correction"
    return {"only_a_right": only_a, "only_b_right": only_b, "p_value": round(p, 6), "method": method}


def _inputs(data: Any, head: Any, config: Mapping[str, Any], n: int) -> list[Any] | None:
    found = head.example_inputs(data, config)  # None when the head gives none
    if found is not None and len(found) == n:
        return list(found)
    return None


def _named(values: Sequence[Any], names: Sequence[str] | None) -> list[Any]:
    """Class indices as label names; other answers (a sentence's tags) as they are."""
    whole = lambda v: isinstance(v, (int, np.integer)) and not isinstance(v, bool)  # noqa: E731
    return [names[v] if names and whole(v) else v for v in values]


def _answers(outputs: Mapping[str, Any]) -> list[Any]:
    """Each example's answer as a person reads it: a label name, or the top-ranked id."""
    if "y_pred" in outputs:
        return _named(outputs["y_pred"], outputs.get("labels"))
    return [ranked[0] if len(ranked) else None for ranked in outputs["ranked"]]


def _truths(outputs: Mapping[str, Any]) -> list[Any]:
    if "y_true" in outputs:
        return _named(outputs["y_true"], outputs.get("labels"))
    return [list(r) for r in outputs["relevant"]]


def score_version(task: str, ref: str, files: Mapping[str, Path] | None, catalog: Any,
                  data_config: Mapping[str, Any] | None = None, data: Any = None):
    """(evaluation outputs, data, loaded) of one version on ``files`` (default: its own
    evaluation data); ``data_config`` decides how the data is read (columns, split);
    ``data``: the data already read."""
    from .runner import data_files, load

    loaded = load(task, model=ref, catalog=catalog)
    config = data_config or loaded.config
    if data is None:
        files = files or data_files(config, catalog)
        data = loaded.head.load_data(config, files)
    outputs = loaded.predictor.evaluate(data)  # the evaluation path of `app evaluate`
    return outputs, data, loaded


def compare_versions(task: str, ref_a: str, ref_b: str, *, data: str | Path | None = None,
                     files: Mapping[str, Path] | None = None, catalog: Any = None,
                     rounds: int = 1000, seed: int = 0, changed: int = 10) -> dict[str, Any]:
    """Metrics of A and B side by side, 95% intervals of B - A, McNemar, changed answers.

    Refuses (`ConfigError`) rows either version trained on (see `tunehub.core.artifacts.rows`)."""
    from ..artifacts import rows
    from ..extending.plugins import load_catalog
    from ..artifacts.hub import artifact_for
    from .runner import data_files, load_artifact_config, resolve_config, score

    catalog = catalog or load_catalog()
    art_a, art_b = artifact_for(ref_a), artifact_for(ref_b)
    head = catalog.head_of(catalog.task(task))
    config_b = resolve_config(catalog, catalog.task(task), base=load_artifact_config(art_b))
    if data:
        files = {"eval": Path(data).expanduser()}
    files = files or data_files(config_b, catalog)
    data_b = head.load_data(config_b, files)  # checked before any model loads
    keys = head.row_keys(data_b, config_b)
    fairness = rows.check_fair([(art_a.ref, art_a.path), (art_b.ref, art_b.path)],
                               keys["eval"] if keys else None)
    out_b, _, loaded_b = score_version(task, str(art_b.path), files, catalog, config_b, data_b)
    out_a, _, loaded_a = score_version(task, str(art_a.path), files, catalog, config_b, data_b)
    names = [m for m in config_b["metrics"] if catalog.metric(m).scalar]
    metrics_a, _ = score(catalog, names, out_a)
    metrics_b, _ = score(catalog, names, out_b)
    diffs = paired_bootstrap(catalog, names, out_a, out_b, rounds, seed)
    rows = {}
    for name in names:
        low, high = np.percentile(diffs[name], [2.5, 97.5]) if rounds else (math.nan, math.nan)
        better = catalog.metric(name).higher_is_better
        gain_low, gain_high = (low, high) if better else (-high, -low)  # of the improvement
        verdict = ("B better" if gain_low > 0 else "B worse" if gain_high < 0
                   else "no significant difference")
        rows[name] = {"a": metrics_a[name], "b": metrics_b[name],
                      "difference": round(metrics_b[name] - metrics_a[name], 6),
                      "ci95": [round(float(low), 6), round(float(high), 6)],
                      "higher_is_better": better, "verdict": verdict}
    n = example_count(out_b)
    answers_a, answers_b, truths = _answers(out_a), _answers(out_b), _truths(out_b)
    inputs = _inputs(data_b, loaded_b.head, config_b, n)
    differ = [i for i in range(n) if answers_a[i] != answers_b[i]]
    result: dict[str, Any] = {
        "task": task, "a": loaded_a.artifact.ref, "b": loaded_b.artifact.ref,
        "data": {role: str(path) for role, path in data_b.files.items()},
        "examples": n, "fairness": fairness, "bootstrap": {"rounds": rounds, "seed": seed},
        "primary_metric": config_b["primary_metric"], "metrics": rows,
        "changed": len(differ),
        "changed_examples": [{"index": i, "input": inputs[i] if inputs else None,
                              "a": answers_a[i], "b": answers_b[i], "truth": truths[i]}
                             for i in differ[:changed]]}
    if "y_pred" in out_b:
        right = lambda o: [t == p for t, p in zip(_truths(o), _answers(o))]  # noqa: E731
        result["mcnemar"] = mcnemar(right(out_a), right(out_b))
    return result


def not_worse(comparison: Mapping[str, Any]) -> bool:
    """B is not worse than A beyond the interval on the primary metric."""
    return comparison["metrics"][comparison["primary_metric"]]["verdict"] != "B worse"

