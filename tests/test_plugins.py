"""Plugin rules: duplicates, broken plugins, unknown hooks, API versions, --strict."""
from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner

from tunehub.core.cli import main
from tunehub.core.errors import PluginError
from tunehub.core.extending.plugins import load_catalog
from tunehub.plugin import PLUGIN_API_VERSION


def plugin_registry(tmp_path: Path, **plugins: str) -> Path:
    """Write plugin files and a registry.toml that loads them by path."""
    for name, source in plugins.items():
        (tmp_path / f"{name}.py").write_text(textwrap.dedent(source))
    paths = ", ".join(f'"{name}.py"' for name in plugins)
    registry = tmp_path / "registry.toml"
    registry.write_text(f"[plugins]\npaths = [{paths}]\n")
    return registry


TASK_PLUGIN = """
    from tunehub.core.extending.hookspecs import hookimpl

    @hookimpl
    def register_tasks(register):
        register({"name": "%s", "head": {"name": "sequence-classification"},
                  "metrics": ["accuracy"]})
"""


def test_plugin_from_registry_path_adds_task(tmp_path):
    catalog = load_catalog(registries=[plugin_registry(tmp_path, acme=TASK_PLUGIN % "acme-task")])
    assert catalog.task("acme-task").plugin.endswith("acme.py")
    info = {p.name: p for p in catalog.plugins}[str(tmp_path / "acme.py")]
    assert (info.source, info.status, info.hooks) == ("path", "ok", ["register_tasks"])


def test_a_duplicate_task_loads_with_a_warning_under_its_qualified_name(tmp_path):
    registry = plugin_registry(tmp_path, one=TASK_PLUGIN % "dup", two=TASK_PLUGIN % "dup")
    catalog = load_catalog(registries=[registry])
    assert catalog.task("dup").plugin.endswith("one.py")  # the first keeps the plain name
    assert not catalog.failed
    second = str(tmp_path / "two.py")
    assert catalog.task(f"{second}:dup").plugin == second
    info = {p.name: p for p in catalog.plugins}[second]
    assert info.status == "ok" and "one.py" in info.warnings[0] and f"{second}:dup" in info.warnings[0]


def test_a_plugin_naming_a_builtin_task_still_loads(tmp_path):
    catalog = load_catalog(registries=[plugin_registry(tmp_path, x=TASK_PLUGIN % "financial-sentiment")])
    assert catalog.task("financial-sentiment").plugin == "tunehub.plugins.financial_sentiment"
    assert not catalog.failed
    (info,) = [p for p in catalog.plugins if p.name.endswith("x.py")]
    assert "tunehub.plugins.financial_sentiment" in info.warnings[0]


EVERY_BUILTIN_NAME = """
    from tunehub.plugin import FitOutput, TaskData, hookimpl

    class Head:
        def __init__(self, name):
            self.name = name

        def load_data(self, config, files):
            return TaskData([], [], dict(files))

        def fit(self, run):
            return FitOutput({})

        def predict(self, model_dir, inputs, config):
            return [{"mine": True} for _ in inputs]

    HEADS = %(heads)r

    @hookimpl
    def register_heads(register):
        for name in HEADS:
            register(Head(name))

    @hookimpl
    def register_metrics(register):
        for name in %(metrics)r:
            register(name, lambda outputs: 0.0)

    @hookimpl
    def register_baselines(register):
        for name in %(baselines)r:
            register(name, lambda data, config: {})

    @hookimpl
    def register_tasks(register):
        register({"name": "legacy-ner", "head": {"name": "token-classification"}})
"""


