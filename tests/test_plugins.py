"""Plugin rules: duplicates, broken plugins, unknown hooks, API versions, --strict."""
from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner

from tunehub.core.cli import main
from tunehub.core.errors import PluginError
from tunehub.core.plugins import load_catalog


def plugin_registry(tmp_path: Path, **plugins: str) -> Path:
    """Write plugin files and a registry.toml that loads them by path."""
    for name, source in plugins.items():
        (tmp_path / f"{name}.py").write_text(textwrap.dedent(source))
    paths = ", ".join(f'"{name}.py"' for name in plugins)
    registry = tmp_path / "registry.toml"
    registry.write_text(f"[plugins]\npaths = [{paths}]\n")
    return registry


TASK_PLUGIN = """
    from tunehub.core.hookspecs import hookimpl

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


def test_duplicate_task_is_rejected_naming_both_plugins(tmp_path):
    registry = plugin_registry(tmp_path, one=TASK_PLUGIN % "dup", two=TASK_PLUGIN % "dup")
    catalog = load_catalog(registries=[registry])
    assert catalog.task("dup").plugin.endswith("one.py")  # the first keeps it
    failed = catalog.failed
    assert len(failed) == 1 and failed[0].name.endswith("two.py")
    assert "one.py" in failed[0].error and "two.py" in failed[0].error


def test_duplicate_of_builtin_task_is_rejected(tmp_path):
    catalog = load_catalog(registries=[plugin_registry(tmp_path, x=TASK_PLUGIN % "financial-sentiment")])
    assert catalog.task("financial-sentiment").plugin == "tunehub.plugins.financial_sentiment"
    assert "tunehub.plugins.financial_sentiment" in catalog.failed[0].error


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
        from tunehub.core.hookspecs import hookimpl

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
        from tunehub.core.hookspecs import hookimpl

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
