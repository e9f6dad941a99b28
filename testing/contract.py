"""The task contract: the checks every registered task passes, with a tiny model.

Each ``check_*`` raises ``AssertionError`` (or the ``TunehubError`` a loader raised) with
a message naming the task and the fix. ``check_task`` runs them all in order: the task
file, its data, its head, its metrics and baselines, a one-step training run with
predict, a second run with the same seed (same metrics), and ``--quantize int8`` (changes
the model or is refused).
"""
from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# Small enough that a training run takes seconds on a CPU with the tiny model.
CONTRACT_OVERRIDES = {
    "train.epochs": "1", "train.max_steps": "2", "train.batch_size": "8",
    "train.eval_batch_size": "16", "train.max_length": "32", "train.save_checkpoints": "false",
}
HEAD_METHODS = ("load_data", "fit")  # and predict or load (see tunehub.core.extending.heads)


def _fail(task: str, message: str) -> AssertionError:
    return AssertionError(f"task '{task}': {message}")


def _sizes(head: Any, data: Any, config: Mapping[str, Any]) -> dict[str, int | None]:
    """Rows of the training and evaluation sets, where the head says: its ``row_keys``,
    else ``len()`` of the sets; None where it cannot tell."""
    keys = head.row_keys(data, config)
    if keys is not None:
        return {part: len(keys[part]) for part in ("train", "eval")}
    sizes: dict[str, int | None] = {}
    for part, examples in (("train", data.train), ("eval", data.eval)):
        try:
            sizes[part] = len(examples)
        except TypeError:
            sizes[part] = None
    return sizes


def check_task_file(task: str, catalog: Any) -> dict[str, Any]:
    """The task is registered, its file resolves against the schema, names resolve."""
    from tunehub.core.running.runner import resolve_config

    spec = catalog.task(task)
    config = resolve_config(catalog, spec)  # raises ConfigError naming key and fix
    if not spec.description:
        raise _fail(task, f"{spec.source}: add a one-line 'description'.")
    if not config["metrics"]:
        raise _fail(task, f"{spec.source}: list at least one metric in 'metrics'.")
    if not config["primary_metric"]:
        raise _fail(task, f"{spec.source}: needs a scalar metric for 'primary_metric'.")
    return config


def check_data(task: str, catalog: Any, config: Mapping[str, Any]):
    """The task's sample data set exists and loads through its head's validation."""
    from tunehub.core.running.runner import data_files

    if not config["dataset"]["name"]:
        raise _fail(task, "set dataset.name to a registered sample data set "
                          "(hook register_datasets), so the default run works offline.")
    files = data_files(config, catalog)
    for role, path in files.items():
        if not Path(path).is_file():
            raise _fail(task, f"data set '{config['dataset']['name']}' file '{role}' "
                              f"({path}) does not exist; ship it as package data.")
    head = catalog.head_of(catalog.task(task))
    data = head.load_data(config, files)
    for part, size in _sizes(head, data, config).items():
        if size == 0:
            raise _fail(task, f"the sample data has no {part} rows after loading.")
    if not isinstance(data.files, Mapping) or not data.files:
        raise _fail(task, "load_data must return TaskData.files (role -> file) for the manifest.")
    return data


def check_head(task: str, catalog: Any, model: str | Path) -> Any:
    """The plugin's own head object follows the Head protocol (not the core's wrapper,
    which fills in defaults), and the tiny model resolves as a base model."""
    from tunehub.core.artifacts import hub

    registered = catalog.head_of(catalog.task(task))
    head = registered.impl
    for attr in ("name", "description"):
        if not isinstance(getattr(head, attr, None), str) or not getattr(head, attr):
            raise _fail(task, f"head {head!r} needs a non-empty string '{attr}'.")
    if not isinstance(getattr(head, "schema", {}), Mapping):
        raise _fail(task, f"head '{head.name}' needs a 'schema' mapping of dotted keys to defaults.")
    missing = [m for m in HEAD_METHODS if not callable(getattr(head, m, None))]
    if not any(callable(getattr(head, m, None)) for m in ("predict", "load")):
        missing.append("predict or load")
    if missing:
        raise _fail(task, f"head '{head.name}' lacks method(s) {', '.join(missing)}.")
    hub.resolve_model(str(model), catalog.models())
    return registered


def _finite(task: str, what: str, scores: Mapping[str, Any]) -> None:
    for name, value in scores.items():
        if not isinstance(value, (int, float)) or not math.isfinite(value):
            raise _fail(task, f"{what}: metric '{name}' returned {value!r}, not a finite number.")


