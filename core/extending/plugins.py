"""The plugin manager: loads plugins, collects what they register, isolates failures.

Plugins come from three places, in this order: the core's default plugin, the modules and
files named in registry.toml, and packages that declare the ``tunehub`` entry-point group.
Each plugin's hooks are called on their own, so a plugin that fails to import or register
is recorded as failed and skipped while the others keep working (``strict`` makes any
failure an error). A registry's allow/deny lists decide which plugins load at all; a
plugin they block is listed as ``disabled`` and never imported.
"""
from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
import os
import sys
import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pluggy

from . import hookspecs
from ..errors import ConfigError, PluginError, did_you_mean, unknown
from .heads import RegisteredHead
from .registry import ModelAlias, Registry, load_registry
from .tasks import TaskSpec, task_from

DEFAULT_PLUGIN = "tunehub.core.extending.defaults"
# Built-in heads: default plugins, always loaded, registering like any other plugin.
DEFAULT_HEAD_PLUGINS = ("tunehub.plugins.classification",)
REGISTRABLE = ("tasks", "datasets", "heads", "metrics", "baselines", "models", "commands",
         "run_listeners", "alert_rules", "alert_sinks")


class RunListenerWarning(UserWarning):
    """A run listener raised; the run went on."""


@dataclass
class PluginInfo:
    """What `app plugins` shows about one plugin."""

    name: str
    source: str  # built-in | registry | path | entry point | task files
    version: str = ""
    status: str = "ok"  # ok | failed | disabled
    error: str = ""  # why it failed or is disabled (one line)
    hooks: list[str] = field(default_factory=list)
    api: int | None = None  # the plugin API version it declares (TUNEHUB_PLUGIN_API)
    registry: str = ""  # the registry file that named it ("" for entry points)
    provides: dict[str, list[str]] = field(default_factory=dict)  # kind -> names registered
    warnings: list[str] = field(default_factory=list)  # e.g. a name another plugin registered too

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "source": self.source, "version": self.version,
                "status": self.status, "error": self.error, "hooks": self.hooks,
                "api": self.api, "registry": self.registry,
                "tasks": self.provides.get("tasks", []), "provides": self.provides,
                "warnings": self.warnings}


@dataclass(frozen=True)
class Metric:
    name: str
    fn: Callable[[Any], Any]
    higher_is_better: bool = True
    scalar: bool = True
    description: str = ""
    plugin: str = ""


@dataclass(frozen=True)
class Baseline:
    name: str
    fn: Callable[..., Any]
    description: str = ""
    plugin: str = ""


@dataclass(frozen=True)
class DatasetEntry:
    name: str
    files: dict[str, str]
    description: str = ""
    plugin: str = ""


@dataclass(frozen=True)
class AlertRule:
    name: str
    fn: Callable[..., Any]  # fn(window, history, settings) -> mapping or None
    description: str = ""
    plugin: str = ""


@dataclass(frozen=True)
class SinkFactory:
    name: str
    factory: Callable[..., Any]  # factory(target, settings) -> an object with send(alert)
    description: str = ""
    plugin: str = ""


@dataclass(frozen=True)
class PluginCommand:
    name: str
    command: Any  # a click.Command
    plugin: str = ""


@dataclass(frozen=True)
class RunListener:
    name: str  # "<plugin>#<n>": listeners have no names of their own
    fn: Callable[[dict[str, Any]], None]
    plugin: str = ""


def _command(obj: Any, plugin: str) -> PluginCommand:
    import click

    if not isinstance(obj, click.Command) or not obj.name:
        raise PluginError(
            f"plugin '{plugin}' registered {obj!r} as a command; pass a click.Command "
            "(a function decorated with @click.command())."
        )
    return PluginCommand(obj.name, obj, plugin)


