"""Running tasks: resolve the config, validate data, train, evaluate, save the artifact.

These functions are the Python API (re-exported as ``tunehub.run_task`` and friends) and
what the CLI calls.
"""
from __future__ import annotations

import platform
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ..artifacts import hub
from .config import CORE_SCHEMA, check_settings, config_hash, flatten, resolve, to_toml
from .data import files_hash
from ..errors import ConfigError, DataError, unknown
from ..extending.heads import Run, TaskData
from ..extending.plugins import Catalog, load_catalog
from .results import RunResult, score, warn_below_baseline
from ..extending.tasks import TaskSpec, read_toml


@dataclass
class Prepared:
    catalog: Catalog
    task: TaskSpec
    head: Any
    config: dict[str, Any]
    files: dict[str, Path]
    strict: bool = False


def resolve_config(catalog: Catalog, task: TaskSpec, overrides: Iterable[str] = (),
                   data: str | Path | None = None, eval_data: str | Path | None = None,
                   model: str | None = None, base: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Task file (or a saved ``base`` config) < overrides < --data/--eval-data/--model."""
    head = catalog.head_of(task)
    schema = {**CORE_SCHEMA, **head.schema}
    values = base if base is not None else anchored(task.values, PATHS + head.paths, task.source)
    config = resolve(schema, values, overrides, where=task.source)
    if data:
        config["dataset"]["train"] = str(data)
    if eval_data:
        config["dataset"]["eval"] = str(eval_data)
    if model:
        config["model"] = model
    for name in config["metrics"]:
        catalog.metric(name)
    for name in config["baselines"]:
        baseline_fn(catalog, head, name)
    scalars = [m for m in config["metrics"] if catalog.metric(m).scalar]
    primary = config["primary_metric"] or (scalars[0] if scalars else "")
    if primary not in scalars:
        raise ConfigError(f"{task.source}: primary_metric: " + unknown("scalar metric", primary, scalars))
    config["primary_metric"] = primary
    check_settings(config, f"task '{task.name}'", head.rules)
    return config


PATHS = ("dataset.train", "dataset.eval")  # file settings of every task; heads add their own


def anchored(values: Mapping[str, Any], keys: Iterable[str], source: str) -> dict[str, Any]:
    """A task file's values with its relative file settings (``keys``) made absolute against
    the file's folder, as a person reading the file expects."""
    import copy

    out = copy.deepcopy(dict(values))
    folder = Path(source).parent if source and Path(source).is_file() else None
    for key in keys if folder else ():
        *parents, leaf = key.split(".")
        node = out
        for part in parents:
            node = node.get(part) if isinstance(node, dict) else None
        value = node.get(leaf) if isinstance(node, dict) else None
        if isinstance(value, str) and value and not Path(value).expanduser().is_absolute():
            node[leaf] = str(folder / value)
    return out


def check_files(p: Prepared, data: Any, eval_data: Any) -> None:
    """A data file named by the task file that is not there: one line naming the file."""
    given = {"train": data, "eval": eval_data}
    for role, path in p.files.items():
        if path.exists() or given.get(role):
            continue
        raw = p.task.values.get("dataset", {}).get(role)
        if raw:
            raise DataError(f"{p.task.source}: dataset.{role} = '{raw}': no such file {path} "
                            "(relative paths in a task file are read from the file's folder).")


def baseline_fn(catalog: Catalog, head: Any, name: str):
    """A baseline by name: the head's own first (e.g. its base model untuned), then registered ones.

    Heads list baselines that only make sense for them in a ``baselines`` mapping, so two
    plugins can each offer an ``untuned`` baseline without a name clash.
    """
    return head.baselines[name] if name in head.baselines else catalog.baseline(name).fn


def data_files(config: Mapping[str, Any], catalog: Catalog, need_train: bool = True) -> dict[str, Path]:
    """The files a run reads: --data/--eval-data, else the task's registered data set."""
    ds = config["dataset"]
    files: dict[str, str] = {}
    if not ds["train"] and ds["name"]:
        files.update(catalog.dataset(ds["name"]).files)
    if ds["train"]:
        files["train"] = ds["train"]
    if ds["eval"]:
        files["eval"] = ds["eval"]
    if need_train and "train" not in files:
        raise ConfigError(
            f"task '{config['name']}' has no training data: pass --data FILE "
            "(or set dataset.name to a registered data set)."
        )
    return {role: Path(path).expanduser() for role, path in files.items()}


def prepare(task: str, *, data=None, eval_data=None, model=None, overrides: Iterable[str] = (),
            strict: bool = False, registries: Iterable[str] = (), catalog: Catalog | None = None,
            need_train: bool = True, base: Mapping[str, Any] | None = None) -> Prepared:
    """The run of ``task``, resolved and checked, nothing read yet (``base``: a saved config
    to start from instead of the task file)."""
    catalog = catalog or load_catalog(strict, registries)
    spec = catalog.task(task)
    config = resolve_config(catalog, spec, overrides, data, eval_data, model, base)
    p = Prepared(catalog, spec, catalog.head_of(spec), config,
                 data_files(config, catalog, need_train), strict)
    check_files(p, data, eval_data)
    return p


def validate_data(task: str, **kwargs: Any) -> TaskData:
    """Load and check a task's data without loading any model (the tokenizer coverage
    check reads the base model's tokenizer when its folder is at hand)."""
    p = prepare(task, **kwargs)
    task_data = load_data(p)
    note = _coverage(p, task_data, hub.available_model(p.config["model"], p.catalog.models()))
    if note:
        task_data.summary["tokenizer coverage"] = note
    return task_data


def load_data(p: Prepared) -> TaskData:
    """The head's validated data, with the warnings every task gets (evaluation on the
    training file)."""
    task_data = p.head.load_data(p.config, p.files)
    train, held = p.files.get("train"), p.files.get("eval")
    if train is not None and held is not None and _same_file(train, held):
        task_data.warnings.append(
            f"--eval-data {held} is the training file: the model is scored on rows it trained "
            "on, so the metrics overstate it. Give a held-out file, or leave --eval-data out "
            "for a held-out split.")
    return task_data


def _coverage(p: Prepared, task_data: TaskData, base_model: Path | None) -> str:
    """Check that the base model's tokenizer reads the training texts (before any training):
    a warning in the data warnings, an error under ``--strict``; returns the report's note."""
    from . import coverage

    texts = p.head.training_texts(task_data, p.config)
    if not texts or base_model is None:
        return ""
    found, warning = coverage.check(base_model, texts, p.config["model"])
    if warning and p.strict:
        raise ConfigError(f"--strict: {warning}")
    if warning:
        task_data.warnings.append(warning)
    return found.note()


def _same_file(a: Path, b: Path) -> bool:
    try:
        return Path(a).resolve() == Path(b).resolve() or Path(a).samefile(b)
    except OSError:
        return False


def run_task(task: str, *, data=None, eval_data=None, model=None, overrides: Iterable[str] = (),
             resume: bool | str = False, strict: bool = False, registries: Iterable[str] = (),
             callbacks: Sequence[Any] = (), catalog: Catalog | None = None,
             record: Mapping[str, Any] | None = None, with_feedback: bool = False) -> RunResult:
    """Fine-tune, evaluate against baselines, and save a versioned artifact.

    ``record`` adds entries to the manifest (and the report's notes).

    ``with_feedback``: retrain the serving version (else the latest) on the production
    feedback stored for the task: its saved settings and data files (unless given), the
    feedback joined to the training rows only, scored on that version's evaluation rows.

    ``resume``: ``True`` (or ``"latest"``) continues the latest interrupted run of this
    task, data and config; a run id continues that run.

    Run listeners (hook ``register_run_listeners``) get ``run_started`` and then
    ``run_finished`` or ``run_failed``; in distributed runs only rank 0 sends them.
    """
    from .engine import is_main_process

    previous, base = None, None
    if with_feedback:
        from ..operations.retrain import retrain_from

        catalog = catalog or load_catalog(strict, registries)
        previous, base, data, eval_data = retrain_from(task, data, eval_data, catalog)
    p = prepare(task, data=data, eval_data=eval_data, model=model, overrides=overrides,
                strict=strict, registries=registries, catalog=catalog,
                base=base)
    emit = p.catalog.emit if is_main_process() else (lambda event: None)
    event = {"task": task, "plugin": p.task.plugin, "config": p.config}
    emit({"event": "run_started", **event, "time": _now()})
    try:
        result = _run_prepared(p, task, resume, callbacks, dict(record or {}), previous)
    except BaseException as exc:
        emit({"event": "run_failed", **event, "time": _now(),
              "error": f"{type(exc).__name__}: {exc}".strip().splitlines()[0]})
        raise
    emit({"event": "run_finished", **event, "time": _now(), "metrics": result.metrics,
          "baselines": result.baselines, "primary_metric": result.primary_metric,
          "below_baseline": result.below_baseline,
          "artifact": result.artifact, "version": result.version})
    return result


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _run_prepared(p: Prepared, task: str, resume: bool | str, callbacks: Sequence[Any],
                  record: dict[str, Any], previous: hub.Artifact | None = None) -> RunResult:
    from . import tracking, workdirs as runs
    from .engine import is_main_process, quiet_transformers, seed_everything
    from .progress import console, phase, say, summary, warn
    from .report import write_report

    tracking.check_installed(p.config["train"]["report_to"])  # before any data or model loads
    with phase("reading and checking the data"):
        task_data = load_data(p)  # validation before any model loads
        if previous is not None:
            from ..operations.retrain import join_feedback

            record.update(join_feedback(p, task_data, previous))
        keys = _row_keys(p, task_data)
    base_model = hub.resolve_model(p.config["model"], p.catalog.models())
    task_data.base_model = base_model  # baselines such as "untuned" read the base model here
    task_data.models = other_models(p.head, p.config, p.catalog)
    coverage_note = _coverage(p, task_data, base_model)
    if coverage_note:
        task_data.summary["tokenizer coverage"] = coverage_note
    data_hash = files_hash(sorted(set(task_data.files.values())))
    main = is_main_process()
    key = f"{task}-{config_hash({'config': p.config, 'data': data_hash, 'record': record})}"
    resume_from = runs.resumable(task, key, resume, main)
    if main:
        copies = 4 if p.config["train"]["save_checkpoints"] else 2  # artifact, weights, optimizer
        runs.check_writable(copies * hub.folder_size(base_model))
        runs.sweep()  # leftovers of killed runs that hold nothing to resume
        summary("data", task_data.summary)
        for text in task_data.warnings:
            warn(text)
    work_dir = runs.start_work(key, resume_from, main)
    resuming = resume_from is not None
    primary = p.config["primary_metric"]
    succeeded = False
    try:
        with hub.staging(task) as folder:
            runs.claim(folder)
            run = Run(task, p.config, task_data, base_model, folder / "model", work_dir, resuming,
                      callbacks, primary, p.catalog.metric(primary).higher_is_better,
                      score=lambda outputs: score(p.catalog, p.config["metrics"], outputs)[0])
            quiet_transformers()  # the head's fit loads models: no load reports or bars
            seed_everything(int(p.config["train"]["seed"]))  # before the head builds any layer
            say(f"fine-tuning {p.config['model']} with head '{p.head.name}' (loading the model "
                "first)")
            with tracking.run_logs(work_dir, task):
                fit = p.head.fit(run)
            if not main:  # distributed runs: rank 0 alone evaluates and saves
                succeeded = True
                return RunResult(task, None, primary, {})
            record.update(tracking.keep(work_dir, folder, p.config["train"]["report_to"], task,
                                        p.head.name))
            result = _score_and_write(p, folder, task_data, fit, base_model, data_hash, write_report,
                                      record, keys)
            runs.release(folder)
            artifact = hub.publish(folder, task)
            say(f"saved {artifact.ref} in {artifact.path}")
        succeeded = True
    except BaseException:
        if main and runs.has_checkpoint(work_dir):
            console().print(f"run {work_dir.name} stopped; `app run-task {task} --resume` "
                            "(same --data/--set) continues it from its last checkpoint.",
                            style="yellow", markup=False, highlight=False)
        raise
    finally:
        if main:
            runs.finish_work(work_dir, succeeded)
    result.artifact, result.version = str(artifact.path), artifact.version
    return result


def other_models(head: Any, config: Mapping[str, Any], catalog: Catalog) -> dict[str, Path]:
    """The folders of the models a head's ``models`` settings name (empty settings skipped)."""
    flat = flatten(config)
    named = {key: str(flat.get(key) or "") for key in head.models}
    return {key: hub.resolve_model(name, catalog.models()) for key, name in named.items() if name}


def _row_keys(p: Prepared, task_data: TaskData) -> dict[str, list[str]] | None:
    """The head's row keys of this run, with a warning when evaluation rows repeat
    training rows."""
    from ..artifacts import rows

    keys = p.head.row_keys(task_data, p.config)
    if keys is None:
        return None
    repeats = rows.shared(keys)
    if repeats:
        task_data.warnings.append(
            f"{repeats} of the {len(keys['eval'])} evaluation rows have the same input as a "
            "training row (repeats in the data), so the metrics overstate the model a little. "
            "Remove the repeats, or give --eval-data FILE without them.")
    return keys


def _score_and_write(p: Prepared, folder: Path, task_data: TaskData, fit: Any, base_model: Path,
                     data_hash: str, write_report: Any, record: Mapping[str, Any],
                     keys: Mapping[str, list[str]] | None = None) -> RunResult:
    from ..artifacts import rows
    from .progress import phase

    primary = p.config["primary_metric"]
    metrics, details = score(p.catalog, p.config["metrics"], fit.outputs)
    baselines = {}
    for name in p.config["baselines"]:
        with phase(f"scoring baseline {name}"):
            outputs = baseline_fn(p.catalog, p.head, name)(task_data, p.config)
            baselines[name] = score(p.catalog, p.config["metrics"], outputs)[0]
    notes = {**fit.notes, **record}
    if task_data.warnings:
        notes["data warnings"] = " | ".join(task_data.warnings)
    result = RunResult(p.task.name, None, primary, metrics, baselines, details, notes,
                       higher_is_better=p.catalog.metric(primary).higher_is_better)
    warn_below_baseline(result)
    manifest = {**_manifest(p, base_model, data_hash, result), **record}
    if keys is not None:
        found = rows.record(keys)
        rows.write(folder, found)
        manifest["evaluation"] = {"rows": found["eval_rows"], "digest": found["eval_digest"],
                                  "training rows": found["train_rows"], "record": rows.ROWS_FILE}
    hub.write_json(folder / "manifest.json", manifest)
    hub.write_json(folder / "metrics.json", {"primary_metric": primary, "metrics": metrics,
                                              "baselines": baselines, "details": details})
    (folder / "config.toml").write_text(to_toml(p.config))
    with phase("writing the report"):
        write_report(folder, result, task_data, fit.log_history, manifest)
    return result


def _manifest(p: Prepared, base_model: Path, data_hash: str, result: RunResult) -> dict[str, Any]:
    import importlib.metadata as md

    versions = {"python": platform.python_version()}
    for dist in ("tunehub", "torch", "transformers", "accelerate", "sentence-transformers",
                 "faiss-cpu", "numpy"):
        try:
            versions[dist] = md.version(dist)
        except md.PackageNotFoundError:
            pass
    return {
        "task": p.task.name, "head": p.task.head, "plugin": p.task.plugin,
        "base_model": p.config["model"], "base_model_path": str(base_model),
        "data": {role: str(Path(path).resolve()) for role, path in sorted(p.files.items())},
        "data_hash": data_hash, "primary_metric": result.primary_metric,
        "primary_value": result.metrics.get(result.primary_metric),
        "versions": versions, "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }


def load_artifact_config(artifact: hub.Artifact) -> dict[str, Any]:
    return read_toml(artifact.path / "config.toml", "artifact config")


def check_inputs(inputs: Sequence[Any]) -> None:
    """Every input is non-empty text: the rule of `Loaded.predict`, the CLI and the server."""
    for number, text in enumerate(inputs, start=1):
        if not isinstance(text, str) or not text.strip():
            raise DataError(f"input {number} is {'empty' if isinstance(text, str) else type(text).__name__}"
                            "; every input must be non-empty text (the server refuses it too).")


@dataclass
class Loaded:
    """A fine-tuned version loaded once, ready for many predictions."""

    task: str
    artifact: hub.Artifact
    config: dict[str, Any]
    head: Any
    predictor: Any
    quantize: str = "none"

    def predict(self, inputs: Sequence[Any]) -> list[dict[str, Any]]:
        check_inputs(inputs)
        outputs = self.predictor.predict(list(inputs))
        if len(outputs) != len(inputs):
            raise ConfigError(f"head '{self.head.name}' returned "
                              f"{len(outputs)} outputs for {len(inputs)} inputs.")
        return outputs


def version_config(task: str, *, model: str | None = None, overrides: Iterable[str] = (),
                   strict: bool = False, registries: Iterable[str] = (),
                   catalog: Catalog | None = None) -> tuple[hub.Artifact, dict[str, Any]]:
    """A fine-tuned version and its saved config (with ``overrides``), loading no model."""
    catalog = catalog or load_catalog(strict, registries)
    spec = catalog.task(task)
    artifact = hub.artifact_for(model or f"{task}@latest")
    if artifact.task != task:
        raise ConfigError(f"{artifact.ref} is a version of task '{artifact.task}', not '{task}'.")
    return artifact, resolve_config(catalog, spec, overrides, base=load_artifact_config(artifact))


def load(task: str, *, model: str | None = None, quantize: str = "none",
         overrides: Iterable[str] = (), strict: bool = False, registries: Iterable[str] = (),
         catalog: Catalog | None = None,
         version: tuple[hub.Artifact, dict[str, Any]] | None = None) -> Loaded:
    """Load a fine-tuned version (``TASK@latest`` by default) once: predict, evaluate, serve.

    ``version``: the (artifact, config) `version_config` already resolved, so a command
    that checked its input against the config before loading resolves it once."""
    from .engine import quiet_transformers
    from ..models.inference import configure_threads, load_predictor
    from ..models.onnx_backend import use_onnx
    from .progress import phase

    catalog = catalog or load_catalog(strict, registries)
    artifact, config = version or version_config(task, model=model, overrides=overrides,
                                                 catalog=catalog)
    head = catalog.head_of(catalog.task(task))
    if quantize != "none" or not use_onnx(artifact.model_dir, config):  # ONNX needs no torch
        quiet_transformers()
        configure_threads()
    with phase(f"loading {artifact.ref}" + (f" ({quantize})" if quantize != "none" else "")):
        predictor = load_predictor(head, artifact.model_dir, config, quantize)
    return Loaded(task, artifact, config, head, predictor, quantize)


def evaluate(task: str, *, model: str | None = None, data=None, overrides: Iterable[str] = (),
             quantize: str = "none", write: bool = True, strict: bool = False,
             registries: Iterable[str] = (), catalog: Catalog | None = None,
             engine: Any = None) -> RunResult:
    """Metrics of an existing artifact on (new) data, without training.

    Writes ``evaluations/<time>/report.md`` (and metrics.json) into the artifact. With
    ``quantize="int8"`` the full-precision model is scored too and the change is reported.
    ``engine``: a `tunehub.core.serving.ray_engine.RayEngine` scores the rows on Ray (heads
    with ``eval_inputs``/``eval_outputs``); the metrics are computed here, after.
    """
    from .evaluation import evaluate_loaded

    catalog = catalog or load_catalog(strict, registries)
    version = version_config(task, model=model, overrides=overrides, catalog=catalog)
    config = version[1]
    files = {"eval": Path(data).expanduser()} if data else data_files(config, catalog)
    task_data = catalog.head_of(catalog.task(task)).load_data(config, files)  # before the model
    loaded = (engine.load(task, catalog, version, quantize) if engine is not None
              else load(task, quantize=quantize, catalog=catalog, version=version))
    return evaluate_loaded(loaded, catalog, files, write=write, overrides=overrides, data=task_data)


def predict(task: str, inputs: Sequence[Any], *, model: str | None = None,
            strict: bool = False, registries: Iterable[str] = (),
            catalog: Catalog | None = None) -> list[dict[str, Any]]:
    """Predictions of a fine-tuned version (``TASK@latest`` by default), in input order."""
    return load(task, model=model, strict=strict, registries=registries,
                catalog=catalog).predict(list(inputs))
