"""The ``two-tower`` head: a text tower trained on interactions, fused with collaborative signals.

The model folder holds the item tower (sentence-transformers format, safetensors: the
encoder, then the trained adapter as a residual ``Dense`` layer), ``recommender.json`` (pooling,
fusion weights, signals, EASE lambda, item text columns), ``items.json`` (the catalogue),
``users.json`` (every user's full history, for serving) and ``item_embeddings.safetensors``
((I, D) float32 item vectors). Collaborative signals are refitted from ``users.json`` when
the model is loaded (seconds for MovieLens-sized data).
"""
from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from tunehub.plugin import ConfigError, DataError, ModelError
from tunehub.plugin import FitOutput, Run, TaskData

from . import dataset

META = "recommender.json"
ADAPTERS = ("tanh", "linear", "none")


class TwoTowerHead:
    name = "two-tower"
    description = ("Text-aware recommender: a sentence-encoder item tower with a trained adapter, "
                   "pooled user vectors, fused with EASE/transitions/popularity; cold items ranked "
                   "by text.")
    input_role = "user"  # what a prediction reads: the column role of `app predict --input`
    paths = ("dataset.items",)  # a file setting: relative in a task file means beside it
    schema = {
        "dataset.items": "",  # items file: item id + text columns
        "dataset.item_text": ["title"],  # text columns of the items file the item tower reads
        "dataset.min_rating": 0.0,  # rows with rating >= this are positive (0: every row)
        "dataset.cold_start_fraction": 0.05,  # share of items held out entirely (cold start)
        "head.signals": ["ease", "transitions"],  # collaborative signals fused with the text
        "head.adapter": "tanh",  # item-tower adapter: tanh | linear | none (untuned text tower)
        "head.fusion": "auto",  # auto (validated weights) | text (text tower only)
        "head.never_below": ["popularity", "itemknn", "ease", "transitions"],  # on validation
        "predict.k": 10,
        "predict.items": [],  # score these item ids instead of ranking the catalogue
    }

    @property
    def baselines(self) -> dict[str, Any]:
        """Baselines of this head alone: the base encoder's text similarity, not fine-tuned."""
        from . import untuned_baseline

        return {"untuned": untuned_baseline}

    def load_data(self, config: Mapping[str, Any], files: Mapping[str, Path]) -> TaskData:
        from .collab import check_ease_size, warm_items
        from .recipe import check_never_below, check_signals

        check_signals(config["head"]["signals"])
        check_never_below(config["head"]["never_below"])
        if config["head"]["adapter"] not in ADAPTERS:
            raise ConfigError(f"head.adapter: '{config['head']['adapter']}' is not one of "
                              f"{', '.join(ADAPTERS)} (e.g. --set head.adapter=tanh).")
        data = dataset.load(config, files)
        if "ease" in config.get("baselines", ()):
            check_ease_size(len(warm_items(data.train)))  # before any model loads
        return data

    def example_inputs(self, data: TaskData, config: Mapping[str, Any]) -> list[str]:
        """Inputs for a predict run: user ids."""
        return [user for user, _ in data.eval.test]

    # -- feedback -------------------------------------------------------------------
    def row_keys(self, data: TaskData, config: Mapping[str, Any]) -> dict[str, list[str]]:
        """A row is an interaction: user and item."""
        ids = data.train.catalog.ids
        train = [f"{user}\t{ids[i]}" for user, seen in data.train.seen.items() for i in sorted(seen)]
        cases = data.eval.test + data.eval.cold
        return {"train": train, "eval": [f"{user}\t{ids[i]}" for user, i in cases]}

    corrections = {"item": {"type": ["string", "integer"], "minLength": 1,
                            "description": "The item the user chose (input: the user id)."}}

    def join_feedback(self, data: TaskData, items: Sequence[Mapping[str, Any]],
                      config: Mapping[str, Any], held_out: set[str]) -> dict[str, int]:
        """Each (user, chosen item) joins the user's training history as their newest
        positive, and the history the model serves from."""
        from tunehub.plugin import latest_corrections

        split, serving = data.train, data.info["serving"]
        cold = {i for _, i in data.eval.cold}  # held out of training entirely

        def key(item: Mapping[str, Any]) -> str | None:
            user = item.get("input")
            return f"{user.strip()}\t{item['item']}" if isinstance(user, str) and user.strip() else None

        latest, counts = latest_corrections(items, held_out, key)
        for found in latest:
            user, choice = found.split("\t", 1)
            index = split.catalog.index.get(choice)
            if index is None:
                counts["skipped (not an item of the catalogue)"] += 1
            elif index in cold:
                counts["skipped (a cold-start item, held out of training)"] += 1
            elif index in split.history.get(user, ()):
                counts["already in training"] += 1
            else:
                split.history.setdefault(user, []).append(index)
                split.seen.setdefault(user, set()).add(index)
                history = serving.setdefault(user, {"positives": [], "seen": []})
                history["positives"].append(choice)
                history["seen"].append(choice)
                counts["added"] += 1
        return dict(counts)

    # -- training -----------------------------------------------------------------
    def fit(self, run: Run) -> FitOutput:
        from tunehub.plugin.biencoder import load_encoder
        from tunehub.plugin import TrainSettings, phase, say

        from . import adapter, fusion, recipe, scoring, towers

        cfg, settings = run.config, TrainSettings.from_config(run.config["train"])
        seed, split, cases = int(cfg["dataset"]["split_seed"]), run.data.train, run.data.eval
        started = time.perf_counter()
        with phase(f"encoding {len(split.catalog.ids)} items with the base encoder"):
            model = load_encoder(run.base_model, settings.max_length)
            base = recipe.encode_items(model, split, settings.eval_batch_size)
        val = recipe.validation_for(split, cfg)
        with phase("scoring the untuned text tower (the untuned baseline)"):
            pooling0, _ = towers.choose_pooling(base, val.split, val.warm)
            untuned = towers.TextScorer(base, split, pooling0)
            run.data.info["untuned_outputs"] = scoring.evaluate(untuned, split, cases, seed)

        kind = cfg["head"]["adapter"]
        with phase(f"training the item-tower adapter ({kind})"):
            params, log_history = self._train(base, val, pooling0, kind, settings)
        train_seconds = time.perf_counter() - started
        vectors = adapter.apply(params, base, kind)
        if params:
            model = adapter.attach(model, params, kind)
        pooling, _ = towers.choose_pooling(vectors, val.split, val.warm)
        text = towers.TextScorer(vectors, split, pooling)
        names, skipped = recipe.usable_signals(split, cfg["head"]["signals"])
        against = recipe.baseline_parts(split, cfg["head"]["never_below"])  # the floor
        extra = [p for p in dict.fromkeys(against.values()) if p not in (*names, "pop")]
        lam, val_ease = 0.0, None
        if "ease" in (*names, *extra):
            with phase("choosing EASE's lambda on validation"):
                lam, _, val_ease = recipe.ease_lambda(run.data, cfg)
        choice, report, why = fusion.Fusion({"text": 1.0}), {}, None
        if cfg["head"]["fusion"] == "auto" and val.warm:
            with phase("choosing the fusion weights on validation"):
                scorer = recipe.fused(val.split, vectors, pooling, [*names, *extra], lam,
                                      fusion.Fusion(), {"ease": val_ease} if val_ease else None)
                reference = fusion.hit_rate(fusion.target_ranks(
                    towers.TextScorer(base, val.split, pooling0)([u for u, _ in val.cold]),
                    val.split, val.cold)) if val.cold else None  # the untuned tower's
                choice, report, why = fusion.choose_fusion(scorer, val, seed, reference, against,
                                                           mix=["text", *names, "pop"])
                names += [p for p in extra if choice.weights.get(p)]  # a baseline ships alone
                del scorer
        say(f"fusion: {fusion.describe(choice)}")
        with phase("scoring the fused model and the text tower alone on test"):
            final = recipe.fused(split, vectors, pooling, names, lam, choice)
            outputs = scoring.evaluate(final, split, cases, seed)
            if "ease" in final.signals and "ease" in cfg.get("baselines", ()):  # the same model
                run.data.info["ease_outputs"] = scoring.evaluate(final.signals["ease"], split,
                                                                 cases, seed)
            text_only = run.score(scoring.evaluate(text, split, cases, seed))
        with phase("saving the item tower and the catalogue"):
            self._save(run.model_dir, model, vectors, split, cfg, run.data.info["serving"],
                       {"pooling": pooling.as_dict(), "fusion": choice.as_dict(), "signals": names,
                        "ease_lambda": lam})
        notes = {
            "split": run.data.summary["split"],
            "cold start": run.data.summary["cold-start items"],
            "validation": f"{len(val.warm)} warm cases (each user's last three training "
                          f"items), {len(val.cold)} cold cases (a seeded share of training "
                          "items held out entirely); no test data",
            "user tower": f"recency-weighted mean of the last {pooling.history_len} item vectors, "
                          f"decay {pooling.decay:g} (untuned: {pooling0.history_len}, "
                          f"{pooling0.decay:g}; chosen on validation)",
            "scoring": fusion.describe(choice),
            "fusion on validation": report,
            "fusion choice": why,
            "ease lambda": lam or None,
            "collaborative signals": skipped or ", ".join(names) or "none",
            "fine-tuned text tower alone (test)": {k: round(v, 4) for k, v in text_only.items()},
            "train seconds": round(train_seconds, 1),
            "item tower": f"MiniLM + {kind} residual adapter, trained on every position of "
                          "every history (full-catalogue softmax), best epoch on validation"
                          if params else "the base encoder, untrained",
            "precision": "fp32 (adapter over frozen encoder embeddings)",
        }
        return FitOutput(outputs, log_history, notes)

    @staticmethod
    def _train(base, val, pooling, kind, settings):
        """The adapter, trained on the validation split, early-stopped on its cases."""
        from . import adapter, towers

        if kind == "none" or not val.warm:
            return {}, []
        # "auto" epochs: up to the engine's max_epochs, early stopping ends it sooner
        epochs = settings.epochs if isinstance(settings.epochs, int) else \
            int(getattr(settings, "max_epochs", 10))
        patience = int(getattr(settings, "early_stopping_patience", 2)) or epochs
        return adapter.train_adapter(
            base, val.split, pooling,
            adapter.AdapterSettings(kind=kind, epochs=epochs, patience=patience,
                                    batch_size=settings.batch_size,
                                    learning_rate=settings.learning_rate, seed=settings.seed),
            towers.relative_gain(base, val, pooling, lambda p: adapter.apply(p, base, kind)))


    @staticmethod
    def _save(folder: Path, model, vectors, split, cfg, serving, choices) -> None:
        from safetensors.numpy import save_file

        folder.mkdir(parents=True, exist_ok=True)
        model.save(str(folder), safe_serialization=True, create_model_card=False)
        save_file({"embeddings": vectors}, str(folder / "item_embeddings.safetensors"))
        cat = split.catalog
        (folder / "items.json").write_text(json.dumps(
            {"ids": cat.ids, "titles": cat.titles, "texts": cat.texts}))
        (folder / "users.json").write_text(json.dumps(serving))
        (folder / META).write_text(json.dumps({
            "head": "two-tower", **choices,
            "max_length": int(cfg["train"]["max_length"]),
            "item_text": list(cfg["dataset"]["item_text"]),
        }, indent=2) + "\n")

    # -- using a saved model ------------------------------------------------------
    def evaluate(self, model_dir: Path, data: TaskData, config: Mapping[str, Any]):
        from tunehub.plugin.biencoder import load_encoder
        from tunehub.plugin import TrainSettings

        from . import recipe, scoring

        meta = _meta(model_dir)
        settings = TrainSettings.from_config(config["train"])
        model = load_encoder(model_dir, meta["max_length"])  # the adapter is its last layers
        split = data.train
        vectors = recipe.encode_items(model, split, settings.eval_batch_size)
        scorer = _scorer(meta, split, vectors)
        return scoring.evaluate(scorer, split, data.eval, int(config["dataset"]["split_seed"]))

    def load(self, model_dir: Path, config: Mapping[str, Any]) -> "Recommender":
        """A predictor that loads the model folder once (predict, serve)."""
        return Recommender(Path(model_dir), config)

    def predict(self, model_dir: Path, inputs: Sequence[str], config: Mapping[str, Any]):
        return self.load(model_dir, config).predict(inputs)