def test_a_plugin_registering_every_builtin_name_keeps_working(tmp_path):
    """Written against an older release, before the built-ins took these names."""
    builtin = load_catalog()
    names = {kind: sorted(builtin.items[kind]) for kind in ("heads", "metrics", "baselines")}
    source = EVERY_BUILTIN_NAME % names
    catalog = load_catalog(registries=[plugin_registry(tmp_path, legacy=source)])
    assert not catalog.failed
    (info,) = [p for p in catalog.plugins if p.name.endswith("legacy.py")]
    assert info.status == "ok"
    assert len(info.warnings) == sum(len(v) for v in names.values())
    own = catalog.head_of(catalog.task("legacy-ner"))
    assert own.plugin.endswith("legacy.py")  # its own task finds its own head first
    assert catalog.head_of(catalog.task("entity-extraction")).plugin == "tunehub.plugins.entity_extraction"
    listed = CliRunner().invoke(main, ["--registry", str(tmp_path / "registry.toml"), "plugins", "--json"])
    legacy = [p for p in json.loads(listed.stdout) if p["name"].endswith("legacy.py")][0]
    assert legacy["status"] == "ok" and legacy["warnings"]


def test_plugin_that_fails_to_import_is_skipped(tmp_path):
    registry = plugin_registry(tmp_path, broken="import not_a_module_anywhere\n",
                               good=TASK_PLUGIN % "still-here")
    catalog = load_catalog(registries=[registry])
    assert "still-here" in catalog.tasks and "financial-sentiment" in catalog.tasks
    (failed,) = catalog.failed
    assert failed.name.endswith("broken.py") and "import failed" in failed.error
    assert "not_a_module_anywhere" in failed.error


def test_plugin_that_fails_to_register_is_skipped_whole(tmp_path):
    source = """
        from tunehub.core.extending.hookspecs import hookimpl

        @hookimpl
        def register_metrics(register):
            register("half", lambda outputs: 0.0)

        @hookimpl
        def register_tasks(register):
            raise RuntimeError("database unreachable")
    """
    catalog = load_catalog(registries=[plugin_registry(tmp_path, flaky=source)])
    assert "RuntimeError: database unreachable" in catalog.failed[0].error
    assert "half" not in catalog.items["metrics"]  # nothing of a failed plugin is kept


def test_unknown_hook_is_caught_with_suggestion(tmp_path):
    source = """
        from tunehub.core.extending.hookspecs import hookimpl

        @hookimpl
        def register_taks(register):
            pass
    """
    catalog = load_catalog(registries=[plugin_registry(tmp_path, typo=source)])
    error = catalog.failed[0].error
    assert "unknown hook 'register_taks'" in error and "register_tasks" in error


def test_incompatible_plugin_api_is_refused(tmp_path):
    source = "TUNEHUB_PLUGIN_API = 99\n" + textwrap.dedent(TASK_PLUGIN % "future")
    catalog = load_catalog(registries=[plugin_registry(tmp_path, future=source)])
    assert "future" not in catalog.tasks
    assert "needs plugin API 99" in catalog.failed[0].error


def test_strict_makes_a_failure_fatal(tmp_path):
    registry = plugin_registry(tmp_path, broken="raise ImportError('no wheel for this platform')\n")
    with pytest.raises(PluginError, match="no wheel for this platform"):
        load_catalog(strict=True, registries=[registry])
    result = CliRunner().invoke(main, ["--strict", "--registry", str(registry), "list-tasks"])
    assert result.exit_code == 2 and "no wheel for this platform" in result.stderr


def test_app_plugins_shows_failed_plugin(tmp_path):
    registry = plugin_registry(tmp_path, broken="1/0\n")
    result = CliRunner().invoke(main, ["--registry", str(registry), "plugins", "--json"])
    assert result.exit_code == 0
    status = {p["name"]: (p["status"], p["error"]) for p in json.loads(result.stdout)}
    assert status[str(tmp_path / "broken.py")] == ("failed", "import failed: ZeroDivisionError: division by zero")


