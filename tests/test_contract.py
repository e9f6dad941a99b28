"""The task contract (tunehub.testing) over every registered task, and its own checks.

A new task, built-in or from an installed plugin, is covered here without new tests.
"""
from __future__ import annotations

import math
import textwrap
from pathlib import Path

import pytest

from tunehub.core.extending.plugins import load_catalog
from tunehub.core.extending.heads import FitOutput, TaskData
from tunehub.core.extending.hookspecs import hookimpl
from tunehub.core.extending.plugins import PluginInfo
from tunehub.testing import (
    CONTRACT_OVERRIDES,
    Contract,
    check_data,
    check_determinism,
    check_metrics,
)

TASKS = sorted(load_catalog().tasks)  # whatever is registered at collection time
# Settings that keep a task's contract run short (answers a few tokens long): the checks
# are the same, the tiny model writes less.
SHORT = {"customer-service-answers": ["generate.max_new_tokens=4", "generate.entries=2"],
         "support-answers": ["predict.max_new_tokens=4"]}


@pytest.mark.parametrize("task", TASKS)
def test_registered_task_passes_the_contract(task, tiny_model):
    """Every check, including a second run with the same seed and --quantize int8."""
    result, answers = Contract(task, model=tiny_model, overrides=SHORT.get(task, ())).run_all()
    assert set(result.metrics) and all(math.isfinite(v) for v in result.metrics.values())
    assert answers and all(isinstance(a, dict) for a in answers)


def test_the_builtin_tasks_are_covered():
    assert "financial-sentiment" in TASKS and "entity-extraction" in TASKS


def test_contract_settings_are_tiny():
    assert CONTRACT_OVERRIDES["train.max_steps"] == "2"


def broken_task_registry(tmp_path, task_values: str, plugin: str = ""):
    """A registry with a task file (and optionally a plugin file)."""
    (tmp_path / "task.toml").write_text(textwrap.dedent(task_values))
    lines = ['[tasks]\npaths = ["task.toml"]\n']
    if plugin:
        (tmp_path / "extra.py").write_text(textwrap.dedent(plugin))
        lines.append('[plugins]\npaths = ["extra.py"]\n')
    (tmp_path / "registry.toml").write_text("".join(lines))
    return [tmp_path / "registry.toml"]


def test_contract_catches_a_task_without_sample_data(tmp_path):
    registries = broken_task_registry(tmp_path, """
        name = "no-data"
        description = "a task without data"
        metrics = ["accuracy"]
        [head]
        name = "sequence-classification"
    """)
    contract = Contract("no-data", registries)
    contract.task_file()  # the file itself is fine
    with pytest.raises(AssertionError, match="set dataset.name to a registered sample data set"):
        contract.data()


def test_contract_catches_a_missing_description(tmp_path):
    registries = broken_task_registry(tmp_path, """
        name = "quiet"
        metrics = ["accuracy"]
        [head]
        name = "sequence-classification"
    """)
    with pytest.raises(AssertionError, match="add a one-line 'description'"):
        Contract("quiet", registries).task_file()


def test_contract_catches_a_metric_that_returns_no_number(tmp_path, labelled_csv):
    plugin = f"""
        from tunehub.core.extending.hookspecs import hookimpl

        @hookimpl
        def register_metrics(register):
            register("broken_metric", lambda outputs: float("nan"))

        @hookimpl
        def register_datasets(register):
            register("tiny-rows", train={str(labelled_csv)!r})
    """
    registries = broken_task_registry(tmp_path, """
        name = "nan-task"
        description = "a task with a broken metric"
        metrics = ["broken_metric"]
        baselines = ["majority-class"]
        [dataset]
        name = "tiny-rows"
        [head]
        name = "sequence-classification"
    """, plugin)
    catalog = load_catalog(registries=registries)
    contract = Contract("nan-task", registries, _catalog=catalog)
    config = contract.task_file()
    data = check_data("nan-task", catalog, config)
    with pytest.raises(AssertionError, match="'broken_metric' returned nan"):
        check_metrics("nan-task", catalog, config, data)


