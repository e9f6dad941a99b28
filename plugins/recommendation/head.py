"""The ``two-tower`` head: fine-tunes a sentence encoder on (history, next item) pairs.

The model folder holds the fine-tuned encoder (sentence-transformers format, safetensors),
``recommender.json`` (fusion weights, history length, item text columns), ``items.json``
(the catalogue), ``users.json`` (every user's full history, for serving) and
``item_embeddings.safetensors`` ((I, D) float32, the FAISS index is rebuilt from it).
"""
from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from tunehub.core.errors import DataError, ModelError
from tunehub.core.heads import FitOutput, Run, TaskData

from . import dataset

META = "recommender.json"


class TwoTowerHead:
    name = "two-tower"
    description = ("Text-aware recommender: user and item towers share a sentence encoder "
                   "(sentence-transformers, MNRL), FAISS retrieval, fused with ItemKNN/popularity.")
    schema = {
        "dataset.items": "",  # items file: item id + text columns
        "dataset.item_text": ["title"],  # text columns of the items file the item tower reads
        "dataset.min_rating": 0.0,  # rows with rating >= this are positive (0: every row)
        "dataset.cold_start_fraction": 0.05,  # share of items held out entirely (cold start)
        "head.history_len": 3,  # recent items in the user text
        "head.pairs_per_user": 5,  # training pairs per user (the latest)
        "head.fusion": "auto",  # auto (validated weights) | text (text only)
        "predict.k": 10,
        "predict.items": [],  # score these item ids instead of ranking the catalogue
    }

    @property
    def baselines(self) -> dict[str, Any]:
        """Baselines of this head alone: the base encoder's text similarity, not fine-tuned."""
        from . import untuned_baseline

        return {"untuned": untuned_baseline}

    def load_data(self, config: Mapping[str, Any], files: Mapping[str, Path]) -> TaskData:
        return dataset.load(config, files)

    def example_inputs(self, data: TaskData, config: Mapping[str, Any]) -> list[str]:
        """Inputs for a predict run: user ids."""
        return [user for user, _ in data.eval.test]

    # -- training -----------------------------------------------------------------
    def fit(self, run: Run) -> FitOutput:
        from datasets import Dataset
        from sentence_transformers import (SentenceTransformerTrainer,
                                           SentenceTransformerTrainingArguments, losses)
        from sentence_transformers.training_args import BatchSamplers

        from tunehub.core.biencoder import load_encoder
        from tunehub.core.engine import TrainSettings, run_trainer

        from . import scoring, towers

        cfg, settings = run.config, TrainSettings.from_config(run.config["train"])
        hist_len, seed = int(cfg["head"]["history_len"]), int(cfg["dataset"]["split_seed"])
        split, cases = run.data.train, run.data.eval
        fit_split, val_cases = split.without_last()  # fusion weights are chosen on these
        model = load_encoder(run.base_model, settings.max_length)

        untuned = towers.TextScorer(model, split, self._items(model, split, settings), hist_len)
        run.data.info["untuned_outputs"] = scoring.evaluate(untuned, split, cases, seed)

        pairs = towers.training_pairs(fit_split, hist_len, int(cfg["head"]["pairs_per_user"]))
        if not pairs["anchor"]:
            raise DataError("no training pairs: every user has a single positive interaction.")
        train_set = Dataset.from_dict(pairs)
        loss = losses.MultipleNegativesRankingLoss(model)
        model.model_card_data.widget = [{"text": ""}]  # no model card: skip its example pass

        def make_trainer(args):
            return SentenceTransformerTrainer(model=model, args=args, train_dataset=train_set,
                                              loss=loss)

        trainer, result = run_trainer(
            make_trainer, settings, run.work_dir, None, True, run.resume, run.callbacks,
            args_overrides={"batch_sampler": BatchSamplers.NO_DUPLICATES,
                            "train_sampling_strategy": "random"},
            args_class=SentenceTransformerTrainingArguments,
        )
        model = trainer.model
        vectors = self._items(model, split, settings)
        weights, validation = towers.Weights(), {}
        if cfg["head"]["fusion"] == "auto" and val_cases:
            val_text = towers.TextScorer(model, fit_split, vectors, hist_len)
            weights, validation = towers.choose_weights(
                towers.HybridScorer(val_text, fit_split, towers.Weights()), val_cases)
        text = towers.TextScorer(model, split, vectors, hist_len)
        outputs = scoring.evaluate(towers.HybridScorer(text, split, weights), split, cases, seed)
        text_only = run.score(scoring.evaluate(text, split, cases, seed))
        self._save(run.model_dir, model, split, vectors, weights, cfg, run.data.info["serving"])
        notes = {
            "split": run.data.summary["split"],
            "cold start": run.data.summary["cold-start items"],
            "training pairs": f"{len(pairs['anchor'])} (history of {hist_len} titles -> next item)",
            "scoring": towers.describe(weights, validation),
            "fine-tuned text only (test)": ", ".join(
                f"{k} {v:.4f}" for k, v in text_only.items() if k in ("hr@10", "ndcg@10", "auc",
                                                                      "cold_start_hr@10")),
            "train seconds": round(result.train_seconds, 1),
            "train samples/s": round(result.train_samples_per_second, 1),
            "precision": result.precision,
            "resumed from": result.resumed_from,
        }
        return FitOutput(outputs, result.log_history, notes)

    @staticmethod
    def _items(model, split, settings):
        from tunehub.core.biencoder import encode

        return encode(model, split.catalog.texts, settings.eval_batch_size)

    @staticmethod
    def _save(folder: Path, model, split, vectors, weights, cfg, serving) -> None:
        from safetensors.numpy import save_file

        folder.mkdir(parents=True, exist_ok=True)
        model.save(str(folder), safe_serialization=True, create_model_card=False)
        save_file({"embeddings": vectors}, str(folder / "item_embeddings.safetensors"))
        cat = split.catalog
        (folder / "items.json").write_text(json.dumps(
            {"ids": cat.ids, "titles": cat.titles, "texts": cat.texts}))
        (folder / "users.json").write_text(json.dumps(serving))
        (folder / META).write_text(json.dumps({
            "head": "two-tower", "weights": weights.as_dict(),
            "history_len": int(cfg["head"]["history_len"]),
            "max_length": int(cfg["train"]["max_length"]),
            "item_text": list(cfg["dataset"]["item_text"]),
        }, indent=2) + "\n")

    # -- using a saved model ------------------------------------------------------
    def evaluate(self, model_dir: Path, data: TaskData, config: Mapping[str, Any]):
        from tunehub.core.biencoder import load_encoder
        from tunehub.core.engine import TrainSettings

        from . import scoring, towers

        meta = _meta(model_dir)
        settings = TrainSettings.from_config(config["train"])
        model = load_encoder(model_dir, meta["max_length"])
        split = data.train
        text = towers.TextScorer(model, split, self._items(model, split, settings), meta["history_len"])
        scorer = towers.HybridScorer(text, split, towers.Weights(**meta["weights"]))
        return scoring.evaluate(scorer, split, data.eval, int(config["dataset"]["split_seed"]))

    def load(self, model_dir: Path, config: Mapping[str, Any]) -> "Recommender":
        """A predictor that loads the model folder once (predict, serve)."""
        return Recommender(Path(model_dir), config)

    def predict(self, model_dir: Path, inputs: Sequence[str], config: Mapping[str, Any]):
        return self.load(model_dir, config).predict(inputs)


