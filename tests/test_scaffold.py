"""`app new-plugin`: the package it writes installs, lists, validates, runs and tests itself."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from click.testing import CliRunner

from tunehub.core.cli import main
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
def registry(scaffold, tmp_path, monkeypatch) -> Path:
    """Load the new package the way an enterprise registry would: by module name."""
    monkeypatch.syspath_prepend(str(scaffold))
    path = tmp_path / "registry.toml"
    path.write_text('[plugins]\nmodules = ["acme_tickets"]\n')
    yield path
    for name in [m for m in sys.modules if m == "acme_tickets" or m.startswith("acme_tickets.")]:
        del sys.modules[name]


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
        "ok", "0.1.0", 1, str(registry))
    assert mine["hooks"] == ["register_baselines", "register_datasets", "register_tasks"]

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


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "TUNEHUB_REGISTRY"}
    return {**env, "HF_HUB_OFFLINE": "1", **extra}


def test_scaffolded_tests_pass(scaffold, registry, tmp_path):
    """The package's own pytest, without its training tests: the test above covers them for
    this head, and tests/test_contract.py runs determinism and --quantize for it."""
    out = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-k", TRAINING_FREE],
        cwd=scaffold, capture_output=True, text=True, timeout=300,
        env=_env(PYTHONPATH=str(scaffold), TUNEHUB_REGISTRY=str(registry),
                 TUNEHUB_HOME=str(tmp_path / "home")))
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-2000:]
    assert "7 passed" in out.stdout


@pytest.mark.slow
def test_pip_installed_scaffold_is_found_by_entry_point_and_passes_its_tests(scaffold, tmp_path):
    """A real `pip install` (into a separate prefix) and the package's full pytest."""
    prefix = tmp_path / "prefix"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps",
                    "--no-build-isolation", "--prefix", str(prefix), str(scaffold)],
                   check=True, capture_output=True, text=True, timeout=300)
    site = next(prefix.glob("lib/python*/site-packages"))
    env = _env(PYTHONPATH=str(site), TUNEHUB_HOME=str(tmp_path / "home"))
    listed = subprocess.run([sys.executable, "-m", "tunehub.core.cli", "list-tasks", "--json"],
                            capture_output=True, text=True, env=env, cwd=tmp_path, check=True)
    tasks = {t["name"]: t for t in json.loads(listed.stdout)}
    assert tasks["acme-tickets"]["plugin"] == "acme_tickets"
    tests = scaffold / "tests"
    out = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                          str(tests)], cwd=tmp_path, capture_output=True, text=True, env=env,
                         timeout=600)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-2000:]
    assert "10 passed" in out.stdout