def _register_callback(kind: str, plugin: str, out: list) -> Callable[..., None]:
    """The ``register`` callback handed to one plugin's ``register_<kind>`` hook."""

    def register(*args: Any, **kwargs: Any) -> None:
        if kind == "commands":
            out.append(_command(args[0], plugin))
        elif kind == "run_listeners":
            if not callable(args[0]):
                raise PluginError(f"plugin '{plugin}' registered a run listener that is not callable.")
            out.append(RunListener(f"{plugin}#{len(out) + 1}", args[0], plugin))
        elif kind == "tasks":
            out.append(task_from(args[0], plugin))
        elif kind == "heads":
            out.append(RegisteredHead(args[0], plugin))
        elif kind == "metrics":
            out.append(Metric(*args, **kwargs, plugin=plugin))
        elif kind == "baselines":
            out.append(Baseline(*args, **kwargs, plugin=plugin))
        elif kind == "datasets":
            name, *rest = args
            description = kwargs.pop("description", "")
            files = {k: str(v) for k, v in kwargs.items() if v}
            if rest:
                files["train"] = str(rest[0])
            out.append(DatasetEntry(name, files, description, plugin))
        elif kind == "models":
            out.append(ModelAlias(*args, **kwargs, plugin=plugin))
        elif kind in ("alert_rules", "alert_sinks"):
            if len(args) < 2 or not callable(args[1]):
                raise PluginError(f"plugin '{plugin}' registered {kind[:-1].replace('_', ' ')} "
                                  f"{args[:1]!r} without a callable; call register(name, fn).")
            out.append((AlertRule if kind == "alert_rules" else SinkFactory)(*args, **kwargs,
                                                                            plugin=plugin))

    return register


