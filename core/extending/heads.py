"""The contracts between the core and a head (a model type a task trains).

A head is any object with these attributes and methods (composition, no base class).
The core resolves the config, asks the head to load and validate data (no model yet),
to fit into a staging folder, and to evaluate or predict with a saved model folder.

Required: ``name``, ``load_data``, ``fit``, and ``predict`` or ``load``. Everything else has
a default, filled in once when the head is registered (`RegisteredHead`), so the core never
probes a head for optional members. A head's ``load(model_dir, config)`` returns a predictor:
``predict(inputs)`` required, ``evaluate(data)`` and ``quantize(kind)`` optional (see
`tunehub.core.models.inference.Predictor`).
"""
from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from ..errors import PluginError


@dataclass
class TaskData:
    """Validated data for one run. ``train``/``eval`` are head-specific example sets."""

    train: Any
    eval: Any
    files: dict[str, Path]  # role -> file, hashed into the manifest
    summary: dict[str, Any] = field(default_factory=dict)  # shown in the report
    info: dict[str, Any] = field(default_factory=dict)  # e.g. labels
    warnings: list[str] = field(default_factory=list)  # printed before training, kept in the report
    base_model: Path | None = None  # the base model's folder: set by the runner before fit and baselines
    models: dict[str, Path] = field(default_factory=dict)  # setting -> folder of each other model the head's `models` settings name (set by the runner)


@dataclass
class Run:
    """What a head needs to train: config, data, base model, where to write."""

    task: str
    config: dict[str, Any]
    data: TaskData
    base_model: Path
    model_dir: Path  # write the fine-tuned model here (inside the staging artifact)
    work_dir: Path  # checkpoints for --resume
    resume: bool = False
    callbacks: Sequence[Any] = ()
    primary_metric: str | None = None
    greater_is_better: bool = True
    score: Callable[[Mapping[str, Any]], dict[str, float]] = lambda outputs: {}  # scalar metrics


@dataclass
class FitOutput:
    outputs: Mapping[str, Any]  # evaluation outputs on the eval data (what metrics read)
    log_history: list[dict[str, Any]] = field(default_factory=list)
    notes: dict[str, Any] = field(default_factory=dict)  # train time, precision, resume, ...


class Head(Protocol):
    name: str
    description: str
    schema: Mapping[str, Any]  # extra config keys this head reads, with defaults

    def load_data(self, config: Mapping[str, Any], files: Mapping[str, Path]) -> TaskData: ...

    def fit(self, run: Run) -> FitOutput: ...

    def evaluate(self, model_dir: Path, data: TaskData, config: Mapping[str, Any]) -> Mapping[str, Any]: ...

    def predict(self, model_dir: Path, inputs: Sequence[str], config: Mapping[str, Any]) -> list[dict[str, Any]]: ...


# Optional members of a head and what stands in for them.
OPTIONAL = ("description", "schema", "baselines", "load", "evaluate", "export", "example_inputs",
            "training_texts", "row_keys", "corrections", "join_feedback", "monitor_outputs",
            "paths", "input_role", "ranges", "models", "eval_inputs", "eval_outputs")


def _method(impl: Any, name: str) -> Callable[..., Any] | None:
    member = getattr(impl, name, None)
    return member if callable(member) else None


def _monitor_outputs(impl: Any, name: str, plugin: str) -> dict[str, str] | None:
    """``monitor_outputs``: which output fields carry the predicted label and the score of
    each label, so `app monitor` can watch the head's tasks."""
    found = getattr(impl, "monitor_outputs", None)
    if found is None:
        return None
    if not (isinstance(found, Mapping) and set(found) == {"label", "scores"}
            and all(isinstance(v, str) and v for v in found.values())):
        raise PluginError(f"head '{name}' of plugin '{plugin}': monitor_outputs must map "
                          '"label" and "scores" to output field names, such as {"label": '
                          '"label", "scores": "probabilities"}.')
    return dict(found)


def _ranges(impl: Any, name: str, plugin: str, schema: Mapping[str, Any]) -> dict[str, Any]:
    """``ranges``: the head's numeric settings and the interval each must lie in, such as
    ``{"head.dropout": "[0, 1)"}``, checked with the core's settings before any data loads."""
    from ..running.config import interval

    rules = {}
    for key, text in dict(getattr(impl, "ranges", None) or {}).items():
        if key not in schema:
            raise PluginError(f"head '{name}' of plugin '{plugin}': ranges names '{key}', which "
                              "its schema does not declare.")
        try:
            rules[key] = interval(text)
        except ValueError as exc:
            raise PluginError(f"head '{name}' of plugin '{plugin}': ranges['{key}']: {exc}.") from None
    return rules