class Recommender:
    """Top-k unseen items (or scores of given items) for known users, from a model folder."""

    def __init__(self, model_dir: Path, config: Mapping[str, Any]) -> None:
        from safetensors.numpy import load_file

        from tunehub.core.biencoder import load_encoder

        self.meta, self.config = _meta(model_dir), config
        items = json.loads((model_dir / "items.json").read_text())
        self.users = json.loads((model_dir / "users.json").read_text())
        catalog = dataset.Catalog(items["ids"], items["titles"], items["texts"])
        index = catalog.index
        self.split = dataset.Split(
            catalog, {u: [index[i] for i in h["positives"]] for u, h in self.users.items()},
            {u: {index[i] for i in h["seen"]} for u, h in self.users.items()})
        self.model = load_encoder(model_dir, self.meta["max_length"])  # torch module
        self.vectors = load_file(str(model_dir / "item_embeddings.safetensors"))["embeddings"]
        self.scorer = None  # built on first use (after any quantisation of self.model)

    def _check(self, inputs: Sequence[str], wanted: list[str]) -> None:
        catalog = self.split.catalog
        for user in inputs:
            if user not in self.users:
                example = ", ".join(list(self.users)[:3])
                raise DataError(f"unknown user '{user}': not in the interactions this model was "
                                f"trained on ({len(self.users)} users, e.g. {example}).")
        missing = [i for i in wanted if i not in catalog.index]
        if missing:
            raise DataError(f"unknown item id(s) {', '.join(missing[:5])}: not in the model's "
                            f"catalogue of {len(catalog.ids)} items (e.g. {', '.join(catalog.ids[:3])}).")

    def predict(self, inputs: Sequence[str]) -> list[dict[str, Any]]:
        import numpy as np

        from . import towers

        inputs = [str(u).strip() for u in inputs]
        wanted = [str(i) for i in self.config["predict"]["items"]]
        self._check(inputs, wanted)
        if self.scorer is None:
            text = towers.TextScorer(self.model, self.split, self.vectors, self.meta["history_len"])
            self.scorer = towers.HybridScorer(text, self.split, towers.Weights(**self.meta["weights"]))
        scores = self.scorer(inputs)
        catalog, k = self.split.catalog, int(self.config["predict"]["k"])
        results = []
        for user, row in zip(inputs, scores):
            seen = self.split.seen[user]
            if wanted:
                picked = sorted((catalog.index[i] for i in wanted), key=lambda i: -row[i])
            else:
                row = row.copy()
                row[list(seen)] = -np.inf
                picked = [int(i) for i in np.argsort(-row, kind="stable")[:k] if np.isfinite(row[i])]
            results.append({"user": user, "results": [
                {"item_id": catalog.ids[i], "title": catalog.titles[i], "score": round(float(row[i]), 4),
                 **({"seen": i in seen} if wanted else {})} for i in picked]})
        return results


def _meta(model_dir: Path) -> dict[str, Any]:
    path = Path(model_dir) / META
    if not path.is_file():
        raise ModelError(f"{model_dir} is not a two-tower recommender (no {META}); pass a "
                         "fine-tuned version such as recommendation-scoring@latest.")
    return json.loads(path.read_text())
