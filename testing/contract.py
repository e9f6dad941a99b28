"""The task contract: the checks every registered task passes, with a tiny model.

Each ``check_*`` raises ``AssertionError`` (or the ``TunehubError`` a loader raised) with
a message naming the task and the fix. ``check_task`` runs them all in order.
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
HEAD_METHODS = ("load_data", "fit", "evaluate", "predict")


def _fail(task: str, message: str) -> AssertionError:
    return AssertionError(f"task '{task}': {message}")


def _size(examples: Any) -> int | None:
    """Rows in a head's example set, when it says (len() or a list attribute)."""
    try:
        return len(examples)
    except TypeError:
        pass
    for name in ("texts", "queries", "pairs", "rows", "users"):
        value = getattr(examples, name, None)
        if isinstance(value, Sequence):
            return len(value)
    return None


def check_task_file(task: str, catalog: Any) -> dict[str, Any]:
    """The task is registered, its file resolves against the schema, names resolve."""
    from tunehub.core.runner import resolve_config

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
    from tunehub.core.runner import data_files

    if not config["dataset"]["name"]:
        raise _fail(task, "set dataset.name to a registered sample data set "
                          "(hook register_datasets), so the default run works offline.")
    files = data_files(config, catalog)
    for role, path in files.items():
        if not Path(path).is_file():
            raise _fail(task, f"data set '{config['dataset']['name']}' file '{role}' "
                              f"({path}) does not exist; ship it as package data.")
    data = catalog.head(catalog.task(task).head).load_data(config, files)
    for part in ("train", "eval"):
        size = _size(getattr(data, part))
        if size == 0:
            raise _fail(task, f"the sample data has no {part} rows after loading.")
    if not isinstance(data.files, Mapping) or not data.files:
        raise _fail(task, "load_data must return TaskData.files (role -> file) for the manifest.")
    return data


def check_head(task: str, catalog: Any, model: str | Path) -> Any:
    """The head follows the Head protocol, and the tiny model resolves as a base model."""
    from tunehub.core import hub

    head = catalog.head(catalog.task(task).head)
    for attr in ("name", "description"):
        if not isinstance(getattr(head, attr, None), str) or not getattr(head, attr):
            raise _fail(task, f"head {head!r} needs a non-empty string '{attr}'.")
    if not isinstance(getattr(head, "schema", None), Mapping):
        raise _fail(task, f"head '{head.name}' needs a 'schema' mapping of dotted keys to defaults.")
    missing = [m for m in HEAD_METHODS if not callable(getattr(head, m, None))]
    if missing:
        raise _fail(task, f"head '{head.name}' lacks method(s) {', '.join(missing)}.")
    hub.resolve_model(str(model), catalog.models())
    return head


def _finite(task: str, what: str, scores: Mapping[str, Any]) -> None:
    for name, value in scores.items():
        if not isinstance(value, (int, float)) or not math.isfinite(value):
            raise _fail(task, f"{what}: metric '{name}' returned {value!r}, not a finite number.")


def check_metrics(task: str, catalog: Any, config: Mapping[str, Any], data: Any) -> dict:
    """Metrics declare ``higher_is_better``; every baseline's outputs score as numbers.

    Baselines run with ``config`` as given: set ``config["model"]`` to a tiny model first
    when a baseline loads the base model.
    """
    from tunehub.core.runner import baseline_fn, score

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
    else the first text-like field of the eval examples (``texts``, ``queries``, or the
    first string column of a list of tuples, e.g. the users of (user, item) cases)."""
    own = head.example_inputs(data, config)
    if own is not None:
        return own[:n]
    fields = vars(data.eval) if hasattr(data.eval, "__dict__") else {}
    ordered = [fields.get("texts"), fields.get("queries"), data.eval, *fields.values()]
    for values in ordered:
        found = list(dict.fromkeys(_strings(values)))  # unique, in order
        if found:
            return found[:n]
    raise AssertionError(
        f"cannot tell what head '{head.name}' predicts on: give it a method "
        "example_inputs(data, config) -> list[str], or pass inputs to the contract."
    )


def check_train_and_predict(task: str, catalog: Any, model: str | Path,
                            inputs: Sequence[str] | None = None,
                            overrides: Iterable[str] = ()) -> tuple[Any, list[dict]]:
    """A one-step training run writes an artifact; predict answers each input in order."""
    from tunehub.core import runner

    settings = [f"{k}={v}" for k, v in CONTRACT_OVERRIDES.items()] + list(overrides)
    result = runner.run_task(task, model=str(model), overrides=settings, catalog=catalog)
    if not result.artifact or not (Path(result.artifact) / "manifest.json").is_file():
        raise _fail(task, f"the run wrote no complete artifact (got {result.artifact!r}).")
    if result.primary_metric not in result.metrics:
        raise _fail(task, f"the primary metric '{result.primary_metric}' is missing from "
                          f"the run's metrics {sorted(result.metrics)}.")
    _finite(task, "training run", result.metrics)
    for name, scores in result.baselines.items():
        _finite(task, f"baseline '{name}'", scores)
    if inputs is None:
        prepared = runner.prepare(task, catalog=catalog)
        inputs = example_inputs(prepared.head, prepared.head.load_data(prepared.config,
                                                                       prepared.files),
                                prepared.config)
    answers = runner.predict(task, list(inputs), model=result.artifact, catalog=catalog)
    if not isinstance(answers, list) or len(answers) != len(inputs):
        raise _fail(task, f"predict returned {len(answers) if isinstance(answers, list) else answers!r} "
                          f"answers for {len(inputs)} inputs; return one dict per input, in order.")
    if not all(isinstance(a, Mapping) for a in answers):
        raise _fail(task, "predict must return a list of dicts (one per input).")
    return result, answers


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
            from tunehub.core.plugins import load_catalog

            self._catalog = load_catalog(registries=self.registries)
        return self._catalog

    def base_model(self) -> str:
        from .models import build_tiny_model

        return str(self.model or build_tiny_model())

    def task_file(self) -> dict[str, Any]:
        return check_task_file(self.task, self.catalog)

    def data(self):
        return check_data(self.task, self.catalog, self.task_file())

    def head(self):
        return check_head(self.task, self.catalog, self.base_model())

    def metrics(self) -> dict:
        from tunehub.core.runner import resolve_config

        self.task_file()
        # baselines may load the base model (e.g. an untuned encoder): use the tiny one
        config = resolve_config(self.catalog, self.catalog.task(self.task),
                                model=self.base_model())
        return check_metrics(self.task, self.catalog, config,
                             check_data(self.task, self.catalog, config))

    def train_and_predict(self):
        return check_train_and_predict(self.task, self.catalog, self.base_model(),
                                       self.inputs, self.overrides)

    def run_all(self):
        self.task_file(), self.data(), self.head(), self.metrics()
        return self.train_and_predict()


def check_task(task: str, registries: Sequence[str | Path] = (), model: str | Path | None = None,
               inputs: Sequence[str] | None = None):
    """Every contract check for one task; returns (run result, predictions)."""
    return Contract(task, registries, model, inputs).run_all()