def test_registry_model_alias_and_task_folder(tmp_path):
    tasks = tmp_path / "tasks"
    tasks.mkdir()
    (tasks / "extra.toml").write_text('name = "extra"\n[head]\nname = "sequence-classification"\n')
    registry = tmp_path / "registry.toml"
    registry.write_text('[tasks]\npaths = ["tasks"]\n[models.local]\nsource = "./weights"\n')
    catalog = load_catalog(registries=[registry])
    assert catalog.task("extra").source == str(tasks / "extra.toml")
    assert catalog.models()["local"].source == str(tmp_path / "weights")


# -- where plugins come from: entry points, registry layers, allow/deny lists -------------
def entry_point_plugin(tmp_path: Path, monkeypatch, module: str, task: str):
    """Make ``module`` importable and announce it in the ``tunehub`` entry-point group."""
    import importlib.metadata as md

    folder = tmp_path / "site"
    folder.mkdir(exist_ok=True)
    (folder / f"{module}.py").write_text(textwrap.dedent(TASK_PLUGIN % task))
    monkeypatch.syspath_prepend(str(folder))
    ep = md.EntryPoint(module, module, "tunehub")
    real = md.entry_points
    monkeypatch.setattr(md, "entry_points",
                        lambda **kw: [ep] if kw.get("group") == "tunehub" else real(**kw))


def test_entry_point_plugin_loads_once_even_if_also_in_a_registry(tmp_path, monkeypatch):
    entry_point_plugin(tmp_path, monkeypatch, "acme_ep", "acme-ep-task")
    catalog = load_catalog()
    info = {p.name: p for p in catalog.plugins}["acme_ep"]
    assert (info.source, info.status, info.registry) == ("entry point", "ok", "")
    assert catalog.task("acme-ep-task").plugin == "acme_ep"
    registry = tmp_path / "registry.toml"
    registry.write_text('[plugins]\nmodules = ["acme_ep"]\n')
    catalog = load_catalog(registries=[registry])
    assert [p.source for p in catalog.plugins if p.name == "acme_ep"] == ["registry"]
    assert not catalog.failed


@pytest.fixture
def layers(tmp_path, monkeypatch):
    """A user config registry, a project registry (the working directory) and an env one."""
    def write(folder: Path, alias_source: str, plugin: str) -> Path:
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{plugin}.py").write_text(textwrap.dedent(TASK_PLUGIN % plugin))
        path = folder / "registry.toml"
        path.write_text(f'[plugins]\npaths = ["{plugin}.py"]\n'
                        f'[models.layered]\nsource = "{alias_source}"\n')
        return path

    user = write(tmp_path / "xdg" / "tunehub", "user-model", "user_plugin")
    project = write(tmp_path / "project", "project-model", "project_plugin")
    env = write(tmp_path / "env", "env-model", "env_plugin")
    cli = write(tmp_path / "cli", "cli-model", "cli_plugin")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    monkeypatch.chdir(tmp_path / "project")
    monkeypatch.setenv("TUNEHUB_REGISTRY", str(env))
    return {"user": user, "project": project, "env": env, "cli": cli}


def test_registries_layer_builtin_user_project_env_cli(layers):
    from tunehub.core.extending.registry import builtin_registry

    catalog = load_catalog(registries=[layers["cli"]])
    files = catalog.registry.files
    assert files == [builtin_registry().resolve(), layers["user"], layers["project"],
                     layers["env"], layers["cli"]]
    assert catalog.models()["layered"].source == "cli-model"  # the last layer wins
    tasks = {name: catalog.task(name) for name in
             ("user_plugin", "project_plugin", "env_plugin", "cli_plugin")}
    origins = {p.name: p.registry for p in catalog.plugins}
    for layer, registry in layers.items():
        plugin = str(registry.parent / f"{layer}_plugin.py")
        assert origins[plugin] == str(registry) and tasks[f"{layer}_plugin"].plugin == plugin


def test_registry_read_once_when_the_project_is_the_builtin(monkeypatch):
    from tunehub.core.extending.registry import builtin_registry

    monkeypatch.chdir(builtin_registry().parent)
    monkeypatch.setenv("XDG_CONFIG_HOME", "/nonexistent")
    catalog = load_catalog(registries=[builtin_registry()])
    assert catalog.registry.files == [builtin_registry().resolve()]
    assert not catalog.failed


