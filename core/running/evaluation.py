"""Evaluating a saved version on (new) data: metrics, an optional int8 comparison, and a
report written into the artifact's ``evaluations/`` folder."""
from __future__ import annotations

import itertools
import time
import uuid
from collections.abc import Iterable, Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from .data import files_hash
from .results import RunResult, score, warn_below_baseline


def evaluate_loaded(loaded, catalog, files: Mapping[str, Path], *, write: bool = True,
                    overrides: Iterable[str] = (), data: Any = None):
    from ..models.inference import load_predictor
    from .progress import phase

    config, head, artifact = loaded.config, loaded.head, loaded.artifact
    data = data if data is not None else head.load_data(config, files)
    start = time.perf_counter()
    with phase(f"evaluating {artifact.ref}"):
        outputs = loaded.predictor.evaluate(data)
    seconds = time.perf_counter() - start
    metrics, details = score(catalog, config["metrics"], outputs)
    notes: dict[str, Any] = {"model": artifact.ref, "data": ", ".join(f"{r}={p}" for r, p in files.items()),
                             "eval seconds": round(seconds, 2)}
    if loaded.quantize != "none":
        with phase(f"loading {artifact.ref} unquantised"):
            full = load_predictor(head, artifact.model_dir, config)
        start = time.perf_counter()
        with phase(f"evaluating {artifact.ref} unquantised"):
            base_outputs = full.evaluate(head.load_data(config, files))
        base_seconds = time.perf_counter() - start
        base_metrics, _ = score(catalog, config["metrics"], base_outputs)
        notes["quantize"] = loaded.quantize
        for name, value in metrics.items():
            notes[f"{name} {loaded.quantize} vs fp32"] = (
                f"{value:.4f} vs {base_metrics[name]:.4f} ({value - base_metrics[name]:+.4f})")
        notes["eval seconds fp32"] = round(base_seconds, 2)
    baselines = own_baselines(loaded, data)
    if baselines:
        notes["baselines from"] = f"the run of {artifact.ref}, on these same evaluation rows"
    primary = config["primary_metric"]
    result = RunResult(loaded.task, str(artifact.path), primary, metrics, baselines, details,
                       notes, artifact.version, catalog.metric(primary).higher_is_better)
    warn_below_baseline(result)
    if write:
        folder = write_evaluation(artifact.path, result, data, files, list(overrides))
        result.notes["report"] = str(folder / "report.md")
    return result


def own_baselines(loaded, data) -> dict[str, dict[str, float]]:
    """The baselines the version's run scored, when this evaluation is on exactly that run's
    evaluation rows (their digest in ``rows.json``); else none: baselines scored on other
    rows say nothing about these."""
    from ..artifacts import rows

    keys = loaded.head.row_keys(data, loaded.config)
    found = rows.read(loaded.artifact.path)
    if keys is None or found is None:
        return {}
    if found.get("eval_digest") != rows.digest(rows.hashed(keys["eval"])):
        return {}
    return dict(loaded.artifact.metrics().get("baselines") or {})


def write_evaluation(artifact_path: Path, result, data, files: Mapping[str, Path],
                     overrides: list[str]) -> Path:
    """``evaluations/<UTC time>/report.md`` + metrics.json, renamed into place complete."""
    from ..artifacts.hub import rename_to_free, write_json
    from .progress import readable
    from .report import render

    now = datetime.now(timezone.utc)
    parent = artifact_path / "evaluations"
    parent.mkdir(exist_ok=True)
    tmp = parent / f".tmp-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    data_hash = files_hash(sorted(set(files.values())))
    data_lines = [f"- {role}: `{path}`" for role, path in files.items()]
    data_lines += [f"- {key}: {readable(value)}" for key, value in data.summary.items()]
    data_lines += [f"- data hash: `{data_hash}`"]
    if overrides:
        data_lines += [f"- overrides: {' '.join(overrides)}"]
    intro = (f"Evaluated {now.isoformat(timespec='seconds')}, primary metric "
             f"**{result.primary_metric}**.")
    lines = render(tmp, result, f"evaluation of {result.notes.get('model')}", intro, data_lines,
                   data, "Notes")
    (tmp / "report.md").write_text("\n".join(lines) + "\n")
    write_json(tmp / "metrics.json", {"primary_metric": result.primary_metric,
                                      "metrics": result.metrics, "details": result.details,
                                      "data": {r: str(p) for r, p in files.items()},
                                      "data_hash": data_hash, "notes": result.notes})
    name = now.strftime("%Y%m%dT%H%M%SZ")
    names = itertools.chain([name], (f"{name}-{n}" for n in itertools.count(2)))
    return rename_to_free(tmp, (parent / n for n in names))
