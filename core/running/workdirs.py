"""Run folders under ``$TUNEHUB_HOME``: who owns them, resuming, and cleaning up after crashes.

Every run gets a work folder of its own, ``work/<task>-<config hash>/<run id>/``, holding
its checkpoints, so two runs of the same task and config never share (or delete) each
other's. Work folders and artifact staging folders carry an owner file (pid and host);
a folder whose owner is gone is a leftover of a killed run. The next run removes
leftovers that hold nothing worth keeping (staging folders, empty work folders, trash of
removed versions); interrupted runs with checkpoints stay for ``--resume`` until
``app clean`` removes them.
"""
from __future__ import annotations

import errno
import json
import os
import shutil
import socket
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from ..errors import ConfigError, TunehubError
from ..artifacts.hub import artifacts_root, folder_size, home, human_size, work_root

OWNER_FILE = ".owner.json"
FRESH_SECONDS = 120  # a folder this young without an owner file may still be being set up


def claim(folder: Path) -> None:
    """Mark ``folder`` as owned by this process."""
    data = {"pid": os.getpid(), "host": socket.gethostname(),
            "started": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    (folder / OWNER_FILE).write_text(json.dumps(data) + "\n")


def release(folder: Path) -> None:
    """Drop the owner mark (before a staging folder is published as a version)."""
    (folder / OWNER_FILE).unlink(missing_ok=True)


def owner_alive(folder: Path) -> bool:
    """True while the process that claimed ``folder`` runs (or may still be setting it up)."""
    try:
        owner = json.loads((folder / OWNER_FILE).read_text())
    except (OSError, ValueError):
        try:
            return time.time() - folder.stat().st_mtime < FRESH_SECONDS
        except OSError:
            return False
    if owner.get("stopped"):
        return False
    if owner.get("host") != socket.gethostname():
        return True  # another machine's run (a shared home): never ours to judge
    try:
        os.kill(int(owner.get("pid", 0)), 0)
    except ProcessLookupError:
        return False
    except (PermissionError, ValueError, OverflowError):
        return True
    return int(owner.get("pid", 0)) > 0


def new_run_id() -> str:
    """A fresh id, sortable by start time; the ranks of one distributed run share theirs."""
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        import hashlib

        launch = "|".join(os.environ.get(k, "") for k in ("TORCHELASTIC_RUN_ID", "MASTER_ADDR",
                                                         "MASTER_PORT", "GROUP_RANK"))
        return "ddp-" + hashlib.sha256(f"{launch}|{os.getppid()}".encode()).hexdigest()[:10]
    return datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S-") + uuid.uuid4().hex[:6]


def has_checkpoint(work_dir: Path) -> bool:
    checkpoints = work_dir / "checkpoints"
    return checkpoints.is_dir() and any(
        (c / "trainer_state.json").is_file() for c in checkpoints.glob("checkpoint-*"))


@dataclass(frozen=True)
class WorkFolder:
    path: Path  # work/<task>-<config hash>/<run id>
    run_id: str

    @property
    def key(self) -> str:
        """``<task>-<config hash>``: runs with the same key can resume one another."""
        return self.path.parent.name


def work_folders(key: str | None = None) -> list[WorkFolder]:
    """Work folders, oldest first; ``key`` (``<task>-<config hash>``) filters."""
    root = work_root()
    if not root.is_dir():
        return []
    parents = [root / key] if key else [p for p in root.iterdir() if p.is_dir()]
    found = [WorkFolder(run, run.name) for parent in parents if parent.is_dir()
             for run in parent.iterdir() if run.is_dir()]
    return sorted(found, key=lambda f: f.path.stat().st_mtime)


def resumable(task: str, key: str, resume: str | bool | None,
              main_process: bool = True) -> Path | None:
    """With ``resume``, the interrupted run to continue (``True``/``"latest"``: the latest of
    this task and config; else a run id); ``None`` without. Reads only; raises before any
    model loads when there is nothing to resume."""
    if not resume:
        return None
    run_id = None if resume in (True, "latest") else str(resume)
    return _resumable(task, key, run_id, check_owner=main_process)


def start_work(key: str, resume_from: Path | None, main_process: bool = True) -> Path:
    """Claim the work folder of a run: ``resume_from``, or a new one. Only the main process
    of a distributed run claims it."""
    folder = resume_from or work_root() / key / new_run_id()
    folder.mkdir(parents=True, exist_ok=True)
    if main_process:
        claim(folder)
    return folder


def _resumable(task: str, key: str, run_id: str | None, check_owner: bool) -> Path:
    if run_id is not None:
        matches = [f for f in work_folders() if f.run_id == run_id]
        if not matches:
            known = [f.run_id for f in work_folders() if f.key.startswith(f"{task}-")]
            raise ConfigError(f"--resume {run_id}: no interrupted run with that id. "
                              f"Runs of '{task}' to resume: {', '.join(known) or 'none'}.")
        folder = matches[0]
        if folder.key != key:
            raise ConfigError(
                f"--resume {run_id}: that run used other data or settings than these. "
                "Give the same --data/--set as the interrupted run, or start fresh without --resume."
            )
        if check_owner and owner_alive(folder.path):
            raise ConfigError(f"--resume {run_id}: that run is still going (another process).")
        if not has_checkpoint(folder.path):
            raise ConfigError(f"--resume {run_id}: the run stopped before its first checkpoint; "
                              "start fresh without --resume.")
        return folder.path
    candidates = [f for f in work_folders(key)
                  if not (check_owner and owner_alive(f.path)) and has_checkpoint(f.path)]
    if not candidates:
        raise ConfigError(
            f"--resume: no interrupted run of '{task}' with these data and settings has a "
            "checkpoint. Run without --resume to start fresh (same --data/--set as the "
            "interrupted run to continue it); `app clean --dry-run` lists interrupted runs."
        )
    return candidates[-1].path


def finish_work(folder: Path, succeeded: bool) -> None:
    """After a run: remove its folder, unless it failed with a checkpoint to resume from."""
    if succeeded or not has_checkpoint(folder):
        shutil.rmtree(folder, ignore_errors=True)
        _drop_if_empty(folder.parent)
    else:  # kept for --resume, marked as nobody's
        (folder / OWNER_FILE).write_text(json.dumps({"stopped": True}) + "\n")


def _drop_if_empty(folder: Path) -> None:
    try:
        folder.rmdir()
    except OSError:
        pass


# -- leftovers ----------------------------------------------------------------------


@dataclass(frozen=True)
class Leftover:
    path: Path
    kind: str  # staging | trash | empty work | interrupted run
    size: int


def leftovers(include_resumable: bool = True) -> list[Leftover]:
    """Folders left by killed or interrupted runs whose owner is gone."""
    found: list[Leftover] = []
    root = artifacts_root()
    if root.is_dir():
        for task_dir in root.iterdir():
            if not task_dir.is_dir():
                continue
            for path in task_dir.iterdir():
                if path.name.startswith(".trash-"):
                    found.append(Leftover(path, "trash", folder_size(path)))
                elif path.name.startswith(".staging-") and not owner_alive(path):
                    found.append(Leftover(path, "staging", folder_size(path)))
    root = work_root()
    if root.is_dir():  # folders of an older layout, or stray files: nothing to resume
        found += [Leftover(p, "empty work", folder_size(p)) for p in root.iterdir()
                  if p.is_dir() and not any(p.iterdir()) and not owner_alive(p)]
    for folder in work_folders():
        # only folders a run of ours claimed: anything else under work/ is not ours to delete
        if not (folder.path / OWNER_FILE).is_file() or owner_alive(folder.path):
            continue
        if has_checkpoint(folder.path):
            if include_resumable:
                found.append(Leftover(folder.path, "interrupted run", folder_size(folder.path)))
        else:
            found.append(Leftover(folder.path, "empty work", folder_size(folder.path)))
    return found


def sweep() -> list[Leftover]:
    """Remove leftovers that hold nothing to resume; called at the start of every run."""
    removed = leftovers(include_resumable=False)
    remove(removed)
    return removed


def remove(items: list[Leftover]) -> None:
    for item in items:
        shutil.rmtree(item.path, ignore_errors=True)
        if item.kind in ("empty work", "interrupted run"):
            _drop_if_empty(item.path.parent)


# -- a home we can write to ---------------------------------------------------------

HOME_ERRORS = (errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM, errno.ENOTDIR)


def check_writable(needed_bytes: int) -> None:
    """Fail early (before training) when ``$TUNEHUB_HOME`` cannot take a run's output.

    Probes the home (or its nearest existing parent) with a temporary file and checks the
    free space, creating nothing."""
    where = home()
    existing = where
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise TunehubError(f"TUNEHUB_HOME {where}: {existing} is a file, not a folder; point "
                           "TUNEHUB_HOME at a folder.")
    probe = existing / f".tunehub-probe-{uuid.uuid4().hex[:8]}"
    try:
        probe.write_bytes(b"ok")
    except OSError as exc:
        raise home_error(exc) from None
    finally:
        probe.unlink(missing_ok=True)
    free = shutil.disk_usage(existing).free
    if free < needed_bytes:
        raise TunehubError(
            f"TUNEHUB_HOME {where}: {human_size(free)} free, this run needs about "
            f"{human_size(needed_bytes)} (model, checkpoints, artifact). Free some space "
            "(`app clean`, `app models rm`) or point TUNEHUB_HOME at a larger disk."
        )


def home_error(exc: OSError) -> TunehubError:
    """One line for an OS error while writing under ``$TUNEHUB_HOME``."""
    reason = os.strerror(exc.errno) if exc.errno else str(exc)
    path = exc.filename or home()
    fix = ("free some space (`app clean`, `app models rm`) or point TUNEHUB_HOME at a larger disk"
           if exc.errno in (errno.ENOSPC, errno.EDQUOT) else
           "make it writable or point TUNEHUB_HOME at a writable folder")
    return TunehubError(f"cannot write under TUNEHUB_HOME ({home()}): {path}: {reason}; {fix}.")