def test_plugins_json_shows_origin_of_plugins_and_task_files(tmp_path):
    tasks = tmp_path / "tasks"
    tasks.mkdir()
    (tasks / "extra.toml").write_text('name = "extra"\n[head]\nname = "sequence-classification"\n')
    registry = plugin_registry(tmp_path, acme=TASK_PLUGIN % "acme-task")
    registry.write_text(registry.read_text() + '[tasks]\npaths = ["tasks"]\n')
    result = CliRunner().invoke(main, ["--registry", str(registry), "plugins", "--json"])
    plugins = {p["name"]: p for p in json.loads(result.stdout)}
    acme = plugins[str(tmp_path / "acme.py")]
    assert (acme["registry"], acme["tasks"], acme["api"]) == (str(registry), ["acme-task"], None)
    files = plugins[f"tasks of {registry}"]
    assert (files["source"], files["tasks"], files["status"]) == ("task files", ["extra"], "ok")
    builtin = plugins["tunehub.plugins.financial_sentiment"]
    assert builtin["tasks"] == ["financial-sentiment", "financial-sentiment-zh"]
    assert builtin["api"] == PLUGIN_API_VERSION
    assert builtin["registry"].endswith("registry.toml")


def test_deny_list_disables_a_plugin_without_importing_it(tmp_path, monkeypatch):
    registry = plugin_registry(tmp_path, boom="raise SystemExit('must not be imported')\n",
                               good=TASK_PLUGIN % "good-task")
    registry.write_text(registry.read_text() + 'deny = ["boom"]\n')
    catalog = load_catalog(registries=[registry])
    info = {p.name: p for p in catalog.plugins}[str(tmp_path / "boom.py")]
    assert info.status == "disabled" and f"denied by 'boom' in {registry}" in info.error
    assert "good-task" in catalog.tasks and not catalog.failed

    monkeypatch.setenv("TUNEHUB_PLUGINS_DENY", "tunehub.plugins.financial_sentiment, good")
    catalog = load_catalog(registries=[registry])
    assert not {"financial-sentiment", "good-task"} & set(catalog.tasks)
    assert "TUNEHUB_PLUGINS_DENY" in {p.name: p for p in catalog.plugins}[
        "tunehub.plugins.financial_sentiment"].error


def test_allow_list_limits_extra_plugins_and_keeps_builtins(tmp_path, monkeypatch):
    registry = plugin_registry(tmp_path, acme_one=TASK_PLUGIN % "one", other=TASK_PLUGIN % "two")
    monkeypatch.setenv("TUNEHUB_PLUGINS_ALLOW", "acme_*")
    catalog = load_catalog(registries=[registry])
    assert {"one", "financial-sentiment"} <= set(catalog.tasks) and "two" not in catalog.tasks
    status = {p.name: (p.status, p.error) for p in catalog.plugins}
    assert status[str(tmp_path / "other.py")] == (
        "disabled", "not in the allow list (TUNEHUB_PLUGINS_ALLOW)")
    monkeypatch.setenv("COLUMNS", "160")  # wide enough that no status word is folded
    result = CliRunner().invoke(main, ["--registry", str(registry), "plugins"])
    assert result.exit_code == 0 and "disabled" in result.stdout


def test_bad_allow_list_in_registry_is_a_clear_error(tmp_path):
    registry = tmp_path / "registry.toml"
    registry.write_text('[plugins]\nallow = "acme"\ndney = ["x"]\n')
    result = CliRunner().invoke(main, ["--registry", str(registry), "list-tasks"])
    assert result.exit_code == 2 and "unknown key(s) dney" in result.stderr