class Catalog:
    """Everything the loaded plugins registered, by kind and name."""

    def __init__(self, registry: Registry) -> None:
        self.registry = registry
        self.plugins: list[PluginInfo] = []
        self.items: dict[str, dict[str, Any]] = {kind: {} for kind in REGISTRABLE}
        self.owners: dict[str, dict[str, str]] = {kind: {} for kind in REGISTRABLE}  # kind -> name -> plugin
        # every entry also under its plugin-qualified name, "<plugin>:<name>": a name that two
        # plugins register stays reachable from both (the plain name is the first one's)
        self.qualified: dict[str, dict[str, Any]] = {kind: {} for kind in REGISTRABLE}
        self.pm = pluggy.PluginManager(hookspecs.PROJECT)
        self.pm.add_hookspecs(hookspecs)
        if os.environ.get("TUNEHUB_TRACE_PLUGINS", "") not in ("", "0"):
            # pluggy's hook-call tracing, one line per call and result, on stderr
            self.pm.trace.root.setwriter(lambda message: sys.stderr.write(message))
            self.pm.enable_tracing()
            self._trace: Callable[..., None] | None = self.pm.trace.root.get("plugin")
        else:
            self._trace = None

    # -- lookups -------------------------------------------------------------------
    def _get(self, kind: str, name: str, label: str, plugin: str = "") -> Any:
        """``name`` (or ``plugin:name``); with ``plugin``, that plugin's own entry first."""
        if plugin and f"{plugin}:{name}" in self.qualified[kind]:
            return self.qualified[kind][f"{plugin}:{name}"]
        if name in self.items[kind]:
            return self.items[kind][name]
        if name in self.qualified[kind]:
            return self.qualified[kind][name]
        raise ConfigError(unknown(label, name, self.items[kind])) from None

    def task(self, name: str) -> TaskSpec:
        return self._get("tasks", name, "task")

    def head(self, name: str, plugin: str = "") -> Any:
        """A head by name (or ``plugin:name``); with ``plugin``, that plugin's own first."""
        return self._get("heads", name, "head", plugin)

    def head_of(self, task: TaskSpec) -> Any:
        """The head a task names, resolved in the task's own plugin first: a head of the same
        name from another plugin (a newer built-in, say) never takes it over."""
        return self.head(task.head, task.plugin)

    def metric(self, name: str) -> Metric:
        return self._get("metrics", name, "metric")

    def baseline(self, name: str) -> Baseline:
        return self._get("baselines", name, "baseline")

    def dataset(self, name: str) -> DatasetEntry:
        return self._get("datasets", name, "dataset")

    def alert_rule(self, name: str) -> AlertRule:
        return self._get("alert_rules", name, "alert rule")

    def alert_sink(self, name: str) -> SinkFactory:
        return self._get("alert_sinks", name, "alert sink")

    def models(self) -> dict[str, ModelAlias]:
        return self.items["models"]

    @property
    def tasks(self) -> dict[str, TaskSpec]:
        return self.items["tasks"]

    @property
    def failed(self) -> list[PluginInfo]:
        return [info for info in self.plugins if info.status == "failed"]

    @property
    def commands(self) -> dict[str, PluginCommand]:
        return self.items["commands"]

    @property
    def run_listeners(self) -> list[RunListener]:
        return list(self.items["run_listeners"].values())

    def emit(self, event: dict[str, Any]) -> None:
        """Send a run event to every listener; a listener's failure is only a warning."""
        for listener in self.run_listeners:
            try:
                listener.fn(dict(event))
            except Exception as exc:
                warnings.warn(
                    f"run listener of plugin '{listener.plugin}' failed on "
                    f"{event.get('event')}: {_one_line(exc)}", RunListenerWarning, stacklevel=2,
                )

    # -- loading -------------------------------------------------------------------
    def add(self, obj: Any, info: PluginInfo, strict: bool) -> None:
        """Register one plugin object and merge what it registers, or record why not."""
        self.plugins.append(info)
        if self._trace:
            self._trace("loading", info.name, f"({info.source})")
        try:
            self._check_api(obj, info)
            self.pm.register(obj, name=info.name)
            try:
                self.pm.check_pending()
            except pluggy.PluginValidationError as exc:
                self.pm.unregister(name=info.name)
                hook = str(exc).split("'")[1] if "'" in str(exc) else str(exc)
                hooks = [h for h in dir(hookspecs) if h.startswith("register_")]
                raise PluginError(
                    f"implements unknown hook '{hook}'.{did_you_mean(hook, hooks)}"
                ) from None
            info.hooks = sorted(c.name for c in self.pm.get_hookcallers(obj) or [])
            staged = {kind: self._call(kind, info.name) for kind in REGISTRABLE}
            self._merge(staged, info.name, info)
            info.provides = {kind: [e.name for e in entries] for kind, entries in staged.items()
                             if entries and kind != "run_listeners"}
            if staged["run_listeners"]:
                info.provides["run_listeners"] = [str(len(staged["run_listeners"]))]
        except KeyboardInterrupt:
            raise
        except BaseException as exc:  # a plugin's failure must not take the others down
            if self.pm.is_registered(obj):
                self.pm.unregister(obj)
            info.status, info.error = "failed", _one_line(exc)
            if strict:
                raise PluginError(f"plugin '{info.name}' failed: {info.error}") from None

    def _check_api(self, obj: Any, info: PluginInfo) -> None:
        wanted = getattr(obj, "TUNEHUB_PLUGIN_API", None)
        info.api = wanted
        problem = hookspecs.api_problem(wanted) if wanted is not None else ""
        if problem:
            raise PluginError(problem)

    def _call(self, kind: str, plugin: str) -> list:
        """Call one plugin's ``register_<kind>`` alone (through pluggy, so tracing sees it)."""
        out: list = []
        others = [obj for name, obj in self.pm.list_name_plugin() if name != plugin and obj]
        caller = self.pm.subset_hook_caller(f"register_{kind}", others)
        if any(impl.plugin_name == plugin for impl in caller.get_hookimpls()):
            caller(register=_register_callback(kind, plugin, out))
        return out

    def _merge(self, staged: dict[str, list], plugin: str, info: PluginInfo | None = None) -> None:
        """Add one plugin's entries. A name another plugin already registered is a warning,
        never a failure: the plain name stays the first plugin's, this plugin's entry is
        ``plugin:name``, and this plugin's own tasks still find their head first."""
        for kind, entries in staged.items():
            seen: set[str] = set()
            for entry in entries:
                if entry.name in seen:
                    raise PluginError(f"{kind[:-1]} '{entry.name}' is registered twice by "
                                      f"'{plugin}'; rename one.")
                seen.add(entry.name)
        for kind, entries in staged.items():
            for entry in entries:
                self.qualified[kind][f"{plugin}:{entry.name}"] = entry
                first = self.owners[kind].get(entry.name)
                if first is None:
                    self.items[kind][entry.name] = entry
                    self.owners[kind][entry.name] = plugin
                elif info is not None and kind != "run_listeners":
                    info.warnings.append(
                        f"{kind[:-1].replace('_', ' ')} '{entry.name}' is also registered by "
                        f"'{first}', which keeps the plain name; this plugin's is "
                        f"'{plugin}:{entry.name}' (its own tasks use it).")


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    kind = type(exc).__name__
    return text if isinstance(exc, (PluginError, ConfigError)) else f"{kind}: {text}"


