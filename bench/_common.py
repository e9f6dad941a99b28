"""Helpers shared by the benchmarks: locating ../shared/data and skipping when absent."""
from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SHARED_DATA = Path(os.environ.get("TUNEHUB_BENCH_DATA", ROOT.parent / "shared" / "data"))


def read_column(path: Path, column: str) -> list[str]:
    """One column of a CSV file, as strings in file order."""
    import csv

    with open(path, newline="", encoding="utf-8") as handle:
        return [row[column] for row in csv.DictReader(handle)]


def cpu_class() -> str:
    """What the figures were measured on: the CPU instruction set PyTorch uses and whether bf16
    runs natively. ``ONEDNN_MAX_CPU_ISA=AVX2 ATEN_CPU_CAPABILITY=avx2
    MKL_ENABLE_INSTRUCTIONS=AVX2`` make an AVX-512 machine run as the AVX2-only class."""
    import torch

    from tunehub.core.running.engine import bf16_is_fast

    return (f"CPU kernels {torch.backends.cpu.get_cpu_capability()}, native bf16 "
            f"{'yes' if bf16_is_fast() else 'no'}, {torch.get_num_threads()} threads")


def data_dir(name: str) -> Path:
    """The folder of a shared benchmark data set; exits with a message when absent."""
    folder = SHARED_DATA / name
    if not folder.is_dir():
        print(f"skipped: {folder} not found (set TUNEHUB_BENCH_DATA to the shared data folder)")
        sys.exit(0)
    return folder
