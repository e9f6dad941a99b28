"""`app models`: base-model aliases and fine-tuned versions; `show`, `rm`, `export`."""
from __future__ import annotations

from typing import Any

import click

from .output import catalog_from, emit_json, json_option, stdout_console, table, warn_failed


def _serving_refs() -> set[str]:
    """The version each task's ``@serving`` answers with (promoted, else latest)."""
    from ..artifacts import hub
    from ..errors import ModelError

    refs = set()
    for task in {a.task for a in hub.list_artifacts()}:
        try:
            refs.add(hub.find_artifact(f"{task}@serving").ref)
        except ModelError:  # a broken pointer: `app models promote` says how to fix it
            continue
    return refs


def _version_row(artifact, serving: set[str]) -> dict[str, Any]:
    from ..artifacts import hub

    manifest = artifact.manifest()
    size = hub.folder_size(artifact.path)
    return {
        "ref": artifact.ref, "task": artifact.task, "version": artifact.version,
        "serving": artifact.ref in serving,
        "base_model": manifest.get("base_model"),
        "primary_metric": manifest.get("primary_metric"),
        "value": manifest.get("primary_value"), "created": manifest.get("created"),
        "size_bytes": size, "size": hub.human_size(size), "path": str(artifact.path),
    }


def _short_base(base: Any) -> str:
    """A base model by alias or hub id as given; a local folder by its name (JSON: in full)."""
    from pathlib import Path

    text = str(base or "")
    return Path(text).name if text.startswith(("/", "~", ".")) else text


def _when(created: Any) -> str:
    """An ISO time as '2025-01-31 09:30' (UTC), which wraps at its space; JSON keeps it whole."""
    return str(created)[:16].replace("T", " ") if created else ""


def _short_source(alias) -> str:
    """A GGUF alias by its package (its chunk paths are long); anything else as given."""
    if alias.source.startswith("gguf:"):
        return f"GGUF in pip package {alias.package}" if alias.package else "GGUF in a pip package"
    return alias.source


def _artifact(ref: str):
    """TASK@vN, TASK@N, TASK@latest, TASK (latest) or an artifact folder."""
    from pathlib import Path

    from ..artifacts import hub

    bare_task = "@" not in ref and not (Path(ref).expanduser() / "manifest.json").is_file()
    return hub.artifact_for(f"{ref}@latest" if bare_task else ref)


@click.group("models", invoke_without_command=True)
@click.option("--all-metrics", is_flag=True,
              help="One column per metric of every version (a wide table), not just the primary.")
@json_option
@click.pass_context
def models(ctx: click.Context, all_metrics: bool, as_json: bool) -> None:
    """List base models (aliases) and fine-tuned versions.

    \b
    app models show TASK@v2       manifest, metrics and files of one version
    app models rm TASK@v1 --yes   delete a version
    app models export TASK@latest DIR   a folder that loads without tunehub
    """
    if ctx.invoked_subcommand is not None:
        return
    from ..artifacts import hub

    catalog = catalog_from(ctx)
    warn_failed(catalog)
    aliases = sorted(catalog.models().values(), key=lambda m: m.name)
    serving = _serving_refs()
    versions = [_version_row(a, serving) for a in hub.list_artifacts()]
    if as_json:
        emit_json({"base_models": [{"alias": m.name, "source": m.source, "licence": m.licence,
                                    "package": m.package, "description": m.description}
                                   for m in aliases],
                   "fine_tuned": versions})
        return
    console = stdout_console()
    console.print(table("Base models", ["alias", "source", "licence", "description"],
                        [[m.name, _short_source(m), m.licence, m.description] for m in aliases],
                        whole=("licence",)))
    if all_metrics:
        scores = [hub.artifact_for(v["path"]).metrics().get("metrics", {}) for v in versions]
        names = list(dict.fromkeys(name for metrics in scores for name in metrics))
        console.print(table(f"Fine-tuned versions ({hub.artifacts_root()})",
                            ["model", *names, "created"],
                            [[v["ref"], *(m.get(n, "") for n in names), _when(v["created"])]
                             for v, m in zip(versions, scores)]))
        return
    # the model column (TASK@vN) names task and version: never wrapped, never cut
    console.print(table(f"Fine-tuned versions ({hub.artifacts_root()}; @serving: what `app serve` "
                        "answers with)",
                        ["model", "base", "metric", "value", "created", "size", "serving"],
                        [[v["ref"], _short_base(v["base_model"]), v["primary_metric"], v["value"],
                          _when(v["created"]), v["size"], "@serving" if v["serving"] else ""]
                         for v in versions], whole=("metric", "value", "serving")))


