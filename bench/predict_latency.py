"""Wall time of a one-off `app predict TASK "text"`, beside the imports it cannot avoid.

    python bench/predict_latency.py [--home TUNEHUB_HOME] [--runs 5]

Trains the sample classifier (`app run-task financial-sentiment`, packaged MiniLM) into a
temporary `TUNEHUB_HOME` unless `--home` names one that holds a version, then times
`--runs` fresh processes of `app predict financial-sentiment "Operating profit rose 20%."`
as a user runs it (on the version's ONNX copy), the same on the torch model
(`TUNEHUB_BACKEND=torch`), and the floor under the torch path: a process that only imports
torch and transformers' BERT model class. Prints the median wall time of each and the ratios.
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import cpu_class

TASK = "financial-sentiment"
TEXT = "Operating profit rose 20%."
TARGET_SECONDS = 4.0
FLOOR = "import torch; from transformers import BertModel"


def wall(command: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    subprocess.run(command, env=env, check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--home", help="a TUNEHUB_HOME that already holds a financial-sentiment version")
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    home = Path(args.home or tempfile.mkdtemp(prefix="tunehub-bench-"))
    env = {**os.environ, "TUNEHUB_HOME": str(home), "TUNEHUB_QUIET": "1"}
    app = [sys.executable, "-m", "tunehub.core.cli"]
    if not (home / "artifacts" / TASK).is_dir():
        print(f"training {TASK} on the bundled sample into {home} ...", flush=True)
        subprocess.run([*app, "run-task", TASK], env=env, check=True, stdout=subprocess.DEVNULL)
    wall([*app, "predict", TASK, TEXT], env)  # warm the file cache once
    torch_env = {**env, "TUNEHUB_BACKEND": "torch"}
    predict, torch_predict, floor = [], [], []
    for _ in range(args.runs):  # interleaved, so a change in machine load hits all three
        predict.append(wall([*app, "predict", TASK, TEXT], env))
        torch_predict.append(wall([*app, "predict", TASK, TEXT], torch_env))
        floor.append(wall([sys.executable, "-c", FLOOR], env))
    p, t, f = (statistics.median(x) for x in (predict, torch_predict, floor))
    print(f"app predict {TASK} (one text): median {p:.2f}s over {args.runs} runs "
          f"(target <= {TARGET_SECONDS:.0f}s: {'meets' if p <= TARGET_SECONDS else 'above'})")
    print(f"the same on the torch model (TUNEHUB_BACKEND=torch): median {t:.2f}s "
          f"({t / p:.1f}x the default)")
    print(f"floor of the torch path ({FLOOR}): median {f:.2f}s; the torch path's own share "
          f"{t - f:.2f}s")
    print(f"{os.cpu_count()} CPUs; {cpu_class()}")


if __name__ == "__main__":
    main()
