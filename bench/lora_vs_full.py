"""LoRA against full fine-tuning of the same decoder: samples/s, peak memory, artifact size.

    python bench/lora_vs_full.py [--model smollm2] [--rows 512] [--steps 12]

Each mode trains the `financial-sentiment` classifier on the first ROWS rows of PhraseBank
AllAgree for STEPS optimizer steps (batch 32, no validation slice, no checkpoints) in a
process of its own, so peak RSS is that mode's alone. Prints both, with the ratios
LoRA / full, and the CPU class. Skips when ../shared/data is absent.
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import resource
import subprocess
import sys
import tempfile
from pathlib import Path

from _common import cpu_class, data_dir


def child(mode: str, model: str, data: str, steps: int) -> None:
    import tunehub
    from tunehub.core.artifacts import hub

    result = tunehub.run_task(
        "financial-sentiment", data=data, model=model,
        overrides=[f"train.peft={mode}", f"train.max_steps={steps}", "train.save_checkpoints=false",
                   "dataset.validation_fraction=0", "train.batch_size=32"])
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux: KiB
    print(json.dumps({"mode": mode, "samples_per_s": result.notes["train samples/s"],
                      "train_seconds": result.notes["train seconds"], "peak_rss": peak,
                      "artifact_bytes": hub.folder_size(Path(result.artifact) / "model"),
                      "trained": result.notes["fine-tuning"]}))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="smollm2")
    parser.add_argument("--rows", type=int, default=512)
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--child")
    parser.add_argument("--data")
    args = parser.parse_args()
    if args.child:
        child(args.child, args.model, args.data, args.steps)
        return
    folder = data_dir("financial_phrasebank")
    home = tempfile.mkdtemp(prefix="tunehub-bench-")
    os.environ.setdefault("TUNEHUB_HOME", home)
    subset = Path(home) / "rows.csv"
    with open(folder / "allagree_train.csv", newline="", encoding="utf-8") as src, \
            open(subset, "w", newline="", encoding="utf-8") as out:
        rows = list(csv.reader(src))[: args.rows + 1]
        csv.writer(out).writerows(rows)
    print(cpu_class(), flush=True)
    found = {}
    for mode in ("lora", "none"):
        done = subprocess.run([sys.executable, __file__, "--child", mode, "--model", args.model,
                               "--data", str(subset), "--steps", str(args.steps)],
                              capture_output=True, text=True, check=True)
        found[mode] = json.loads(done.stdout.strip().splitlines()[-1])
        f = found[mode]
        print(f"{'LoRA' if mode == 'lora' else 'full':4s}: {f['samples_per_s']:.2f} samples/s, "
              f"peak RSS {f['peak_rss'] / 2**30:.2f} GiB, artifact {f['artifact_bytes'] / 2**20:.1f} MiB; "
              f"{f['trained']}", flush=True)
    lora, full = found["lora"], found["none"]
    print(f"LoRA / full: speed {lora['samples_per_s'] / full['samples_per_s']:.2f}x (target >= 1.3), "
          f"peak memory {lora['peak_rss'] / full['peak_rss']:.2f}x (target < 1), artifact "
          f"{lora['artifact_bytes'] / full['artifact_bytes']:.1%} of full (target <= 10%)")


if __name__ == "__main__":
    main()
