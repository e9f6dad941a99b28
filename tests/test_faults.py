"""Faults: killed runs, leftovers, concurrent runs, SIGTERM, plugins that exit, determinism."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

import tunehub
from tunehub.core.artifacts import hub
from tunehub.core.running import workdirs as runs
from tunehub.core.cli import main
from tunehub.core.extending.plugins import load_catalog

from conftest import tiny_overrides

DEAD_PID = 2**22 + 12345  # above pid_max on Linux: never a live process


def dead_owner(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / runs.OWNER_FILE).write_text(json.dumps({"pid": DEAD_PID, "host": os.uname().nodename}))


def fake_checkpoint(work: Path) -> None:
    checkpoint = work / "checkpoints" / "checkpoint-3"
    checkpoint.mkdir(parents=True)
    (checkpoint / "trainer_state.json").write_text("{}")


def test_plugin_raising_system_exit_is_reported_and_the_rest_works(tmp_path):
    (tmp_path / "quitter.py").write_text("raise SystemExit(3)\n")
    (tmp_path / "registry.toml").write_text('[plugins]\npaths = ["quitter.py"]\n')
    registry = str(tmp_path / "registry.toml")
    catalog = load_catalog(registries=[registry])
    failed = {p.name: p for p in catalog.failed}
    assert "SystemExit" in failed[str(tmp_path / "quitter.py")].error
    assert "financial-sentiment" in catalog.tasks
    listed = CliRunner().invoke(main, ["--registry", registry, "list-tasks", "--json"])
    assert listed.exit_code == 0 and "financial-sentiment" in listed.stdout


def test_leftovers_of_dead_runs_are_swept_and_live_ones_kept(tunehub_home):
    staging = tunehub_home / "artifacts" / "demo" / ".staging-abc"
    dead_owner(staging)
    (staging / "model.safetensors").write_bytes(b"x" * 1000)
    live = tunehub_home / "artifacts" / "demo" / ".staging-live"
    live.mkdir()
    runs.claim(live)
    empty_work = tunehub_home / "work" / "demo-123" / "20260101-000000-aaaaaa"
    dead_owner(empty_work)
    resumable = tunehub_home / "work" / "demo-123" / "20260101-000001-bbbbbb"
    dead_owner(resumable)
    fake_checkpoint(resumable)
    removed = {item.path for item in runs.sweep()}
    assert removed == {staging, empty_work}
    assert live.exists() and resumable.exists()  # a live owner, and a run to resume


def test_app_clean_lists_then_removes(tunehub_home):
    work = tunehub_home / "work" / "demo-123" / "20260101-000001-bbbbbb"
    dead_owner(work)
    fake_checkpoint(work)
    staging = tunehub_home / "artifacts" / "demo" / ".staging-abc"
    dead_owner(staging)
    dry = json.loads(CliRunner().invoke(main, ["clean", "--dry-run", "--json"]).stdout)
    assert {item["kind"] for item in dry["leftovers"]} == {"interrupted run", "staging"}
    assert work.exists() and staging.exists()
    done = CliRunner().invoke(main, ["clean"])
    assert done.exit_code == 0 and "removed 2 folder(s)" in done.stdout
    assert not work.exists() and not staging.exists()
    assert "nothing to clean" in CliRunner().invoke(main, ["clean"]).stdout


def test_runs_of_the_same_config_get_their_own_work_folders(tunehub_home):
    first = runs.start_work("demo-123", None)
    second = runs.start_work("demo-123", None)
    assert first != second and first.parent == second.parent
    assert runs.owner_alive(first) and runs.owner_alive(second)
    fake_checkpoint(first)
    runs.finish_work(first, succeeded=False)  # interrupted: kept, owner released
    assert runs.resumable("demo", "demo-123", True) == first
    assert runs.resumable("demo", "demo-123", first.name) == first
    with pytest.raises(tunehub.TunehubError, match="other data or settings"):
        runs.resumable("demo", "demo-999", first.name)
    runs.finish_work(second, succeeded=True)
    assert not second.exists() and first.exists()


def test_sigterm_stops_a_run_like_ctrl_c(tiny_model, labelled_csv, tunehub_home):
    env = {**os.environ, "TUNEHUB_HOME": str(tunehub_home), "HF_HUB_OFFLINE": "1"}
    command = [sys.executable, "-m", "tunehub.core.cli", "run-task", "financial-sentiment",
               "--data", str(labelled_csv), "--model", str(tiny_model),
               "--set", "train.max_steps=100000", "--set", "train.batch_size=4",
               "--set", "train.save_checkpoints=false", "--set", "train.epochs=1"]
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True)
    deadline = time.time() + 120
    staging = tunehub_home / "artifacts" / "financial-sentiment"
    while time.time() < deadline and not list(staging.glob(".staging-*")):
        time.sleep(0.2)
    time.sleep(2)  # inside the head's fit
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=120)
    # 130, or ended by SIGINT as Python may do after a KeyboardInterrupt: a shell reports 130
    assert process.returncode in (130, -signal.SIGINT), stderr
    assert "Interrupted" in stderr and "Traceback" not in stderr
    assert not list(staging.glob(".staging-*")) and hub.list_artifacts() == []
    assert not any((tunehub_home / "work").rglob("checkpoint-*"))


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_same_seed_same_data_same_metrics(precision, tiny_model, labelled_csv):
    overrides = tiny_overrides(**{"train.epochs": "2", "train.precision": precision})
    first = tunehub.run_task("financial-sentiment", data=labelled_csv, model=str(tiny_model),
                             overrides=overrides)
    second = tunehub.run_task("financial-sentiment", data=labelled_csv, model=str(tiny_model),
                              overrides=overrides)
    assert first.metrics == second.metrics and first.notes["precision"] == precision
    texts = ["Profit rose sharply.", "The plant will close.", "The meeting is in May."]
    a = tunehub.predict("financial-sentiment", texts, model=first.artifact)
    b = tunehub.predict("financial-sentiment", texts, model=second.artifact)
    assert a == b  # the same weights, to the last digit


def test_a_plugin_head_that_builds_layers_first_is_still_reproducible(tiny_model, labelled_csv):
    """The core seeds before calling a head's fit, so layers a head creates are the same."""
    import torch

    from tunehub.plugins.classification.head import SequenceClassificationHead

    made: list = []
    original = SequenceClassificationHead.fit

    def fit(self, run):
        made.append(torch.nn.Linear(4, 2).weight.detach().clone())  # before any seeding of its own
        return original(self, run)

    SequenceClassificationHead.fit = fit
    try:
        for _ in range(2):
            tunehub.run_task("financial-sentiment", data=labelled_csv, model=str(tiny_model),
                             overrides=tiny_overrides())
    finally:
        SequenceClassificationHead.fit = original
    assert torch.equal(made[0], made[1])


