"""`app new-plugin`: the package it writes installs, lists, validates, runs and tests itself."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from click.testing import CliRunner

from tunehub.core.cli import main
from tunehub.plugin import PLUGIN_API_VERSION
from tunehub.testing import Contract

from conftest import tiny_overrides


@pytest.fixture
def scaffold(tmp_path) -> Path:
    folder = tmp_path / "acme-tickets"
    result = CliRunner().invoke(main, ["new-plugin", "acme-tickets", "--output", str(folder)])
    assert result.exit_code == 0, result.output
    assert "pip install -e" in result.output
    return folder


@pytest.fixture
def head_scaffold(tmp_path) -> Path:
    """``app new-plugin acme-tickets --head``: the package with a head of its own."""
    folder = tmp_path / "acme-tickets"
    result = CliRunner().invoke(main, ["new-plugin", "acme-tickets", "--head", "-o", str(folder)])
    assert result.exit_code == 0, result.output
    assert "head acme-tickets-classifier" in result.output
    return folder


def _registry(package: Path, tmp_path: Path, monkeypatch):
    """Load the new package the way an enterprise registry would: by module name."""
    monkeypatch.syspath_prepend(str(package))
    path = tmp_path / "registry.toml"
    path.write_text('[plugins]\nmodules = ["acme_tickets"]\n')
    yield path
    for name in [m for m in sys.modules if m == "acme_tickets" or m.startswith("acme_tickets.")]:
        del sys.modules[name]


@pytest.fixture
def registry(scaffold, tmp_path, monkeypatch) -> Path:
    yield from _registry(scaffold, tmp_path, monkeypatch)


@pytest.fixture
def head_registry(head_scaffold, tmp_path, monkeypatch) -> Path:
    yield from _registry(head_scaffold, tmp_path, monkeypatch)


def test_new_plugin_writes_an_installable_package(scaffold):
    files = sorted(str(p.relative_to(scaffold)) for p in scaffold.rglob("*") if p.is_file())
    assert files == ["README.md", "acme_tickets/__init__.py", "acme_tickets/acme-tickets.toml",
                     "acme_tickets/data/sample.csv", "pyproject.toml",
                     "tests/test_acme_tickets.py"]
    project = tomllib.loads((scaffold / "pyproject.toml").read_text())
    assert project["project"]["entry-points"]["tunehub"] == {"acme_tickets": "acme_tickets"}
    assert project["project"]["name"] == "acme-tickets"
    assert project["tool"]["setuptools"]["package-data"]["acme_tickets"] == ["*.toml", "data/*.csv"]
    task = tomllib.loads((scaffold / "acme_tickets" / "acme-tickets.toml").read_text())
    assert task["name"] == "acme-tickets" and task["head"]["name"] == "sequence-classification"
    assert "{{" not in "".join(p.read_text() for p in scaffold.rglob("*") if p.is_file())
    compile((scaffold / "acme_tickets" / "__init__.py").read_text(), "plugin", "exec")


def test_new_plugin_refuses_bad_names_and_existing_folders(scaffold):
    runner = CliRunner()
    bad = runner.invoke(main, ["new-plugin", "Acme Tickets"])
    assert bad.exit_code == 2 and "lower-case letters" in bad.stderr
    again = runner.invoke(main, ["new-plugin", "acme-tickets", "--output", str(scaffold)])
    assert again.exit_code == 2 and "already exists" in again.stderr
    forced = runner.invoke(main, ["new-plugin", "acme-tickets", "-o", str(scaffold), "--force",
                                  "--json"])
    assert forced.exit_code == 0 and json.loads(forced.stdout)["module"] == "acme_tickets"


def test_scaffolded_task_is_listed_validated_and_run(registry, tiny_model):
    runner = CliRunner()
    listed = runner.invoke(main, ["--registry", str(registry), "list-tasks", "--json"])
    tasks = {t["name"]: t for t in json.loads(listed.stdout)}
    assert tasks["acme-tickets"]["plugin"] == "acme_tickets"
    plugins = {p["name"]: p for p in json.loads(
        runner.invoke(main, ["--registry", str(registry), "plugins", "--json"]).stdout)}
    mine = plugins["acme_tickets"]
    assert (mine["status"], mine["version"], mine["api"], mine["registry"]) == (
        "ok", "0.1.0", PLUGIN_API_VERSION, str(registry))
    assert mine["hooks"] == ["register_baselines", "register_datasets", "register_tasks"]

    regenerated = runner.invoke(main, ["--registry", str(registry), "new-plugin", "acme-tickets",
                                       "-o", str(registry.parent / "again")])
    assert regenerated.exit_code == 0, regenerated.stderr  # its own task is no clash
    other = runner.invoke(main, ["--registry", str(registry), "new-plugin", "acme", "--task",
                                 "acme-tickets", "-o", str(registry.parent / "other")])
    assert other.exit_code == 2 and "registered by acme_tickets" in other.stderr

    checked = runner.invoke(main, ["--registry", str(registry), "validate-data", "acme-tickets",
                                   "--json"])
    assert checked.exit_code == 0, checked.stderr
    contract = Contract("acme-tickets", [registry], model=tiny_model)
    contract.task_file(), contract.head()
    assert set(contract.metrics()) == {"majority-class", "acme-tickets-keywords"}

    args = ["--registry", str(registry), "run-task", "acme-tickets", "--model", str(tiny_model),
            "--json"]
    for item in tiny_overrides(**{"train.max_steps": "2"}):
        args += ["--set", item]
    ran = runner.invoke(main, args)
    assert ran.exit_code == 0, ran.stderr
    assert json.loads(ran.stdout)["primary_metric"] == "macro_f1"
    predicted = runner.invoke(main, ["--registry", str(registry), "predict", "acme-tickets",
                                     "--json", "Where is my invoice?"])
    assert predicted.exit_code == 0, predicted.stderr
    assert json.loads(predicted.stdout)[0]["label"] in {"complaint", "praise", "question"}


TRAINING_FREE = "not one_step and not same_seed and not quantize"


def test_new_plugin_refuses_a_task_name_that_exists_before_writing(tmp_path):
    for args in (["financial-sentiment"], ["acme", "--task", "financial-sentiment", "--head"]):
        out = tmp_path / "out"
        result = CliRunner().invoke(main, ["new-plugin", *args, "-o", str(out)])
        assert result.exit_code == 2
        assert result.stderr.count("\n") == 1  # one line
        assert ("task 'financial-sentiment' already exists (registered by "
                "tunehub.plugins.financial_sentiment)") in result.stderr
        assert not out.exists()


def test_new_plugin_head_writes_a_package_with_its_own_head(head_scaffold):
    files = sorted(str(p.relative_to(head_scaffold)) for p in head_scaffold.rglob("*") if p.is_file())
    assert files == ["README.md", "acme_tickets/__init__.py", "acme_tickets/acme-tickets.toml",
                     "acme_tickets/data/sample.csv", "acme_tickets/head.py", "pyproject.toml",
                     "tests/test_acme_tickets.py"]
    task = tomllib.loads((head_scaffold / "acme_tickets" / "acme-tickets.toml").read_text())
    assert task["head"]["name"] == "acme-tickets-classifier"
    head = (head_scaffold / "acme_tickets" / "head.py").read_text()
    assert "class AcmeTicketsHead:" in head and "run_trainer(" in head
    sources = head + (head_scaffold / "acme_tickets" / "__init__.py").read_text()
    imported = set(re.findall(r"^\s*(?:from|import) (tunehub\S*)", sources, re.M))
    assert imported == {"tunehub.plugin"}  # the stable surface only
    assert "{{" not in "".join(p.read_text() for p in head_scaffold.rglob("*") if p.is_file())


def test_scaffolded_head_trains_predicts_and_quantises(head_registry, tiny_model):
    runner = CliRunner()
    listed = json.loads(runner.invoke(main, ["--registry", str(head_registry), "list-tasks",
                                             "--json"]).stdout)
    assert {t["name"]: t for t in listed}["acme-tickets"]["head"] == "acme-tickets-classifier"
    contract = Contract("acme-tickets", [head_registry], model=tiny_model)
    assert contract.catalog.owners["heads"]["acme-tickets-classifier"] == "acme_tickets"
    result, answers = contract.run_all()
    assert set(result.baselines) == {"majority-class", "acme-tickets-keywords"}
    assert set(result.details["classification_report"]) >= {"complaint", "praise", "question"}
    assert all(a["label"] in {"complaint", "praise", "question"} for a in answers)
    assert (Path(result.artifact) / "model" / "model.safetensors").is_file()
    assert contract.quantize(result.artifact) == "quantised"


def test_scaffolded_head_tests_pass(head_scaffold, head_registry, tmp_path):
    """The package's own pytest, out of the box, without its training tests: the test above
    runs them in-process (the slow test below runs the whole file after a pip install)."""
    assert "8 passed" in _training_free_tests(head_scaffold, head_registry, tmp_path)


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "TUNEHUB_REGISTRY"}
    return {**env, "HF_HUB_OFFLINE": "1", **extra}


def _training_free_tests(package: Path, registry: Path, tmp_path: Path) -> str:
    """Run a scaffolded package's own pytest without its training tests; returns stdout."""
    out = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-k", TRAINING_FREE],
        cwd=package, capture_output=True, text=True, timeout=300,
        env=_env(PYTHONPATH=str(package), TUNEHUB_REGISTRY=str(registry),
                 TUNEHUB_HOME=str(tmp_path / "home")))
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-2000:]
    return out.stdout