class Recommender:
    """Top-k unseen items (or scores of given items) for known users, from a model folder.

    Scoring is vector and sparse-matrix arithmetic over the saved item vectors and the
    users' histories; the encoder is not run, so there is no torch model to quantise."""

    def __init__(self, model_dir: Path, config: Mapping[str, Any]) -> None:
        from safetensors.numpy import load_file

        self.meta, self.config = _meta(model_dir), config
        items = json.loads((model_dir / "items.json").read_text())
        self.users = json.loads((model_dir / "users.json").read_text())
        catalog = dataset.Items(items["ids"], items["titles"], items["texts"])
        index = catalog.index
        self.split = dataset.Split(
            catalog, {u: [index[i] for i in h["positives"]] for u, h in self.users.items()},
            {u: {index[i] for i in h["seen"]} for u, h in self.users.items()})
        self.vectors = load_file(str(model_dir / "item_embeddings.safetensors"))["embeddings"]
        self.scorer = None  # built on first use

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

        inputs = [str(u).strip() for u in inputs]
        wanted = [str(i) for i in self.config["predict"]["items"]]
        self._check(inputs, wanted)
        if self.scorer is None:
            self.scorer = _scorer(self.meta, self.split, self.vectors)
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


def _scorer(meta: Mapping[str, Any], split: dataset.Split, vectors):
    """The fused scorer a model folder describes, its collaborative signals fitted on ``split``."""
    from . import fusion, recipe, towers

    choice = fusion.Fusion(meta["fusion"]["weights"], meta["fusion"]["cold_bias"],
                           meta["fusion"].get("cold_weights"),
                           meta["fusion"].get("impute_cold", True))
    return recipe.fused(split, vectors, towers.Pooling(**meta["pooling"]), meta["signals"],
                        meta["ease_lambda"], choice)


def _meta(model_dir: Path) -> dict[str, Any]:
    path = Path(model_dir) / META
    if not path.is_file():
        raise ModelError(f"{model_dir} is not a two-tower recommender (no {META}); pass a "
                         "fine-tuned version such as recommendation-scoring@latest.")
    return json.loads(path.read_text())