def _import_path(path: Path) -> Any:
    module_name = f"tunehub_local_{path.stem.replace('-', '_')}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise PluginError(f"cannot import {path}: not a Python file.")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _version(module_name: str) -> str:
    top = module_name.split(".")[0]
    try:
        return importlib.metadata.version(top)
    except importlib.metadata.PackageNotFoundError:
        return ""


@dataclass
class _Source:
    """A plugin to load: how to import it and the names allow/deny lists match."""

    info: PluginInfo
    load: Callable[[], Any]
    keys: tuple[str, ...] = ()


def _sources(registry: Registry) -> list[_Source]:
    origin = lambda key: str(registry.origins.get(key, ""))  # noqa: E731
    out = [_Source(PluginInfo(name, "built-in", _version(name)),
                   lambda n=name: importlib.import_module(n))
           for name in (DEFAULT_PLUGIN, *DEFAULT_HEAD_PLUGINS)]
    for name in registry.modules:
        if name in DEFAULT_HEAD_PLUGINS:
            continue
        source = "built-in" if name.startswith("tunehub.plugins.") else "registry"
        info = PluginInfo(name, source, _version(name), registry=origin(name))
        out.append(_Source(info, lambda n=name: importlib.import_module(n),
                           (name, name.rsplit(".", 1)[-1])))
    for path in registry.paths:
        info = PluginInfo(str(path), "path", registry=origin(str(path)))
        out.append(_Source(info, lambda p=path: _import_path(p), (str(path), path.stem, path.name)))
    for ep in importlib.metadata.entry_points(group=hookspecs.PROJECT):
        if ep.value.split(":")[0] in registry.modules:  # installed and listed: load once
            continue
        dist = getattr(ep, "dist", None)
        version = dist.version if dist is not None else _version(ep.value)
        info = PluginInfo(ep.name, "entry point", version)
        keys = (ep.name, ep.value.split(":")[0], dist.name if dist is not None else "")
        out.append(_Source(info, ep.load, keys))
    return out


def load_catalog(strict: bool = False, registries: Iterable[str | Path] = ()) -> Catalog:
    """Build a fresh catalog: default plugin, registry plugins, entry points, task files."""
    registry = load_registry(registries)
    catalog = Catalog(registry)
    for item in _sources(registry):
        info = item.info
        builtin = info.source == "built-in"
        why = registry.blocked(item.keys, builtin) if item.keys else ""  # core: always loads
        if why:
            info.status, info.error = "disabled", why
            catalog.plugins.append(info)
            continue
        try:
            obj = item.load()
        except KeyboardInterrupt:
            raise
        except BaseException as exc:  # SystemExit in a plugin must not end `app` either
            catalog.plugins.append(info)
            info.status, info.error = "failed", f"import failed: {_one_line(exc)}"
            if strict:
                raise PluginError(f"plugin '{info.name}' failed: {info.error}") from None
            continue
        info.version = info.version or str(getattr(obj, "__version__", ""))
        catalog.add(obj, info, strict)
    _add_task_files(catalog, registry, strict)
    for alias in registry.models:  # registry aliases win over plugin-registered ones
        catalog.items["models"][alias.name] = alias
        catalog.owners["models"][alias.name] = alias.plugin
    return catalog


def _add_task_files(catalog: Catalog, registry: Registry, strict: bool) -> None:
    """Task files listed in registries: one catalog entry per registry file that lists them."""
    by_file: dict[str, list[Path]] = {}
    for path in registry.task_files:
        by_file.setdefault(str(registry.origins.get(str(path), "")), []).append(path)
    for origin, paths in by_file.items():
        info = PluginInfo(f"tasks of {origin}", "task files", registry=origin)
        catalog.plugins.append(info)
        try:
            tasks = [task_from(path, "registry") for path in paths]
            catalog._merge({"tasks": tasks}, "registry")
            info.provides = {"tasks": [t.name for t in tasks]}
        except Exception as exc:
            info.status, info.error = "failed", _one_line(exc)
            if strict:
                raise PluginError(f"{info.name} failed: {info.error}") from None
