"""Bytes a default run writes to disk, against the size of the artifact it leaves.

    python bench/disk_written.py [--task financial-sentiment] [--set KEY=VALUE ...]

Runs the task with its defaults (bundled sample data, packaged model) in this process and
reads this process's written bytes from /proc/self/io (``wchar``: every write call, files,
checkpoints and logs alike) before and after. Prints the bytes written, the artifact's
size and their ratio (target: at most 4x), and the checkpoint bytes the engine reports.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path


def written() -> int:
    with open("/proc/self/io") as handle:
        fields = dict(line.split(": ") for line in handle.read().splitlines())
    return int(fields["wchar"])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--task", default="financial-sentiment")
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    args = parser.parse_args()
    if not Path("/proc/self/io").is_file():
        print("skipped: needs /proc/self/io (Linux)")
        sys.exit(0)
    os.environ["TUNEHUB_HOME"] = tempfile.mkdtemp(prefix="tunehub-disk-")
    import tunehub
    from tunehub.core.artifacts.hub import folder_size, human_size

    before = written()
    result = tunehub.run_task(args.task, overrides=args.overrides)
    total = written() - before
    size = folder_size(Path(result.artifact))
    print(f"{args.task}: wrote {human_size(total)} for an artifact of {human_size(size)} "
          f"({total / size:.2f}x; target <= 4x); checkpoints "
          f"{human_size(result.notes.get('checkpoint bytes written', 0))}; "
          f"{result.notes.get('schedule')}; stopped: {result.notes.get('stopped')}; "
          f"{result.primary_metric} {result.metrics[result.primary_metric]:.4f}")


if __name__ == "__main__":
    main()
