"""What the dashboard's versions page shows: each task's versions with their metrics beside
the baselines, which one is ``@serving``, a version's report as HTML, and the files its
report shows (images inside the artifact only)."""
from __future__ import annotations

import json
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import quote

from ..artifacts import hub
from ..errors import DataError, ModelError
from ..extending.tasks import valid_task_name

IMAGE_TYPES = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg",
               ".gif": "image/gif", ".webp": "image/webp"}


def version_of(task: str, version: str) -> hub.Artifact:
    """The hub's ``TASK@vN``; `ModelError` for anything else (a path, ``..``, a missing one)."""
    if not valid_task_name(task) or not hub.VERSION_RE.match(version or ""):
        raise ModelError(f"'{task}@{version}' is not a version of the hub; give TASK and vN.")
    return hub.find_artifact(f"{task}@{version}")


def artifact_file(task: str, version: str, relative: str) -> tuple[Path, str]:
    """(path, media type) of an image inside a version's folder; `DataError` for a path
    that leaves the folder (``..``, an absolute path, a link pointing out), a hidden
    file or another kind of file."""
    artifact = version_of(task, version)
    base = artifact.path.resolve()
    parts = PurePosixPath(relative).parts
    refused = (not relative or "\\" in relative or "\x00" in relative or relative.startswith("/")
               or any(part in ("..", ".") or part.startswith(".") for part in parts))
    target = (base / relative).resolve() if not refused else base
    kind = IMAGE_TYPES.get(target.suffix.lower())
    if refused or not target.is_relative_to(base) or not target.is_file() or kind is None:
        raise DataError(f"'{relative}' is not an image of {artifact.ref}.")
    return target, kind


def _scalars(values: Any) -> dict[str, float]:
    if not isinstance(values, dict):
        return {}
    return {k: v for k, v in values.items()
            if isinstance(v, (int, float)) and not isinstance(v, bool)}


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def public_base(base: Any) -> Any:
    """A base model by alias or hub id; a local folder by its name only."""
    if isinstance(base, str) and (base.startswith(("/", ".", "~")) or "\\" in base
                                  or base.count("/") > 1):
        return Path(base).name
    return base


def versions_overview() -> list[dict[str, Any]]:
    """Every task of the hub: its versions (oldest first) and its ``@serving`` pointer."""
    by_task: dict[str, list[hub.Artifact]] = {}
    for artifact in hub.list_artifacts():
        by_task.setdefault(artifact.task, []).append(artifact)
    tasks = []
    for task, artifacts in sorted(by_task.items()):
        try:
            serving, broken = hub.find_artifact(f"{task}@serving").version, None
        except ModelError as exc:
            serving, broken = None, str(exc)
        pointer = _read_json(hub.artifacts_root() / task / hub.SERVING_POINTER)
        versions = []
        for artifact in artifacts:
            manifest = _read_json(artifact.path / "manifest.json") or {}
            metrics = _read_json(artifact.path / "metrics.json") or {}
            promotion = _read_json(artifact.path / "promotion.json")
            versions.append({
                "version": artifact.version, "ref": artifact.ref,
                "serving": artifact.version == serving, "created": manifest.get("created"),
                "base_model": public_base(manifest.get("base_model")),
                "primary_metric": manifest.get("primary_metric"),
                "value": manifest.get("primary_value"),
                "metrics": _scalars(metrics.get("metrics")),
                "baselines": {name: _scalars(values)
                              for name, values in (metrics.get("baselines") or {}).items()},
                "feedback": manifest.get("feedback"), "promotion": promotion,
                "report": (artifact.path / "report.md").is_file()})
        tasks.append({"task": task, "serving": serving, "promoted": bool(pointer),
                      "pointer": pointer if isinstance(pointer, dict) else None,
                      "problem": broken, "versions": versions})
    return tasks


def report_html(task: str, version: str, files_url: str) -> str:
    """A version's ``report.md`` as HTML (raw HTML in it is escaped, never run); images
    inside the artifact are served from ``files_url``; any other image shows its text only
    (nothing is fetched from another host)."""
    from markdown_it import MarkdownIt
    from markdown_it.common.utils import escapeHtml

    artifact = version_of(task, version)
    path = artifact.path / "report.md"
    if not path.is_file():
        raise DataError(f"{artifact.ref} has no report.md.")
    md = MarkdownIt("commonmark", {"html": False}).enable("table")
    default = md.renderer.rules["image"]

    def image(tokens, idx, options, env):
        token = tokens[idx]
        src = str(token.attrGet("src") or "")
        if not src or ":" in src or src.startswith(("/", "\\")):  # not a file of the artifact
            return escapeHtml(md.renderer.renderInlineAsText(token.children or [], options, env))
        token.attrSet("src", f"{files_url}/{quote(src)}")
        token.attrSet("loading", "lazy")
        return default(tokens, idx, options, env)

    md.renderer.rules["image"] = image
    return md.render(path.read_text(encoding="utf-8", errors="replace"))
