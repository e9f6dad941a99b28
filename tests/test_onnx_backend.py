"""The classifier's ONNX copy: written when it reproduces torch, used by predict, evaluate
and serve without importing torch, ignored when it is stale or torch is asked for."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

import tunehub
from conftest import tiny_overrides
from tunehub.core.cli import main
from tunehub.core.errors import ConfigError
from tunehub.core.models import onnx_backend
from tunehub.core.running import runner

from _trained import shared_artifact

TASK = "financial-sentiment"
TEXTS = ["Operating profit rose to EUR 13.1 mn.", "ok", "公司净利润大幅下降。",
         "Net sales fell, the company said, " * 20]  # the last one longer than max_length


@pytest.fixture
def home_with_version(tiny_model, tmp_path_factory, tunehub_home) -> Path:
    source = Path(shared_artifact(tiny_model, tmp_path_factory))
    target = tunehub_home / "artifacts" / TASK / "v1"
    shutil.copytree(source, target)
    return target


def test_training_writes_a_checked_copy(home_with_version):
    info = json.loads((home_with_version / "model" / "onnx" / "onnx.json").read_text())
    assert info["max_abs_difference"] <= 1e-4 and info["output"] == "probabilities"
    assert info["inputs"][:2] == ["input_ids", "attention_mask"]
    assert onnx_backend.current(home_with_version / "model")
    report = (home_with_version / "report.md").read_text()
    assert "onnx/model.onnx" in report


def test_onnx_and_torch_answer_alike(home_with_version, monkeypatch):
    monkeypatch.setenv("TUNEHUB_BACKEND", "onnx")
    fast = runner.load(TASK)
    assert fast.predictor.impl.backend == "onnx"
    monkeypatch.setenv("TUNEHUB_BACKEND", "torch")
    monkeypatch.setenv("TUNEHUB_PRECISION", "fp32")
    slow = runner.load(TASK)
    assert slow.predictor.impl.backend == "torch"
    a, b = fast.predict(TEXTS), slow.predict(TEXTS)
    assert [x["label"] for x in a] == [x["label"] for x in b]
    for x, y in zip(a, b):
        assert np.allclose(list(x["probabilities"].values()), list(y["probabilities"].values()),
                           atol=1e-4)


def test_a_one_off_predict_imports_no_torch(home_with_version):
    code = ("import sys\nfrom tunehub.core.cli import main\n"
            "try:\n    main(['predict', 'financial-sentiment', 'Profit rose.', '--json'])\n"
            "except SystemExit as e:\n    assert not e.code, e.code\n"
            "assert 'torch' not in sys.modules and 'transformers' not in sys.modules, 'imported'\n")
    env = {**os.environ, "TUNEHUB_BACKEND": "auto"}
    env.pop("TUNEHUB_PRECISION", None)
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    out = json.loads(done.stdout)
    assert out[0]["label"] in ("negative", "neutral", "positive")


def test_edited_weights_leave_the_copy_unused(home_with_version, monkeypatch):
    from safetensors.torch import load_file, save_file

    monkeypatch.delenv("TUNEHUB_BACKEND", raising=False)
    monkeypatch.setenv("TUNEHUB_PRECISION", "fp32")
    head = home_with_version / "model" / "head.safetensors"
    state = load_file(str(head))
    state["bias"][0] += 1000.0
    save_file(state, str(head))
    assert not onnx_backend.current(home_with_version / "model")
    loaded = runner.load(TASK)
    assert loaded.predictor.impl.backend == "torch"
    labels = json.loads((home_with_version / "model" / "head.json").read_text())["labels"]
    assert {o["label"] for o in loaded.predict(TEXTS)} == {labels[0]}
    monkeypatch.setenv("TUNEHUB_BACKEND", "onnx")
    with pytest.raises(ConfigError, match="no ONNX copy"):
        runner.load(TASK)


def test_forced_bf16_and_int8_run_torch(home_with_version, monkeypatch):
    monkeypatch.delenv("TUNEHUB_BACKEND", raising=False)
    monkeypatch.setenv("TUNEHUB_PRECISION", "bf16")
    assert runner.load(TASK).predictor.impl.backend == "torch"
    monkeypatch.setenv("TUNEHUB_PRECISION", "fp32")
    quantised = runner.load(TASK, quantize="int8")
    assert quantised.predictor.impl.backend == "torch"
    assert len(quantised.predict(TEXTS)) == len(TEXTS)


def test_a_bad_backend_is_one_clear_error(home_with_version, monkeypatch):
    monkeypatch.setenv("TUNEHUB_BACKEND", "tensorrt")
    done = CliRunner().invoke(main, ["predict", TASK, "Profit rose."])
    assert done.exit_code == 2 and "TUNEHUB_BACKEND must be one of auto, onnx, torch" in done.output
    assert "Traceback" not in done.output


def test_head_onnx_false_writes_none(tiny_model, tunehub_home):
    result = tunehub.run_task(TASK, model=str(tiny_model),
                              overrides=[*tiny_overrides(), "head.onnx=false"])
    assert not (Path(result.artifact) / "model" / "onnx").exists()
    assert "head.onnx=false" in result.notes["onnx"]


def test_head_onnx_is_checked(tiny_model, tunehub_home):
    done = CliRunner().invoke(main, ["run-task", TASK, "--model", str(tiny_model),
                                     *sum((["--set", o] for o in tiny_overrides()), []),
                                     "--set", "head.onnx=maybe"])
    assert done.exit_code == 2 and "head.onnx must be auto, true or false" in done.output
    assert not (tunehub_home / "artifacts" / TASK).exists()
