"""Listing commands: JSON output, and no heavy imports (torch/transformers/faiss)."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest
from click.testing import CliRunner

from tunehub.core.cli import main

HEAVY = ("torch", "transformers", "faiss", "sentence_transformers")


@pytest.mark.parametrize("argv", [["--help"], ["list-tasks"], ["list-tasks", "--json"],
                                  ["plugins", "--json"], ["show-task", "financial-sentiment"]])
def test_listing_imports_no_heavy_library(argv):
    code = (
        "import sys\nfrom tunehub.core.cli import main\n"
        f"try:\n    main({argv!r})\nexcept SystemExit:\n    pass\n"
        f"loaded = [m for m in {HEAVY!r} if m in sys.modules]\n"
        "print('HEAVY', loaded, file=sys.stderr)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "HEAVY []" in out.stderr, out.stderr


def test_list_tasks_json_lists_financial_sentiment():
    result = CliRunner().invoke(main, ["list-tasks", "--json"])
    assert result.exit_code == 0, result.output
    listed = json.loads(result.stdout)
    assert all(t["task"] == t["name"] for t in listed)  # the table's column; "name" kept too
    tasks = {t["task"]: t for t in listed}
    assert tasks["financial-sentiment"]["head"] == "sequence-classification"
    assert tasks["financial-sentiment"]["plugin"] == "tunehub.plugins.financial_sentiment"


def test_show_task_applies_overrides():
    result = CliRunner().invoke(main, ["show-task", "financial-sentiment", "--json",
                                       "--set", "train.epochs=7"])
    assert result.exit_code == 0, result.output
    shown = json.loads(result.stdout)
    assert shown["task"] == shown["name"] == "financial-sentiment"
    config = shown["config"]
    assert config["train"]["epochs"] == 7
    assert config["dataset"]["labels"] == ["negative", "neutral", "positive"]


def test_plugins_json_shows_builtins_and_hooks():
    result = CliRunner().invoke(main, ["plugins", "--json"])
    plugins = {p["name"]: p for p in json.loads(result.stdout)}
    assert plugins["tunehub.core.extending.defaults"]["status"] == "ok"
    assert "register_metrics" in plugins["tunehub.core.extending.defaults"]["hooks"]
    heads = plugins["tunehub.plugins.classification"]  # a built-in head is a default plugin
    assert heads["status"] == "ok" and heads["provides"]["heads"] == ["sequence-classification"]
    assert plugins["tunehub.plugins.financial_sentiment"]["source"] == "built-in"


def test_models_json_lists_the_packaged_aliases():
    result = CliRunner().invoke(main, ["models", "--json"])
    data = json.loads(result.stdout)
    assert [m["alias"] for m in data["base_models"]] == ["gemma3-270m", "minilm", "smollm2"]
    assert data["fine_tuned"] == []


def test_unknown_task_is_one_clear_error():
    result = CliRunner().invoke(main, ["show-task", "financial-sentimnt"])
    assert result.exit_code == 2
    assert "Did you mean 'financial-sentiment'?" in result.stderr
    assert "Traceback" not in result.output