def check_metrics(task: str, catalog: Any, config: Mapping[str, Any], data: Any) -> dict:
    """Metrics declare ``higher_is_better``; every baseline's outputs score as numbers.

    Baselines run with ``config`` as given: set ``config["model"]`` to a tiny model first
    when a baseline loads the base model.
    """
    from tunehub.core.artifacts import hub
    from tunehub.core.running.runner import baseline_fn, other_models, score

    data.base_model = hub.resolve_model(config["model"], catalog.models())  # as the runner does
    data.models = other_models(catalog.head(config["head"]["name"]), config, catalog)
    for name in config["metrics"]:
        metric = catalog.metric(name)
        if not isinstance(metric.higher_is_better, bool) or not isinstance(metric.scalar, bool):
            raise _fail(task, f"metric '{name}' must set higher_is_better and scalar as booleans.")
    results = {}
    head = catalog.head(config["head"]["name"])
    for name in config["baselines"]:
        outputs = baseline_fn(catalog, head, name)(data, config)
        scalars, _ = score(catalog, config["metrics"], outputs)
        _finite(task, f"baseline '{name}'", scalars)
        results[name] = scalars
    return results


def _strings(values: Any) -> list[str]:
    """The strings of a list of strings, or the first fields of a list of tuples/rows."""
    if isinstance(values, str) or not isinstance(values, Sequence) or not values:
        return []
    first = values[0]
    if isinstance(first, str):
        return [v for v in values if isinstance(v, str)]
    if isinstance(first, (tuple, list)) and first and isinstance(first[0], str):
        return [v[0] for v in values if v and isinstance(v[0], str)]
    return []


def example_inputs(head: Any, data: Any, config: Mapping[str, Any], n: int = 3) -> list[str]:
    """Inputs for a predict run: ``head.example_inputs(data, config)`` when the head has it,
    else the evaluation set itself when it is a list of texts."""
    own = head.example_inputs(data, config)
    if own is not None:
        return own[:n]
    found = list(dict.fromkeys(_strings(data.eval)))  # unique, in order
    if found:
        return found[:n]
    raise AssertionError(
        f"cannot tell what head '{head.name}' predicts on: give it a method "
        "example_inputs(data, config) -> list[str], or pass inputs to the contract."
    )


def _settings(overrides: Iterable[str]) -> list[str]:
    return [f"{k}={v}" for k, v in CONTRACT_OVERRIDES.items()] + list(overrides)


def _inputs(task: str, catalog: Any, inputs: Sequence[str] | None) -> list[str]:
    """``inputs`` as given, else the head's example inputs from the task's sample data."""
    from tunehub.core.running import runner

    if inputs is not None:
        return list(inputs)
    prepared = runner.prepare(task, catalog=catalog)
    data = prepared.head.load_data(prepared.config, prepared.files)
    return example_inputs(prepared.head, data, prepared.config)


def check_train_and_predict(task: str, catalog: Any, model: str | Path,
                            inputs: Sequence[str] | None = None,
                            overrides: Iterable[str] = ()) -> tuple[Any, list[dict]]:
    """A one-step training run writes an artifact; predict answers each input in order."""
    from tunehub.core.running import runner

    result = runner.run_task(task, model=str(model), overrides=_settings(overrides),
                             catalog=catalog)
    if not result.artifact or not (Path(result.artifact) / "manifest.json").is_file():
        raise _fail(task, f"the run wrote no complete artifact (got {result.artifact!r}).")
    if result.primary_metric not in result.metrics:
        raise _fail(task, f"the primary metric '{result.primary_metric}' is missing from "
                          f"the run's metrics {sorted(result.metrics)}.")
    _finite(task, "training run", result.metrics)
    for name, scores in result.baselines.items():
        _finite(task, f"baseline '{name}'", scores)
    inputs = _inputs(task, catalog, inputs)
    answers = runner.predict(task, list(inputs), model=result.artifact, catalog=catalog)
    if not isinstance(answers, list) or len(answers) != len(inputs):
        raise _fail(task, f"predict returned {len(answers) if isinstance(answers, list) else answers!r} "
                          f"answers for {len(inputs)} inputs; return one dict per input, in order.")
    if not all(isinstance(a, Mapping) for a in answers):
        raise _fail(task, "predict must return a list of dicts (one per input).")
    return result, answers


def _differences(first: Mapping[str, Any], second: Mapping[str, Any], tolerance: float = 2e-6) -> list[str]:
    """``name: a != b`` for each score that differs (scores are rounded to 6 digits)."""
    return [f"{name}: {first.get(name)} != {second.get(name)}"
            for name in sorted(set(first) | set(second))
            if not (isinstance(first.get(name), (int, float)) and isinstance(second.get(name), (int, float))
                    and math.isclose(first[name], second[name], rel_tol=0, abs_tol=tolerance))]


def check_determinism(task: str, catalog: Any, model: str | Path, overrides: Iterable[str] = (),
                      first: Any = None) -> Any:
    """Two one-step training runs with the same seed give the same metrics.

    ``first``: a run already made with the same settings (e.g. by `check_train_and_predict`),
    so only one more run is needed. Baselines do not train, so the second run skips them.
    Returns the second run's result.
    """
    from tunehub.core.running import runner

    settings = _settings(overrides)
    first = first or runner.run_task(task, model=str(model), overrides=settings + ["baselines="],
                                     catalog=catalog)
    second = runner.run_task(task, model=str(model), overrides=settings + ["baselines="],
                             catalog=catalog)
    differ = _differences(first.metrics, second.metrics)
    if differ:
        raise _fail(task, "two training runs with the same train.seed gave different metrics ("
                          + "; ".join(differ) + "). Draw every random choice (splits, shuffles, "
                          "layer initialisation, sampling) from train.seed: the core seeds before "
                          "fit, and run_trainer seeds the Trainer.")
    return second