def test_pytest_plugin_fixtures(tunehub_contract, tunehub_isolated_home, tunehub_tiny_model):
    import os

    contract = tunehub_contract("financial-sentiment")
    assert contract.model == tunehub_tiny_model and (tunehub_tiny_model / "config.json").is_file()
    assert contract.task_file()["name"] == "financial-sentiment"
    assert os.environ["TUNEHUB_HOME"] == str(tunehub_isolated_home)


def test_test_kit_and_pytest_plugin_import_no_heavy_library():
    import subprocess
    import sys

    code = ("import sys, tunehub.testing, tunehub.testing.pytest_plugin\n"
            "print([m for m in ('torch', 'transformers', 'faiss') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


# -- determinism and --quantize, on heads without a model ---------------------------------
class FakePredictor:
    def __init__(self, head):
        self.head, self.scale = head, 1.0

    def predict(self, inputs):
        return [{"length": len(text) * self.scale} for text in inputs]


class NoOpQuantize(FakePredictor):
    def quantize(self, kind):
        """Accepts --quantize and changes nothing: what the contract must catch."""


class HalvingQuantize(FakePredictor):
    def quantize(self, kind):
        self.scale = 0.5


class FakeHead:
    """A head without a model: fit writes a file; outputs as the classification metrics read."""

    name = "fake-head"
    description = "a head for contract tests"

    def __init__(self, predictor=FakePredictor, seeded=True):
        self.predictor, self.seeded, self.calls = predictor, seeded, 0

    def load_data(self, config, files):
        rows = [line for line in Path(files["train"]).read_text().splitlines()[1:] if line]
        return TaskData(rows, rows, dict(files), {}, {"labels": ["a", "b"]})

    def fit(self, run):
        import random

        self.calls += 1
        run.model_dir.mkdir(parents=True, exist_ok=True)
        (run.model_dir / "weights.json").write_text("[1.0]")
        # seeded: random draws follow train.seed, which the core sets before fit
        draw = random.random() if self.seeded else self.calls % 2
        return FitOutput({"labels": ["a", "b"], "y_true": [0, 1], "y_pred": [0, int(draw > 0.5)]})

    def load(self, model_dir, config):
        return self.predictor(self)


def fake_task(labelled_csv, head):
    class Plugin:
        @hookimpl
        def register_heads(self, register):
            register(head)

        @hookimpl
        def register_datasets(self, register):
            register("fake-rows", train=labelled_csv)

        @hookimpl
        def register_tasks(self, register):
            register({"name": "fake-task", "description": "a fake task", "metrics": ["accuracy"],
                      "head": {"name": "fake-head"}, "dataset": {"name": "fake-rows"}})

    catalog = load_catalog()
    catalog.add(Plugin(), PluginInfo("fake", "test"), strict=True)
    return catalog


def test_determinism_passes_a_seeded_head(labelled_csv, tiny_model):
    catalog = fake_task(labelled_csv, FakeHead())
    second = check_determinism("fake-task", catalog, tiny_model)
    assert second.version == "v2"


def test_determinism_catches_a_head_that_ignores_the_seed(labelled_csv, tiny_model):
    catalog = fake_task(labelled_csv, FakeHead(seeded=False))
    with pytest.raises(AssertionError, match=r"same train.seed gave different metrics "
                                             r"\(accuracy: (1.0 != 0.5|0.5 != 1.0)\)"):
        check_determinism("fake-task", catalog, tiny_model)


@pytest.mark.parametrize("predictor, outcome", [
    (FakePredictor, "refused"), (HalvingQuantize, "quantised"), (NoOpQuantize, None)])
def test_quantize_is_refused_or_changes_the_model(labelled_csv, tiny_model, predictor, outcome):
    catalog = fake_task(labelled_csv, FakeHead(predictor))
    contract = Contract("fake-task", model=tiny_model, inputs=["short", "longer text"],
                        _catalog=catalog)
    if outcome:
        assert contract.quantize() == outcome
    else:
        with pytest.raises(AssertionError, match="changed neither the model's weights nor its answers"):
            contract.quantize()
