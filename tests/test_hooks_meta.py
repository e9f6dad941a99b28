"""Every hook has a test and a docs entry (meta-tests), and one `test_hook_<name>` each.

Each hook test registers a throwaway plugin on a fresh catalog (or through a registry
file when the CLI must see it) and checks what a user relies on.
"""
from __future__ import annotations

import inspect
import json
import re
import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner

from tunehub.core.extending import hookspecs
from tunehub.core.artifacts import hub
from tunehub.core.cli import main
from tunehub.core.errors import DataError
from tunehub.core.extending.heads import TaskData
from tunehub.core.extending.hookspecs import hookimpl
from tunehub.core.extending.plugins import PluginInfo, RunListenerWarning, load_catalog
from tunehub.core.running.runner import data_files, prepare, resolve_config, run_task, score

from conftest import tiny_overrides, write_csv

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs" / "plugins.md"


def hook_names() -> list[str]:
    return sorted(name for name, fn in vars(hookspecs).items()
                  if callable(fn) and hasattr(fn, f"{hookspecs.PROJECT}_spec"))


def missing_tests(hooks: list[str], sources: list[str]) -> list[str]:
    return [h for h in hooks if not any(f"def test_hook_{h}(" in s for s in sources)]


def documented_signatures(text: str) -> dict[str, list[str]]:
    """``### register_x(a, b)`` headings in the docs -> parameter names."""
    found = re.findall(r"^###\s+`?(register_\w+)\(([^)]*)\)`?\s*$", text, re.MULTILINE)
    return {name: [p.strip() for p in params.split(",") if p.strip()] for name, params in found}


# -- meta-tests -------------------------------------------------------------------------
def test_there_are_hooks_to_check():
    assert {"register_tasks", "register_commands", "register_run_listeners"} <= set(hook_names())


def test_plugin_hooks_have_tests():
    sources = [p.read_text() for p in (ROOT / "tests").glob("test_*.py")]
    assert missing_tests(hook_names(), sources) == []


def test_missing_hook_test_is_detected():
    assert missing_tests(["register_nothing"], ["def test_hook_register_tasks():"]) == ["register_nothing"]


@pytest.mark.parametrize("hook", hook_names())
def test_plugin_hooks_are_documented(hook):
    documented = documented_signatures(DOCS.read_text())
    assert hook in documented, f"docs/plugins.md has no '### {hook}(...)' entry"
    expected = list(inspect.signature(getattr(hookspecs, hook)).parameters)
    assert documented[hook] == expected


def test_docs_describe_no_hook_that_does_not_exist():
    assert set(documented_signatures(DOCS.read_text())) <= set(hook_names())


# -- one test per hook ------------------------------------------------------------------
def with_plugin(plugin: object, name: str = "throwaway"):
    """A fresh catalog plus ``plugin`` (strict: a mistake in the test plugin fails loudly)."""
    catalog = load_catalog()
    catalog.add(plugin, PluginInfo(name, "test"), strict=True)
    return catalog


TASK = {"name": "throwaway-task", "description": "a test task",
        "head": {"name": "sequence-classification"}, "metrics": ["accuracy"]}


def test_hook_register_tasks():
    class Plugin:
        @hookimpl
        def register_tasks(self, register):
            register(TASK)

    catalog = with_plugin(Plugin())
    try:
        spec = catalog.task("throwaway-task")
        assert (spec.plugin, spec.head, spec.source) == ("throwaway", "sequence-classification",
                                                         "<throwaway>")
        assert resolve_config(catalog, spec)["primary_metric"] == "accuracy"
    finally:
        catalog.pm.unregister(name="throwaway")


def test_hook_register_datasets(tmp_path, labelled_csv):
    class Plugin:
        @hookimpl
        def register_datasets(self, register):
            register("throwaway-data", train=labelled_csv, eval=None, faq=tmp_path / "faq.csv",
                     description="test rows")

        @hookimpl
        def register_tasks(self, register):
            register({**TASK, "dataset": {"name": "throwaway-data"}})

    catalog = with_plugin(Plugin())
    try:
        entry = catalog.dataset("throwaway-data")
        assert entry.files == {"train": str(labelled_csv), "faq": str(tmp_path / "faq.csv")}
        config = resolve_config(catalog, catalog.task("throwaway-task"))
        assert data_files(config, catalog)["train"] == labelled_csv
    finally:
        catalog.pm.unregister(name="throwaway")


class EchoHead:
    """A head without a model: enough to see the core call it."""

    name = "echo"
    description = "returns its inputs"
    schema = {"head.shout": False}

    def load_data(self, config, files):
        rows = Path(files["train"]).read_text().splitlines()[1:]
        return TaskData(rows, rows, dict(files), {"rows": len(rows)}, {"labels": ["x"]})

    def fit(self, run):
        raise NotImplementedError

    def evaluate(self, model_dir, data, config):
        return {}

    def predict(self, model_dir, inputs, config):
        shout = config["head"]["shout"]
        return [{"text": t.upper() if shout else t} for t in inputs]


