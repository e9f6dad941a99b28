"""registry.toml: which plugins to load, extra task files, and base-model aliases.

The built-in registry ships inside the package. More registries layer on top of it, in
order: the files named in ``TUNEHUB_REGISTRY`` (separated by the OS path separator), then
``--registry`` files. Relative paths in a registry are relative to that file.
"""
from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from .errors import ConfigError
from .tasks import read_toml

KNOWN_SECTIONS = {"plugins", "tasks", "models"}


@dataclass
class Registry:
    modules: list[str] = field(default_factory=list)
    paths: list[Path] = field(default_factory=list)
    task_files: list[Path] = field(default_factory=list)
    models: list = field(default_factory=list)
    files: list[Path] = field(default_factory=list)


def builtin_registry() -> Path:
    return Path(str(resources.files("tunehub") / "registry.toml"))


def _merge_file(registry: Registry, path: Path) -> None:
    from .plugins import ModelAlias  # plugins imports this module

    data = read_toml(path, "registry file")
    extra = set(data) - KNOWN_SECTIONS
    if extra:
        raise ConfigError(
            f"registry file {path}: unknown section(s) {', '.join(sorted(extra))}; "
            f"allowed: {', '.join(sorted(KNOWN_SECTIONS))}."
        )
    base = path.parent
    plugins = data.get("plugins", {})
    for name in plugins.get("modules", []):
        if name not in registry.modules:
            registry.modules.append(name)
    registry.paths += [(base / p).resolve() for p in plugins.get("paths", [])]
    for entry in data.get("tasks", {}).get("paths", []):
        target = (base / entry).resolve()
        registry.task_files += sorted(target.glob("*.toml")) if target.is_dir() else [target]
    for alias, spec in data.get("models", {}).items():
        spec = {"source": spec} if isinstance(spec, str) else dict(spec)
        if "source" not in spec:
            raise ConfigError(f"registry file {path}: model alias '{alias}' needs a 'source'.")
        source = spec["source"]
        if source.startswith((".", "/")) or source.startswith("~"):
            source = str((base / Path(source).expanduser()).resolve())
        registry.models = [m for m in registry.models if m.name != alias]
        registry.models.append(
            ModelAlias(alias, source, spec.get("description", ""), plugin=str(path))
        )
    registry.files.append(path)


def load_registry(extra: Iterable[str | Path] = ()) -> Registry:
    registry = Registry()
    layers = [builtin_registry()]
    layers += [Path(p) for p in os.environ.get("TUNEHUB_REGISTRY", "").split(os.pathsep) if p]
    layers += [Path(p) for p in extra]
    seen: set[Path] = set()
    for path in layers:
        resolved = path.expanduser().resolve()
        if resolved not in seen:
            seen.add(resolved)
            _merge_file(registry, resolved)
    return registry