class RegisteredHead:
    """A registered head with every optional member of the protocol filled in.

    ``impl`` is the plugin's own object; the core talks to this wrapper only.
    """

    def __init__(self, impl: Any, plugin: str = "") -> None:
        name = getattr(impl, "name", "")
        if not isinstance(name, str) or not name:
            raise PluginError(f"plugin '{plugin}' registered a head without a name.")
        missing = [m for m in ("load_data", "fit") if not callable(getattr(impl, m, None))]
        if not (callable(getattr(impl, "predict", None)) or callable(getattr(impl, "load", None))):
            missing.append("predict or load")
        if missing:
            raise PluginError(f"head '{name}' of plugin '{plugin}' lacks {', '.join(missing)}; "
                              "see docs/heads.md (Writing a head).")
        self.impl, self.plugin, self.name = impl, plugin, name
        self.description: str = str(getattr(impl, "description", "") or "")
        self.schema: Mapping[str, Any] = dict(getattr(impl, "schema", None) or {})
        self.paths: tuple[str, ...] = tuple(getattr(impl, "paths", None) or ())
        self.input_role: str = str(getattr(impl, "input_role", None) or "text")
        self.rules = _ranges(impl, name, plugin, self.schema)
        # settings that name another model (a decoder beside an encoder, say): "" names none
        self.models: tuple[str, ...] = tuple(getattr(impl, "models", None) or ())
        for member in ("paths", "models"):
            undeclared = [key for key in getattr(self, member) if key not in self.schema]
            if undeclared:
                raise PluginError(f"head '{name}' of plugin '{plugin}': {member} names "
                                  f"{', '.join(undeclared)}, which its schema does not declare.")
        self.monitor_outputs = _monitor_outputs(impl, name, plugin)
        if self.monitor_outputs:  # `app monitor` settings, the head's own values first
            from ..operations.monitor import SETTINGS

            self.schema = {**SETTINGS, **self.schema}
        self.baselines: Mapping[str, Callable[..., Any]] = dict(getattr(impl, "baselines", None) or {})
        self._load, self._evaluate = _method(impl, "load"), _method(impl, "evaluate")
        self._predict, self._export = _method(impl, "predict"), _method(impl, "export")
        self._examples, self._texts = _method(impl, "example_inputs"), _method(impl, "training_texts")
        self._keys, self._join = _method(impl, "row_keys"), _method(impl, "join_feedback")
        self._eval_inputs, self._eval_outputs = _method(impl, "eval_inputs"), _method(impl, "eval_outputs")
        if (self._eval_inputs is None) != (self._eval_outputs is None):
            raise PluginError(f"head '{name}' of plugin '{plugin}' declares "
                              f"{'eval_inputs' if self._eval_outputs is None else 'eval_outputs'} "
                              f"without {'eval_outputs' if self._eval_outputs is None else 'eval_inputs'}; "
                              "a head evaluated from predictions declares both (docs/heads.md).")
        corrections = getattr(impl, "corrections", None)
        if corrections is not None and not callable(corrections) and not isinstance(corrections, Mapping):
            raise PluginError(f"head '{name}' of plugin '{plugin}': corrections must be a mapping "
                              "(field -> JSON Schema) or a function (config, labels) -> mapping.")
        self._corrections = corrections
        if (corrections is None) != (self._join is None):
            raise PluginError(f"head '{name}' of plugin '{plugin}' declares "
                              f"{'corrections' if self._join is None else 'join_feedback'} without "
                              f"{'join_feedback' if self._join is None else 'corrections'}; a head "
                              "that takes feedback declares both (docs/heads.md, Feedback).")
        if self._join is not None and self._keys is None:
            raise PluginError(f"head '{name}' of plugin '{plugin}' declares join_feedback but no "
                              "row_keys; a retrain on feedback must show it is scored on rows it "
                              "never trained on (docs/heads.md, Feedback).")

    def __repr__(self) -> str:
        return f"<head {self.name} ({self.plugin or 'unregistered'})>"

    def load_data(self, config: Mapping[str, Any], files: Mapping[str, Path]) -> TaskData:
        return self.impl.load_data(config, files)

    def fit(self, run: Run) -> FitOutput:
        return self.impl.fit(run)

    def load(self, model_dir: Path, config: Mapping[str, Any]) -> Any:
        """A predictor loaded once (the head's ``load``), else one calling ``head.predict``."""
        from ..models.inference import PredictorAdapter

        predictor = self._load(Path(model_dir), config) if self._load else None
        return PredictorAdapter(self, predictor, Path(model_dir), config)

    @property
    def own_evaluate(self) -> Callable[..., Mapping[str, Any]] | None:
        """The head's own ``evaluate(model_dir, data, config)``, or None."""
        return self._evaluate

    def evaluate(self, model_dir: Path, data: TaskData, config: Mapping[str, Any]) -> Mapping[str, Any]:
        if self._evaluate:
            return self._evaluate(Path(model_dir), data, config)
        return self.load(model_dir, config).evaluate(data)

    def predict(self, model_dir: Path, inputs: Sequence[Any], config: Mapping[str, Any]) -> list[dict[str, Any]]:
        if self._predict:
            return list(self._predict(Path(model_dir), list(inputs), config))
        return self.load(model_dir, config).predict(inputs)

    @property
    def exports_own_format(self) -> bool:
        return self._export is not None

    def export(self, model_dir: Path, dest: Path, config: Mapping[str, Any]) -> dict[str, Any]:
        """The head's own export format; without one, the saved model folder as is."""
        import shutil

        if self._export:
            return dict(self._export(Path(model_dir), Path(dest), config) or {})
        shutil.copytree(model_dir, dest)
        return {"format": "model folder as saved by the head"}

    def example_inputs(self, data: TaskData, config: Mapping[str, Any]) -> list[Any] | None:
        """Inputs for a smoke prediction, or None when the head does not say."""
        return list(self._examples(data, config)) if self._examples else None

    def training_texts(self, data: TaskData, config: Mapping[str, Any]) -> list[str] | None:
        """The texts the model will read in training (for the tokenizer coverage check), or
        None when the head does not say."""
        return [str(t) for t in self._texts(data, config)] if self._texts else None

    # -- evaluation from predictions (on Ray) ----------------------------------------------
    @property
    def evaluates_predictions(self) -> bool:
        """Whether the head builds evaluation outputs from predictions (`eval_inputs` and
        `eval_outputs`), so `app evaluate --engine ray` can score its rows anywhere."""
        return self._eval_outputs is not None

    def eval_inputs(self, data: TaskData, config: Mapping[str, Any]) -> list[Any]:
        """The prediction inputs of ``data.eval``'s rows, in order."""
        if self._eval_inputs is None:
            raise PluginError(f"head '{self.name}' declares no eval_inputs.")
        return list(self._eval_inputs(data, config))

    def eval_outputs(self, data: TaskData, predictions: Sequence[Mapping[str, Any]],
                     config: Mapping[str, Any]) -> Mapping[str, Any]:
        """Evaluation outputs (what metrics read) from the predictions of `eval_inputs`."""
        if self._eval_outputs is None:
            raise PluginError(f"head '{self.name}' declares no eval_outputs.")
        return self._eval_outputs(data, list(predictions), config)

    # -- fair evaluation and feedback ---------------------------------------------------
    @property
    def keys_rows(self) -> bool:
        """Whether the head names its rows (`row_keys`), so runs record what they trained
        and were scored on."""
        return self._keys is not None

    def row_keys(self, data: TaskData, config: Mapping[str, Any]) -> dict[str, list[str]] | None:
        """``{"train": [...], "eval": [...]}``: a stable key per training and evaluation row
        (the input it reads), or None when the head does not say."""
        if self._keys is None:
            return None
        keys = self._keys(data, config)
        return {part: [str(k) for k in keys.get(part, ())] for part in ("train", "eval")}

    @property
    def takes_feedback(self) -> bool:
        return self._join is not None

    def corrections(self, config: Mapping[str, Any],
                    labels: Sequence[str] | None = None) -> dict[str, Any]:
        """Correction field -> JSON Schema of its value, for a version with ``config`` (and
        the ``labels`` its model predicts); empty when the head takes no feedback."""
        found = self._corrections
        if callable(found):
            found = found(config, list(labels) if labels else None)
        return dict(found or {})

    def join_feedback(self, data: TaskData, items: Sequence[Mapping[str, Any]],
                      config: Mapping[str, Any], held_out: set[str]) -> dict[str, int]:
        """Add feedback ``items`` to ``data.train`` (never to ``data.eval``), skipping those
        whose row key is in ``held_out``; the counts of what happened."""
        if self._join is None:
            raise PluginError(f"head '{self.name}' takes no feedback.")
        return {str(k): int(v) for k, v in dict(self._join(data, list(items), config, held_out)).items()}