def test_remote_code_folder_is_refused_on_a_terminal_without_a_prompt(tmp_path, labelled_csv,
                                                                      tunehub_home):
    """On a terminal transformers would ask whether to run the folder's code: never get there."""
    import pty

    folder, marker = tmp_path / "custom", tmp_path / "code-ran"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"model_type": "custom",
                                                    "auto_map": {"AutoModel": "modeling.M"}}))
    (folder / "modeling.py").write_text(f"open({str(marker)!r}, 'w').write('ran')\n")
    (folder / "model.safetensors").write_bytes(b"")
    env = {**os.environ, "TUNEHUB_HOME": str(tunehub_home), "HF_HUB_OFFLINE": "1"}
    leader, follower = pty.openpty()
    process = subprocess.Popen(
        [sys.executable, "-m", "tunehub.core.cli", "run-task", "financial-sentiment", "--data",
         str(labelled_csv), "--base-model", str(folder)],
        stdin=follower, stdout=follower, stderr=follower, env=env)
    os.close(follower)
    os.write(leader, b"y\ny\n")  # answers a prompt would read, if there were one
    output = b""
    try:
        while True:
            chunk = os.read(leader, 4096)
            if not chunk:
                break
            output += chunk
    except OSError:  # the terminal closes when the process ends
        pass
    assert process.wait(timeout=120) == 2
    text = output.decode(errors="replace")
    assert "never runs code from a model folder" in text and "[y/N]" not in text
    assert not marker.exists()
