"""Financial PhraseBank on a decoder LLM (SmolLM2-135M, LoRA defaults) beside MiniLM and the
lexicon baseline, in one process.

    python bench/llm_finance.py [allagree] [50agree] [--models smollm2,minilm] [--set key=value ...]

Each run is exactly `app run-task financial-sentiment --base-model M --data
<subset>_train.csv --eval-data <subset>_test.csv` with defaults (train.peft=auto: LoRA for
the decoder, full fine-tuning for MiniLM). Prints accuracy, macro-F1, wall time, what was
trained and the CPU class. Skips when ../shared/data is absent.
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time

from _common import cpu_class, data_dir

TARGETS = {"allagree": 0.95, "50agree": 0.84}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("subsets", nargs="*", default=["allagree", "50agree"])
    parser.add_argument("--models", default="smollm2,minilm")
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    args = parser.parse_args()
    folder = data_dir("financial_phrasebank")
    os.environ.setdefault("TUNEHUB_HOME", tempfile.mkdtemp(prefix="tunehub-bench-"))
    import tunehub

    print(cpu_class(), flush=True)
    for subset in args.subsets:
        for model in args.models.split(","):
            started = time.perf_counter()
            result = tunehub.run_task(
                "financial-sentiment", data=folder / f"{subset}_train.csv",
                eval_data=folder / f"{subset}_test.csv", model=model, overrides=args.overrides)
            minutes = (time.perf_counter() - started) / 60
            acc, f1 = result.metrics["accuracy"], result.metrics["macro_f1"]
            verdict = "meets" if acc >= TARGETS[subset] else "below"
            lexicon = result.baselines["finance-lexicon"]["accuracy"]
            print(f"{subset:9s} {model:8s} accuracy {acc:.4f} macro_f1 {f1:.4f} (target "
                  f">= {TARGETS[subset]}: {verdict}); lexicon {lexicon:.4f}; {minutes:.1f} min; "
                  f"{result.notes.get('fine-tuning')}; {result.notes.get('schedule')}; "
                  f"{result.notes.get('stopped')}", flush=True)


if __name__ == "__main__":
    main()