def test_trace_plugins_writes_hook_calls_to_stderr(monkeypatch, capsys):
    monkeypatch.setenv("TUNEHUB_TRACE_PLUGINS", "1")
    load_catalog()
    captured = capsys.readouterr()
    assert "register_tasks" in captured.err and "register_heads" in captured.err
    assert "loading tunehub.plugins.financial_sentiment (built-in) [plugin]" in captured.err
    assert captured.out == ""
    monkeypatch.setenv("TUNEHUB_TRACE_PLUGINS", "0")
    load_catalog()
    assert capsys.readouterr().err == ""


# -- plugin commands: isolation and light imports -----------------------------------------
BROKEN_COMMANDS = """
    from tunehub.core.extending.hookspecs import hookimpl

    @hookimpl
    def register_commands(register):
        register("not a command")
"""
SHADOWING = """
    import click
    from tunehub.core.extending.hookspecs import hookimpl

    @hookimpl
    def register_commands(register):
        register(click.Command("plugins", callback=lambda: click.echo("hijacked")))
"""


def test_broken_or_shadowing_plugin_commands_do_not_break_the_cli(tmp_path):
    registry = plugin_registry(tmp_path, broken="1/0\n", badcmd=BROKEN_COMMANDS, shadow=SHADOWING)
    runner = CliRunner()
    helped = runner.invoke(main, ["--registry", str(registry), "--help"])
    assert helped.exit_code == 0 and "list-tasks" in helped.output
    listed = runner.invoke(main, ["--registry", str(registry), "plugins", "--json"])
    assert listed.exit_code == 0 and "hijacked" not in listed.stdout
    status = {p["name"]: p for p in json.loads(listed.stdout)}
    assert "pass a click.Command" in status[str(tmp_path / "badcmd.py")]["error"]
    unknown = runner.invoke(main, ["--registry", str(registry), "no-such-command"])
    assert unknown.exit_code == 2 and "No such command" in unknown.output


def test_help_with_plugin_commands_imports_no_heavy_library(tmp_path):
    import subprocess
    import sys

    (tmp_path / "cmd.py").write_text(textwrap.dedent("""
        import click
        from tunehub.core.extending.hookspecs import hookimpl

        @hookimpl
        def register_commands(register):
            register(click.Command("light-cmd", help="A light command."))
    """))
    registry = tmp_path / "registry.toml"
    registry.write_text('[plugins]\npaths = ["cmd.py"]\n')
    code = ("import sys\nfrom tunehub.core.cli import main\n"
            f"try:\n    main(['--registry', {str(registry)!r}, '--help'])\nexcept SystemExit:\n    pass\n"
            "print('HEAVY', [m for m in ('torch', 'transformers', 'faiss') if m in sys.modules])\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "light-cmd" in out.stdout and "HEAVY []" in out.stdout


def test_relative_paths_in_a_task_file_are_read_from_its_folder(tmp_path, monkeypatch,
                                                                labelled_csv):
    import shutil

    folder = tmp_path / "team" / "tasks"
    (folder / "data").mkdir(parents=True)
    shutil.copy(labelled_csv, folder / "data" / "train.csv")
    (folder / "tone.toml").write_text(
        'name = "tone"\nmetrics = ["accuracy"]\n[head]\nname = "sequence-classification"\n'
        '[dataset]\ntrain = "data/train.csv"\n')
    (folder / "gone.toml").write_text(
        'name = "gone"\nmetrics = ["accuracy"]\n[head]\nname = "sequence-classification"\n'
        '[dataset]\ntrain = "data/missing.csv"\n')
    registry = tmp_path / "registry.toml"
    registry.write_text(f'[tasks]\npaths = ["{folder}"]\n')
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # not the task file's folder
    cli = CliRunner()
    ok = cli.invoke(main, ["--registry", str(registry), "validate-data", "tone"])
    assert ok.exit_code == 0, ok.output
    gone = cli.invoke(main, ["--registry", str(registry), "validate-data", "gone"])
    assert gone.exit_code == 2
    assert f"{folder / 'gone.toml'}: dataset.train = 'data/missing.csv': no such file" in gone.output
