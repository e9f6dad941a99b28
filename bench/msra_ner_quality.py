"""Quality of `entity-extraction-zh` with default settings on MSRA-style Chinese NER.

    python bench/msra_ner_quality.py [--train-sentences N] [--set key=value ...]

Runs what `app run-task entity-extraction-zh --data msra_ner/train.jsonl --eval-data
msra_ner/test.jsonl` runs (the best epoch chosen on a validation slice of the training
sentences, never on test) and prints test entity F1 (CoNLL semantics), per-type F1, the
gazetteer and all-O baselines of the same run, the target and the wall time.
``--train-sentences N`` trains on the first N training sentences (the file is shuffled):
the whole 50,289 take hours on 2 CPU cores. Skips when ../shared/data is absent.
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from _common import cpu_class, data_dir

TARGET_F1 = 0.90


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--train-sentences", type=int, default=0,
                        help="train on the first N training sentences (0: all)")
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    args = parser.parse_args()
    folder = data_dir("msra_ner")
    os.environ.setdefault("TUNEHUB_HOME", tempfile.mkdtemp(prefix="tunehub-bench-"))
    import tunehub

    train = folder / "train.jsonl"
    if args.train_sentences:
        subset = Path(tempfile.mkdtemp(prefix="msra-")) / f"train_first_{args.train_sentences}.jsonl"
        with open(train, encoding="utf-8") as source, open(subset, "w", encoding="utf-8") as out:
            for n, line in enumerate(source):
                if n >= args.train_sentences:
                    break
                out.write(line)
        train = subset
    started = time.perf_counter()
    result = tunehub.run_task("entity-extraction-zh", data=train,
                              eval_data=folder / "test.jsonl", overrides=args.overrides)
    minutes = (time.perf_counter() - started) / 60
    f1 = result.metrics["f1"]
    print(f"msra test f1 {f1:.4f} precision {result.metrics['precision']:.4f} recall "
          f"{result.metrics['recall']:.4f} macro_f1 {result.metrics['macro_f1']:.4f} "
          f"(target f1 >= {TARGET_F1}: {'meets' if f1 >= TARGET_F1 else 'below'}) trained on "
          f"{args.train_sentences or 'all'} sentences, run {minutes:.1f} min; "
          f"overrides {args.overrides or 'none'}; {cpu_class()}")
    for kind, row in result.details["per_type"].items():
        print(f"  {kind:8s} f1 {row['f1']:.4f} precision {row['precision']:.4f} "
              f"recall {row['recall']:.4f} support {row['support']}")
    for name, values in result.baselines.items():
        print(f"  baseline {name:10s} f1 {values['f1']:.4f} precision {values['precision']:.4f} "
              f"recall {values['recall']:.4f}")
    print(f"  notes {result.notes}", flush=True)


if __name__ == "__main__":
    main()