def test_scaffolded_tests_pass(scaffold, registry, tmp_path):
    """The package's own pytest, without its training tests: the test above covers them for
    this head, and tests/test_contract.py runs determinism and --quantize for it."""
    assert "7 passed" in _training_free_tests(scaffold, registry, tmp_path)


def _pip_install_and_test(package: Path, tmp_path: Path, passed: int) -> dict:
    """A real `pip install` (into a separate prefix) and the package's full pytest; returns
    the tasks that `app list-tasks` then shows."""
    prefix = tmp_path / "prefix"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps",
                    "--no-build-isolation", "--prefix", str(prefix), str(package)],
                   check=True, capture_output=True, text=True, timeout=300)
    site = next(prefix.glob("lib/python*/site-packages"))
    env = _env(PYTHONPATH=str(site), TUNEHUB_HOME=str(tmp_path / "home"))
    listed = subprocess.run([sys.executable, "-m", "tunehub.core.cli", "list-tasks", "--json"],
                            capture_output=True, text=True, env=env, cwd=tmp_path, check=True)
    tasks = {t["name"]: t for t in json.loads(listed.stdout)}
    out = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                          str(package / "tests")], cwd=tmp_path, capture_output=True, text=True,
                         env=env, timeout=600)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-2000:]
    assert f"{passed} passed" in out.stdout
    return tasks


