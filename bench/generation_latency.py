"""Serving latency of a generated answer: a fine-tuned `support-answers` or
`customer-service-answers` version answers held-out questions with at most 64 new tokens,
through the predictor (`predict`) and streamed (`stream`, time to the first piece), beside
plain `model.generate` on the same weights and prompt in the same process (the ratio is
tunehub's overhead: retrieval, prompt building, citations).

    python bench/generation_latency.py [--model support-answers@latest] [--questions 20]
    python bench/generation_latency.py --model customer-service-answers@latest

Train the version first: `app run-task support-answers` (SmolLM2-135M-Instruct, LoRA).
For customer-service-answers only questions that are answered (not handed off) count.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import cpu_class  # noqa: E402


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="support-answers@latest")
    parser.add_argument("--questions", type=int, default=20)
    parser.add_argument("--max-new-tokens", type=int, default=64)
    args = parser.parse_args()

    import torch

    from tunehub.core.extending.plugins import load_catalog
    from tunehub.core.running.runner import load, load_data, prepare
    from tunehub.core.models.inference import configure_threads

    configure_threads()
    task = args.model.split("@")[0]
    section = "generate" if task == "customer-service-answers" else "predict"
    overrides = [f"{section}.max_new_tokens={args.max_new_tokens}", f"{section}.batch_size=1"]
    loaded = load(task, model=args.model, overrides=overrides)
    prepared = prepare(task, overrides=overrides, catalog=load_catalog())
    data = load_data(prepared)
    impl = loaded.predictor.impl
    if section == "generate":  # grounded: the prompt holds the entries the retriever found
        generator, field = impl.writer.generator, "reply"
        asked = [q for q, f in zip(data.eval.texts, data.eval.faq_ids) if f]

        def full_prompt(question: str) -> str:
            entries, _ = impl._found([question])
            return impl.writer.prompt(question, list(entries[0]))

        def answered(question: str) -> bool:  # the hand-off decides first: no generation
            entries, scores = impl._found([question])
            return not impl.hands_off(entries[0], scores[0])

        prompts = [q for q in asked if answered(q)][:args.questions]
    else:
        generator, field, full_prompt = impl.generator, "text", lambda q: impl.prompts([q])[0]
        prompts = data.eval.prompts[:args.questions]
    loaded.predict([prompts[0]])  # warm-up

    whole, first, plain, tokens = [], [], [], []
    for prompt in prompts:
        start = time.perf_counter()
        text = loaded.predict([prompt])[0][field]
        whole.append(time.perf_counter() - start)
        tokens.append(len(generator.tokenizer(text, add_special_tokens=False)["input_ids"]))
        start = time.perf_counter()
        pieces = loaded.predictor.stream(prompt)
        next(pieces)
        first.append(time.perf_counter() - start)
        for _ in pieces:
            pass
        input_ids, mask = generator._batch([full_prompt(prompt)])
        start = time.perf_counter()
        with torch.inference_mode():
            generator.model.generate(input_ids=input_ids, attention_mask=mask,
                                     **generator._settings(input_ids.shape[1]))
        plain.append(time.perf_counter() - start)

    print(f"{args.model}, {len(prompts)} held-out questions, at most {args.max_new_tokens} new "
          f"tokens (mean {statistics.mean(tokens):.1f} written); {cpu_class()}")
    for name, values in (("answer (predict)", whole), ("first streamed piece", first),
                         ("plain model.generate", plain)):
        print(f"  {name:22s} p50 {percentile(values, 0.5):.3f} s  p95 {percentile(values, 0.95):.3f} s")
    print(f"  predict / plain generate (p50): {percentile(whole, 0.5) / percentile(plain, 0.5):.2f}x")


if __name__ == "__main__":
    main()