def _fingerprint(predictor: Any) -> list[tuple[str, str, float]]:
    """(module path, module type, weight checksum) of every torch module a predictor holds,
    one attribute deep (``predictor.model``, ``predictor.encoder``...)."""
    import sys

    torch = sys.modules.get("torch")
    if torch is None:
        return []
    impl = predictor.impl  # the head's own predictor inside the core's adapter
    found = []
    for attr, value in sorted(vars(impl).items() if hasattr(impl, "__dict__") else []):
        if not isinstance(value, torch.nn.Module):
            continue
        for name, module in value.named_modules():
            weights = [t for t in module.state_dict(keep_vars=False).values()
                       if isinstance(t, torch.Tensor) and t.is_floating_point()]
            total = float(sum(t.detach().double().sum() for t in weights)) if weights else 0.0
            found.append((f"{attr}.{name}", type(module).__name__, total))
    return found


def check_quantize(task: str, catalog: Any, artifact: str | Path,
                   inputs: Sequence[str] | None = None) -> str:
    """``--quantize int8`` either changes the loaded model (its weights or its answers) or is
    refused with a ConfigError; never accepted and silently measured as fp32.

    Returns ``"refused"`` or ``"quantised"``.
    """
    from tunehub.core.running import runner
    from tunehub.core.errors import ConfigError

    try:
        quantised = runner.load(task, model=str(artifact), quantize="int8", catalog=catalog)
    except ConfigError:
        return "refused"
    full = runner.load(task, model=str(artifact), catalog=catalog)
    if _fingerprint(quantised.predictor) != _fingerprint(full.predictor):
        return "quantised"
    inputs = _inputs(task, catalog, inputs)
    if quantised.predict(inputs) != full.predict(inputs):
        return "quantised"
    raise _fail(task, "--quantize int8 was accepted but changed neither the model's weights nor "
                      "its answers, so `app evaluate --quantize int8` would report the fp32 model "
                      "as int8. Quantise the model in the predictor's quantize(kind), or leave "
                      "quantize out so --quantize is refused.")


@dataclass
class Contract:
    """The contract for one task, bound to a catalog and a (tiny) base model."""

    task: str
    registries: Sequence[str | Path] = ()
    model: str | Path | None = None
    inputs: Sequence[str] | None = None
    overrides: Sequence[str] = ()
    _catalog: Any = field(default=None, repr=False)

    @property
    def catalog(self):
        if self._catalog is None:
            from tunehub.core.extending.plugins import load_catalog

            self._catalog = load_catalog(registries=self.registries)
        return self._catalog

    def base_model(self) -> str:
        from .models import build_tiny_model

        return str(self.model or build_tiny_model())

    def settings(self) -> list[str]:
        """The contract's own settings: the overrides given, and the tiny model for every
        other model the task names (a head's ``models`` settings that are set)."""
        from tunehub.core.running.config import flatten
        from tunehub.core.running.runner import resolve_config

        task = self.catalog.task(self.task)
        config = resolve_config(self.catalog, task, model=self.base_model())
        head = self.catalog.head(config["head"]["name"])
        named = [key for key in head.models if flatten(config).get(key)]
        return [f"{key}={self.base_model()}" for key in named] + list(self.overrides)

    def task_file(self) -> dict[str, Any]:
        return check_task_file(self.task, self.catalog)

    def data(self):
        return check_data(self.task, self.catalog, self.task_file())

    def head(self):
        return check_head(self.task, self.catalog, self.base_model())

    def metrics(self) -> dict:
        from tunehub.core.running.runner import resolve_config

        self.task_file()
        # baselines may load the base model (e.g. an untuned encoder): use the tiny one
        config = resolve_config(self.catalog, self.catalog.task(self.task),
                                overrides=self.settings(), model=self.base_model())
        return check_metrics(self.task, self.catalog, config,
                             check_data(self.task, self.catalog, config))

    def train_and_predict(self):
        return check_train_and_predict(self.task, self.catalog, self.base_model(),
                                       self.inputs, self.settings())

    def determinism(self, first: Any = None):
        return check_determinism(self.task, self.catalog, self.base_model(), self.settings(), first)

    def quantize(self, artifact: str | Path | None = None) -> str:
        if artifact is None:
            artifact = check_train_and_predict(self.task, self.catalog, self.base_model(),
                                               self.inputs, self.settings())[0].artifact
        return check_quantize(self.task, self.catalog, artifact, self.inputs)

    def run_all(self):
        """Every check; the training run is reused by the determinism and quantize checks."""
        self.task_file(), self.data(), self.head(), self.metrics()
        result, answers = self.train_and_predict()
        self.determinism(first=result)
        self.quantize(result.artifact)
        return result, answers


def check_task(task: str, registries: Sequence[str | Path] = (), model: str | Path | None = None,
               inputs: Sequence[str] | None = None):
    """Every contract check for one task; returns (run result, predictions)."""
    return Contract(task, registries, model, inputs).run_all()