@pytest.mark.slow
def test_pip_installed_scaffold_is_found_by_entry_point_and_passes_its_tests(scaffold, tmp_path):
    tasks = _pip_install_and_test(scaffold, tmp_path, passed=10)
    assert tasks["acme-tickets"]["plugin"] == "acme_tickets"


@pytest.mark.slow
def test_pip_installed_head_scaffold_installs_into_a_separate_prefix_and_passes(head_scaffold,
                                                                                tmp_path):
    tasks = _pip_install_and_test(head_scaffold, tmp_path, passed=11)
    assert tasks["acme-tickets"]["plugin"] == "acme_tickets"
    assert tasks["acme-tickets"]["head"] == "acme-tickets-classifier"


def test_scaffolded_head_gives_its_new_layers_to_run_trainer(head_registry, tiny_model,
                                                             monkeypatch):
    """train.head_lr_scale works for a scaffolded head: it names the layers it adds."""
    contract = Contract("acme-tickets", [head_registry], model=tiny_model)
    head = contract.catalog.head_of(contract.catalog.task("acme-tickets")).impl
    module = sys.modules[type(head).__module__]
    seen, real = {}, module.run_trainer

    def spy(*args, **kwargs):
        seen["head_parameters"] = kwargs.get("head_parameters")
        return real(*args, **kwargs)

    monkeypatch.setattr(module, "run_trainer", spy)
    contract.train_and_predict()
    assert seen["head_parameters"]  # the classifier on top, not the encoder
    assert sum(p.numel() for p in seen["head_parameters"]) < 10_000