@models.command("show")
@click.argument("ref")
@json_option
def show(ref: str, as_json: bool) -> None:
    """Details of one fine-tuned version (TASK@vN, TASK@latest or TASK)."""
    artifact = _artifact(ref)
    info = {**_version_row(artifact, _serving_refs()), "manifest": artifact.manifest(),
            "metrics": artifact.metrics().get("metrics", {}),
            "baselines": artifact.metrics().get("baselines", {}),
            "evaluations": sorted(p.name for p in (artifact.path / "evaluations").glob("[!.]*"))
            if (artifact.path / "evaluations").is_dir() else [],
            "files": sorted(str(p.relative_to(artifact.path)) for p in artifact.model_dir.rglob("*")
                            if p.is_file())}
    if as_json:
        emit_json(info)
        return
    console = stdout_console()
    manifest = info["manifest"]
    rows = [["path", info["path"]], ["size", info["size"]], ["base model", info["base_model"]],
            ["head", manifest.get("head")], ["created", info["created"]],
            ["data", ", ".join(f"{k}={v}" for k, v in manifest.get("data", {}).items())],
            ["data hash", manifest.get("data_hash")],
            ["evaluations", ", ".join(info["evaluations"]) or "none"],
            ["report", str(artifact.path / "report.md")]]
    console.print(table(info["ref"], ["", ""], rows))
    metric_rows = [[name, value, *(b.get(name, "") for b in info["baselines"].values())]
                   for name, value in info["metrics"].items()]
    console.print(table("metrics", ["metric", "model", *info["baselines"]], metric_rows))


@models.command("rm")
@click.argument("refs", nargs=-1, required=True)
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@click.option("--force", is_flag=True,
              help="Also delete the promoted (@serving) version, which is refused otherwise.")
@json_option
def rm(refs: tuple[str, ...], yes: bool, force: bool, as_json: bool) -> None:
    """Delete fine-tuned versions (TASK@vN ...). Asks first unless --yes."""
    from ..artifacts import hub
    from ..errors import ConfigError

    artifacts = [_artifact(ref) for ref in refs]
    serving = {task: hub.serving_version(task) for task in {a.task for a in artifacts}}
    for artifact in artifacts:
        if serving.get(artifact.task) == artifact.version and not force:
            raise ConfigError(f"{artifact.ref} is the promoted version (@serving): `app serve` "
                              "answers with it. Promote another version first, or add --force "
                              "to delete it anyway.")
    for artifact in artifacts:
        if not yes:
            if not click.get_text_stream("stdin").isatty():
                raise ConfigError(f"refusing to delete {artifact.ref} without confirmation: "
                                  "add --yes.")
            click.confirm(f"Delete {artifact.ref} ({artifact.path})?", abort=True, err=True)
        hub.remove_artifact(artifact)
        if not as_json:
            click.echo(f"removed {artifact.ref}", err=True)
    if as_json:
        emit_json({"removed": [a.ref for a in artifacts], "paths": [str(a.path) for a in artifacts]})


@models.command("export")
@click.argument("ref")
@click.argument("dest", type=click.Path(file_okay=False))
@click.option("--onnx", is_flag=True,
              help="Also write model.onnx (the whole pipeline, checked against torch with "
                   "onnxruntime, installed with tunehub).")
@click.option("--merged", is_flag=True,
              help="For a LoRA version: fold the adapter into the base model's weights and "
                   "write one plain folder (without it: the adapter and head, naming the base).")
@json_option
@click.pass_context
def export(ctx: click.Context, ref: str, dest: str, onnx: bool, merged: bool, as_json: bool) -> None:
    """Write version REF to folder DEST so that it loads without tunehub.

    The classification head exports a sentence-transformers folder whose output is the
    logits, with labels.json (on a decoder LLM: a transformers *ForSequenceClassification
    folder that pipeline() loads); bi-encoder tasks export their sentence-transformers
    folder. A LoRA version exports its adapter unless --merged. See the README's "Serving".
    """
    from ..artifacts import hub
    from ..running.runner import load_artifact_config, resolve_config

    artifact = _artifact(ref)
    catalog = catalog_from(ctx)
    spec = catalog.task(artifact.task)
    config = resolve_config(catalog, spec, base=load_artifact_config(artifact))
    from ..running.progress import phase

    with phase(f"exporting {artifact.ref}" + (" with ONNX (checked against torch)" if onnx else "")):
        info = hub.export_artifact(artifact, dest, catalog.head_of(spec), config, onnx=onnx,
                                   merged=merged)
    if as_json:
        emit_json(info)
    else:
        click.echo(f"exported {artifact.ref} -> {info['path']} ({info.get('format')})", err=True)


COMMANDS = [models]