def test_hook_register_heads(labelled_csv):
    class Plugin:
        @hookimpl
        def register_heads(self, register):
            register(EchoHead())

        @hookimpl
        def register_tasks(self, register):
            register({**TASK, "head": {"name": "echo", "shout": True}})

    catalog = with_plugin(Plugin())
    try:
        assert catalog.owners["heads"]["echo"] == "throwaway"
        p = prepare("throwaway-task", data=labelled_csv, catalog=catalog)
        assert p.config["head"]["shout"] is True  # the head's schema types the task file
        assert p.head.load_data(p.config, p.files).summary == {"rows": 18}
    finally:
        catalog.pm.unregister(name="throwaway")


def test_hook_register_metrics():
    class Plugin:
        @hookimpl
        def register_metrics(self, register):
            register("mean_length", lambda outputs: sum(map(len, outputs["texts"])) / 2,
                     higher_is_better=False, description="average length")
            register("lengths", lambda outputs: [len(t) for t in outputs["texts"]], scalar=False)

    catalog = with_plugin(Plugin())
    try:
        assert catalog.metric("mean_length").higher_is_better is False
        scalars, details = score(catalog, ["mean_length", "lengths"], {"texts": ["ab", "abcd"]})
        assert scalars == {"mean_length": 3.0} and details == {"lengths": [2, 4]}
    finally:
        catalog.pm.unregister(name="throwaway")


def test_hook_register_baselines(labelled_csv):
    def always_first(data, config):
        return {"labels": data.info["labels"], "y_true": list(data.eval.labels),
                "y_pred": [0] * len(data.eval.labels)}

    class Plugin:
        @hookimpl
        def register_baselines(self, register):
            register("always-first", always_first, description="predicts the first label")

    catalog = with_plugin(Plugin())
    try:
        p = prepare("financial-sentiment", data=labelled_csv, catalog=catalog,
                    overrides=["baselines=always-first"])
        data = p.head.load_data(p.config, p.files)
        outputs = catalog.baseline("always-first").fn(data, p.config)
        scalars, _ = score(catalog, ["accuracy"], outputs)
        assert abs(scalars["accuracy"] - 1 / 3) < 0.2  # one label of three, stratified split
    finally:
        catalog.pm.unregister(name="throwaway")


def test_hook_register_models(tiny_model):
    class Plugin:
        @hookimpl
        def register_models(self, register):
            register("tiny", str(tiny_model), description="a tiny test model")

    catalog = with_plugin(Plugin())
    try:
        assert catalog.models()["tiny"].plugin == "throwaway"
        assert hub.resolve_model("tiny", catalog.models()) == Path(tiny_model)
    finally:
        catalog.pm.unregister(name="throwaway")


COMMAND_PLUGIN = """
    import click
    from tunehub.core.extending.hookspecs import hookimpl

    @click.command("hello-plugin")
    @click.option("--name", default="world")
    def hello(name):
        '''Say hello from a plugin.'''
        click.echo(f"hello {name}")

    @hookimpl
    def register_commands(register):
        register(hello)
"""


def test_hook_register_commands(tmp_path):
    (tmp_path / "cmd.py").write_text(textwrap.dedent(COMMAND_PLUGIN))
    registry = tmp_path / "registry.toml"
    registry.write_text('[plugins]\npaths = ["cmd.py"]\n')
    runner = CliRunner()
    helped = runner.invoke(main, ["--registry", str(registry), "--help"])
    assert helped.exit_code == 0 and "hello-plugin" in helped.output
    assert "Say hello from a plugin." in helped.output
    ran = runner.invoke(main, ["--registry", str(registry), "hello-plugin", "--name", "acme"])
    assert ran.exit_code == 0 and ran.output == "hello acme\n"
    listed = json.loads(runner.invoke(main, ["--registry", str(registry), "plugins", "--json"]).stdout)
    mine = {p["name"]: p for p in listed}[str(tmp_path / "cmd.py")]
    assert mine["hooks"] == ["register_commands"] and mine["provides"]["commands"] == ["hello-plugin"]
    assert "hello-plugin" not in runner.invoke(main, ["--help"]).output  # only with its registry


def test_hook_register_run_listeners(tiny_model, labelled_csv, tmp_path):
    events: list[dict] = []

    class Plugin:
        @hookimpl
        def register_run_listeners(self, register):
            register(events.append)
            register(lambda event: 1 / 0)  # a broken listener only warns

    catalog = with_plugin(Plugin())
    try:
        with pytest.warns(RunListenerWarning, match="ZeroDivisionError"):
            result = run_task("financial-sentiment", data=labelled_csv, model=str(tiny_model),
                              overrides=tiny_overrides(**{"train.max_steps": "1"}), catalog=catalog)
        assert [e["event"] for e in events] == ["run_started", "run_finished"]
        started, finished = events
        assert started["task"] == "financial-sentiment" and started["config"]["model"] == str(tiny_model)
        assert finished["metrics"] == result.metrics and finished["artifact"] == result.artifact
        assert finished["version"] == "v1"
        assert finished["below_baseline"] == result.below_baseline  # [] or the baselines ahead

        events.clear()
        bad = write_csv(tmp_path / "bad.csv", ["body", "label"], [["x", "positive"]])
        with pytest.raises(DataError), pytest.warns(RunListenerWarning):
            run_task("financial-sentiment", data=bad, model=str(tiny_model), catalog=catalog)
        assert [e["event"] for e in events] == ["run_started", "run_failed"]
        assert "DataError" in events[1]["error"]
    finally:
        catalog.pm.unregister(name="throwaway")
