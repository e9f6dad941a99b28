"""Quality and speed of `entity-extraction` on CoNLL-2003 English.

    python bench/ner_quality.py [--set key=value ...]
    python bench/ner_quality.py --speed-only ARTIFACT_FOLDER   # prediction speed only

Runs what `app run-task entity-extraction --data conll2003/train.jsonl --eval-data
conll2003/test.jsonl --set dataset.validation=conll2003/dev.jsonl` runs (best epoch chosen
on dev, never on test), then prints test entity F1 and per-type F1 beside the gazetteer
and all-O baselines, test F1 with greedy (argmax) decoding instead of the constrained
default, and batched prediction speed on the raw test sentences. Skips when
../shared/data is absent.
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time

from _common import data_dir

TARGET_F1 = 0.88
TARGET_SENTENCES_PER_S = 200


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    parser.add_argument("--speed-only", metavar="ARTIFACT",
                        help="only measure prediction speed of this fine-tuned version")
    args = parser.parse_args()
    folder = data_dir("conll2003")
    if args.speed_only:
        speed(args.speed_only, folder / "test.jsonl")
        return
    os.environ.setdefault("TUNEHUB_HOME", tempfile.mkdtemp(prefix="tunehub-bench-"))
    import torch

    import tunehub
    from tunehub.core.running import runner

    overrides = [f"dataset.validation={folder / 'dev.jsonl'}", *args.overrides]
    started = time.perf_counter()
    result = tunehub.run_task("entity-extraction", data=folder / "train.jsonl",
                              eval_data=folder / "test.jsonl", overrides=overrides)
    minutes = (time.perf_counter() - started) / 60
    f1 = result.metrics["f1"]
    print(f"test f1 {f1:.4f} precision {result.metrics['precision']:.4f} recall "
          f"{result.metrics['recall']:.4f} macro_f1 {result.metrics['macro_f1']:.4f} "
          f"token_accuracy {result.metrics['token_accuracy']:.4f} "
          f"(target f1 >= {TARGET_F1}: {'meets' if f1 >= TARGET_F1 else 'below'}) "
          f"run {minutes:.1f} min with {torch.get_num_threads()} thread(s); overrides {overrides}")
    for kind, row in result.details["per_type"].items():
        print(f"  {kind:8s} f1 {row['f1']:.4f} precision {row['precision']:.4f} "
              f"recall {row['recall']:.4f} support {row['support']}")
    for name, values in result.baselines.items():
        print(f"  baseline {name:10s} f1 {values['f1']:.4f} macro_f1 {values['macro_f1']:.4f} "
              f"token_accuracy {values['token_accuracy']:.4f}")
    print(f"  notes {result.notes}", flush=True)
    greedy = runner.evaluate("entity-extraction", model=result.artifact, write=False,
                             data=folder / "test.jsonl", overrides=["head.decoding=argmax"])
    print(f"  argmax decoding: test f1 {greedy.metrics['f1']:.4f} (viterbi {f1:.4f})")
    speed(result.artifact, folder / "test.jsonl")


def speed(artifact: str, path) -> None:
    """Sentences per second of batched prediction on the raw test sentences."""
    import json

    from tunehub.core.running import runner

    texts = [" ".join(json.loads(line)["tokens"]) for line in open(path, encoding="utf-8")]
    loaded = runner.load("entity-extraction", model=artifact)
    loaded.predict(texts[:64])  # warm-up
    started, cpu = time.perf_counter(), time.process_time()
    outputs = loaded.predict(texts)
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    found = sum(len(o["entities"]) for o in outputs)
    import torch

    # On a shared machine wall time depends on the load; CPU time is what one idle core needs.
    rate = len(texts) / cpu
    print(f"  predict: {len(texts)} sentences, {found} entities, {torch.get_num_threads()} "
          f"thread(s): wall {seconds:.1f} s ({len(texts) / seconds:.0f} sentences/s), CPU "
          f"{cpu:.1f} s ({rate:.0f} sentences per CPU-second; target >= "
          f"{TARGET_SENTENCES_PER_S}: {'meets' if rate >= TARGET_SENTENCES_PER_S else 'below'})")


if __name__ == "__main__":
    main()
