"""How fast a decoder writes grounded answers in fp32 and in bf16 weights, and at which
generation batch size: the packaged SmolLM2 (untuned) answers the bundled FAQ's questions
from three entries each, greedy, in the same process for every setting; prints seconds,
the ratio to fp32 at batch 8 (the old default) and how many answers equal fp32's.

    python bench/generation_precision.py [--questions 32] [--max-new-tokens 64]

bf16 only pays where the CPU runs it natively (AVX512-BF16 or AMX); elsewhere `auto`
keeps fp32, and this benchmark says so before it runs.
"""
from __future__ import annotations

import argparse
import csv
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import ROOT, cpu_class  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--questions", type=int, default=32)
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--model", default="smollm2")
    args = parser.parse_args()

    from tunehub.core.artifacts import hub
    from tunehub.core.extending.plugins import load_catalog
    from tunehub.core.running.engine import bf16_is_fast
    from tunehub.plugin import generation

    base = hub.resolve_model(args.model, load_catalog().models())
    with open(ROOT / "plugins" / "customer_service" / "data" / "faq.csv", newline="",
              encoding="utf-8") as handle:
        faq = list(csv.DictReader(handle))
    rows = [faq[i % len(faq)] for i in range(args.questions)]
    prompts = [generation.grounded_prompt(
        row["question"], [(e["question"], e["answer"]) for e in faq[i % len(faq):][:3]])
        for i, row in enumerate(rows)]
    print(f"{cpu_class()}; {len(prompts)} grounded prompts, at most {args.max_new_tokens} new "
          f"tokens, greedy, {args.model} untuned")
    if not bf16_is_fast():
        print("this CPU has no native bf16: precision auto keeps fp32 here, and bf16 below is "
              "emulated (slower)")
    answers, seconds = {}, {}
    for precision in ("fp32", "bf16"):
        for batch in (8, 32):
            generator = generation.load_base(
                base, {"max_new_tokens": args.max_new_tokens, "batch_size": batch},
                precision=precision)
            started = time.perf_counter()
            answers[precision, batch] = generator.generate(prompts)
            seconds[precision, batch] = time.perf_counter() - started
    reference = answers["fp32", 8]
    for (precision, batch), took in seconds.items():
        same = sum(a == b for a, b in zip(answers[precision, batch], reference))
        print(f"  {precision} batch {batch:>2}: {took:6.1f} s, {seconds['fp32', 8] / took:4.2f}x "
              f"fp32 batch 8; {same}/{len(prompts)} answers equal fp32 batch 8's")


if __name__ == "__main__":
    main()
