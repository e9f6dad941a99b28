"""The ``bi-encoder`` head: a sentence-transformers model fine-tuned on (query, FAQ entry)
pairs, a FAISS index over the FAQ, and a calibrated hand-off threshold.

A second stage, a cross-encoder (`rerank`), re-scores the first stage's top-k entries when
the validation questions say it helps. The model folder is the whole answering service: the
encoder in sentence-transformers format (safetensors), ``reranker/`` (the cross-encoder,
when used), ``index/`` (FAISS, not re-embedded on load), ``faq.jsonl`` (the entries with
their metadata) and ``retrieval.json`` (threshold, settings, the re-ranking choice).
"""
from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from tunehub.plugin import ConfigError, ModelError
from tunehub.plugin import FitOutput, Run, TaskData

from . import answers
from . import data as qa
from . import rerank
from .retrieval import calibrate_search, documents, entry_texts, outputs

FAQ_FILE, SETTINGS_FILE, INDEX_DIR = "faq.jsonl", "retrieval.json", "index"
HANDOFF = "I'm not sure I can answer that. Let me pass you to a member of our team."


class Retriever:
    """An encoder and the FAQ index built with it."""

    def __init__(self, model: Any, index: Any, faq: qa.Faq, batch_size: int = 128,
                 reranker: rerank.Reranker | None = None):
        self.model, self.index, self.faq, self.batch_size = model, index, faq, batch_size
        self.reranker = reranker

    @classmethod
    def build(cls, model: Any, faq: qa.Faq, train: qa.Queries, config: Mapping[str, Any]) -> "Retriever":
        from tunehub.plugin.biencoder import encode
        from tunehub.plugin.index import VectorIndex

        head, batch = config["head"], config["train"]["eval_batch_size"]
        texts, owners = documents(faq, train, head)
        vectors = encode(model, texts, batch)  # (N, D)
        index = VectorIndex.build(vectors, owners, kind=head["index"], exact_max=head["exact_max"])
        return cls(model, index, faq, batch)

    def first_stage(self, texts: list[str], k: int) -> tuple[np.ndarray, np.ndarray]:
        """The bi-encoder and the index alone: top ``k`` entries by cosine similarity."""
        from tunehub.plugin.biencoder import encode

        return self.index.search(encode(self.model, texts, self.batch_size), k)

    def search(self, texts: list[str], k: int) -> tuple[np.ndarray, np.ndarray]:
        """The answering search: the first stage, re-ranked when a re-ranker is used."""
        if self.reranker is None:
            return self.first_stage(texts, k)
        return self.reranker.search(self.first_stage)(texts, k)

    def save(self, folder: Path, threshold: float, note: str, config: Mapping[str, Any],
             choice: Mapping[str, Any] | None = None, base: Mapping[str, Any] | None = None,
             extra: Mapping[str, Any] | None = None) -> None:
        from tunehub.plugin.biencoder import save_encoder

        save_encoder(self.model, folder, base)
        if self.reranker is not None:
            rerank.save_cross_encoder(self.reranker.model, folder / rerank.RERANK_DIR)
        self.index.save(folder / INDEX_DIR)
        with open(folder / FAQ_FILE, "w", encoding="utf-8") as handle:
            for record in self.faq.records():
                handle.write(json.dumps(record, ensure_ascii=False) + "\n")
        head = config["head"]
        settings = {"head": "bi-encoder", "threshold": threshold, "calibration": note,
                    "top_k": head["top_k"], "handoff_message": head["handoff_message"],
                    "document": head["document"], "index_paraphrases": head["index_paraphrases"],
                    "index_kind": self.index.kind, "vectors": len(self.index),
                    "rerank": dict(choice or {"used": False}), "answer": "retrieved",
                    **(extra or {})}
        (folder / SETTINGS_FILE).write_text(json.dumps(settings, indent=2) + "\n")

    @classmethod
    def load(cls, folder: Path, max_length: int, batch_size: int = 128) -> tuple["Retriever", dict]:
        from tunehub.plugin.biencoder import load_encoder
        from tunehub.plugin.index import VectorIndex

        folder = Path(folder)
        if not (folder / SETTINGS_FILE).is_file() or not (folder / FAQ_FILE).is_file():
            raise ModelError(f"{folder} is not a bi-encoder FAQ model (no {SETTINGS_FILE} or "
                             f"{FAQ_FILE}); pass a fine-tuned version such as TASK@latest.")
        settings = json.loads((folder / SETTINGS_FILE).read_text())
        lines = (folder / FAQ_FILE).read_text(encoding="utf-8").splitlines()
        faq = qa.Faq.from_records([json.loads(line) for line in lines if line.strip()], str(folder))
        index = VectorIndex.load(folder / INDEX_DIR)
        reranker = None
        choice = settings.get("rerank") or {}
        if choice.get("used"):
            cross = rerank.load_cross_encoder(folder / rerank.RERANK_DIR, choice["max_length"])
            reranker = rerank.Reranker(cross, entry_texts(faq, settings["document"]), choice["k"],
                                       batch_size, choice["weight"])
        return cls(load_encoder(folder, max_length), index, faq, batch_size, reranker), settings


class BiEncoderHead:
    name = "bi-encoder"
    description = ("FAQ retrieval: sentence-transformers bi-encoder fine-tuned with in-batch "
                   "negatives, FAISS index, calibrated hand-off.")
    input_role = "query"  # what a prediction reads: the column role of `app predict --input`
    paths = ("dataset.faq",)  # a file setting: relative in a task file means beside it
    models = ("generate.model",)  # the decoder of generated answers (the runner resolves it)
    # numeric settings and the interval each must lie in (checked before any data loads)
    ranges = {"dataset.validation_fraction": "[0, 1)", "head.rerank_min_questions": "[0, inf)"}
    schema = {
        "dataset.faq": "",  # FAQ file (id,question,answer); empty: one entry per faq_id
        "dataset.validation_fraction": 0.1,  # of training queries, held out to calibrate
        "head.document": "question",  # what stands for an entry: question | answer | question+answer
        "head.index_paraphrases": True,  # also index training queries as known paraphrases
        "head.max_queries_per_entry": 0,  # training queries per entry (seeded sample); 0 = all
        "head.loss": "mnrl",  # mnrl (in-batch negatives) | all-entries (softmax over every entry)
        "head.loss_scale": 20.0,  # similarity scale of the loss
        "head.hard_negatives": 0,  # per query, mined with the base model (0: in-batch only)
        "head.symmetric_loss": True,  # mnrl: also train each entry to pick its questions in the batch
        "head.top_k": 3,  # answers returned by predict
        "head.index": "auto",  # auto (exact up to head.exact_max vectors, HNSW above) | flat | hnsw
        "head.exact_max": 100_000,
        "head.handoff_message": HANDOFF,
        "head.rerank": "auto",  # auto (kept when validation says it helps) | true | false
        "head.rerank_k": 0,  # first-stage entries re-scored; 0: chosen on validation (10 or 20)
        "head.rerank_weight": -1.0,  # cross-encoder's share of the final score; -1: chosen on validation
        "head.rerank_layers": 0,  # cross-encoder keeps the base encoder's first N layers; 0 = all
        "head.rerank_negatives": 3,  # per training question, mined with the fine-tuned first stage
        "head.rerank_queries_per_entry": 20,  # training questions per entry for the re-ranker
        "head.rerank_loss": "bce",  # bce (pairs, positives weighted) | mnrl (in-batch + mined)
        # auto trains it from this many training questions (after the per-entry cap): with
        # fewer it was never kept on validation (see rerank.MIN_QUESTIONS)
        "head.rerank_min_questions": 2000,
        "head.rerank_epochs": 1,
        "head.rerank_learning_rate": 2e-4,  # a new scoring layer: higher than fine-tuning alone
        **answers.SETTINGS,  # head.answer and the decoder's generate.* settings
    }

    @property
    def baselines(self) -> dict[str, Any]:
        """Baselines of this head alone: its base model without fine-tuning, and with
        generated answers the retriever's own stored answer and the untuned decoder."""
        return {"untuned": untuned_baseline, "retrieved-answer": retrieved_answer,
                "untuned-decoder": untuned_decoder}

    # -- data ---------------------------------------------------------------------
    def load_data(self, config: Mapping[str, Any], files: Mapping[str, Path]) -> TaskData:
        answers.check(config)
        faq, splits, evaluation, summary = qa.load(config, files)
        used = {role: path for role, path in files.items()}
        if config["dataset"]["faq"]:
            used["faq"] = Path(config["dataset"]["faq"]).expanduser()
        return TaskData(splits, evaluation, used, summary, {"faq": faq})

    def training_texts(self, data: TaskData, config: Mapping[str, Any]) -> list[str]:
        """The questions and FAQ entries the encoder reads (the core checks its tokenizer)."""
        faq = data.info["faq"]
        return list(data.train.train.texts) + list(faq.questions) + list(faq.answers)

    def example_inputs(self, data: TaskData, config: Mapping[str, Any]) -> list[str]:
        return list(data.eval.texts)

    # -- feedback -------------------------------------------------------------------
    def row_keys(self, data: TaskData, config: Mapping[str, Any]) -> dict[str, list[str]]:
        """A row is a query (trimmed); calibration queries count as trained on."""
        seen = data.train.train.texts + data.train.calibration.texts
        return {"train": [t.strip() for t in seen], "eval": [t.strip() for t in data.eval.texts]}

    corrections = {
        "faq_id": {"type": ["string", "integer"], "minLength": 1,
                   "description": "The FAQ entry that answers the query."},
        "handoff": {"const": True, "description": "None of the entries answers it: hand off."},
    }

    def join_feedback(self, data: TaskData, items: Sequence[Mapping[str, Any]],
                      config: Mapping[str, Any], held_out: set[str]) -> dict[str, int]:
        """A query with its right entry joins the training queries (a known query takes the
        new entry); a hand-off joins the calibration queries as out of scope, so the
        threshold learns to hand such queries off."""
        from tunehub.plugin import latest_corrections

        known = set(data.info["faq"].ids)
        latest, counts = latest_corrections(items, held_out)
        splits = data.train
        for text, item in latest.items():
            entry = "" if item.get("kind") == "handoff" else str(item["faq_id"])
            if entry and entry not in known:
                counts["skipped (not an entry of the FAQ)"] += 1
                continue
            replaced = False
            for queries in (splits.train, splits.calibration):  # the query leaves where it was
                for i in [i for i, t in enumerate(queries.texts) if t.strip() == text][::-1]:
                    del queries.texts[i], queries.faq_ids[i]
                    replaced = True
            target = splits.train if entry else splits.calibration
            target.texts.append(text)
            target.faq_ids.append(entry)
            counts[("changed a training query" if replaced else "added")
                   + (" (hand-off)" if not entry else "")] += 1
        return dict(counts)

    # -- training -----------------------------------------------------------------
    def fit(self, run: Run) -> FitOutput:
        from tunehub.plugin.biencoder import load_encoder, prepare_peft
        from tunehub.plugin import TrainSettings

        from .objective import LOSSES, train_all_entries

        config, faq, splits = run.config, run.data.info["faq"], run.data.train
        settings = TrainSettings.from_config(config["train"])
        head = config["head"]
        if head["loss"] not in LOSSES:
            raise ConfigError(f"head.loss must be one of {', '.join(LOSSES)}, got '{head['loss']}'.")
        if head["hard_negatives"] < 0:
            raise ConfigError(f"head.hard_negatives must be 0 or more, got {head['hard_negatives']}; "
                              "0 trains with in-batch negatives only.")
        if head["loss"] == "all-entries" and head["hard_negatives"]:
            raise ConfigError("head.hard_negatives applies to head.loss=mnrl; all-entries already "
                              "scores every entry. Set head.hard_negatives=0 or head.loss=mnrl.")
        model = load_encoder(run.base_model, settings.max_length)
        settings, base = prepare_peft(model, settings, run.base_model, config["model"])
        pairs = qa.cap_per_entry(splits.train, head["max_queries_per_entry"], settings.seed)
        targets = entry_texts(faq, head["document"])
        position = faq.position()
        anchors, positives = pairs.texts, [targets[position[f]] for f in pairs.faq_ids]
        if head["loss"] == "all-entries":
            labels = [position[f] for f in pairs.faq_ids]
            model, result = train_all_entries(model, anchors, labels, targets, settings, run.work_dir,
                                              run.resume, run.callbacks, scale=head["loss_scale"])
            described = (f"(query, entry {head['document']}); softmax over all {len(targets)} "
                         "entries, re-encoded each step")
        else:
            model, result, described = self.train_mnrl(run, model, anchors, positives, targets, settings)
        retriever = Retriever.build(model, faq, splits.train, config)
        choice = self.second_stage(run, retriever, settings)
        threshold, note = calibrate_search(retriever.search, faq, splits)  # on the final score
        handoff = head["handoff_message"]
        out = outputs(retriever.search, faq, run.data.eval, threshold, handoff_message=handoff)
        extra, written = {}, {}
        if answers.generating(config):
            run.data.info["retrieved_outputs"] = out
            out, written = self.write_answers(run, retriever, out)
            extra = {"answer": "generated", "entries": int(config["generate"]["entries"])}
        retriever.save(run.model_dir, threshold, note, config, choice, base, extra)
        # the `untuned` baseline: the base model, same documents, index and calibration
        run.data.info["untuned_outputs"] = untuned(run.data, config, run.base_model)
        notes = {
            **result.notes(),
            "training pairs": f"{len(anchors)} {described}",
            "fine-tuning": "LoRA adapters (train.peft)" if base else "full fine-tuning (train.peft)",
            "index": f"{retriever.index.kind}, {len(retriever.index)} vectors "
                     f"({head['document']}{' + known paraphrases' if head['index_paraphrases'] else ''})",
            "re-ranker": rerank.describe(choice),
            "hand-off threshold": note,
            **written,
        }
        return FitOutput(out, result.log_history, notes)

    @staticmethod
    def write_answers(run: Run, retriever: Retriever, out: dict[str, Any]) -> tuple[dict, dict]:
        """Train the decoder that writes grounded answers (into ``model_dir/generator``) and
        score its replies; the untuned decoder answers the same prompts as a baseline.
        Returns (outputs with the written replies, notes)."""
        from tunehub.plugin import generation, last_checkpoint, phase

        config, faq, splits = run.config, run.data.info["faq"], run.data.train
        g = config["generate"]
        entries = int(g["entries"])
        decoder = run.data.models["generate.model"]
        settings = answers.decoder_settings(config)
        weights = answers.places(retriever.search, faq, splits.calibration, entries)
        prompts, responses = answers.training_pairs(retriever.search, faq, splits.train, entries,
                                                    settings.seed, weights)
        work = run.work_dir / answers.GENERATOR_DIR
        generator, result, how = generation.train(
            decoder, str(g["model"]), prompts, responses, settings,
            run.model_dir / answers.GENERATOR_DIR, work,
            resume=run.resume and last_checkpoint(work / "checkpoints") is not None,
            callbacks=run.callbacks, generation=answers.writing(config))
        texts = run.data.eval.texts
        with phase("writing answers to the evaluation questions"):
            written = answers.with_written(out, answers.Writer(generator, faq, entries), texts)
        with phase("the untuned decoder answering the same prompts"):
            base = generation.load_base(decoder, answers.writing(config),
                                        precision=config["train"]["precision"])
            run.data.info["untuned_decoder_outputs"] = answers.with_written(
                out, answers.Writer(base, faq, entries), texts)
        shares = ", ".join(f"[{n}] {w / sum(weights):.0%}" for n, w in enumerate(weights, 1))
        notes = {"generated answers": f"{g['model']} writes each reply from the top {entries} "
                                      f"entries and cites one; {how}; {len(prompts)} training "
                                      f"questions, {result.train_seconds:.0f} s; the right entry "
                                      f"placed as the retriever places it on the calibration "
                                      f"questions ({shares}); {generator.describe()}"}
        return written, notes

    @staticmethod
    def train_mnrl(run: Run, model: Any, anchors: list[str], positives: list[str],
                   targets: list[str], settings: Any) -> tuple[Any, Any, str]:
        """MultipleNegativesRankingLoss: in-batch negatives, plus hard negatives mined with
        the base model when ``head.hard_negatives`` > 0. Returns (model, result, description)."""
        from tunehub.plugin.biencoder import mine_hard_negatives, train_pairs

        head, negatives, extra = run.config["head"], None, "in-batch negatives"
        if head["hard_negatives"] > 0:  # mined with the untuned model, before training
            mined = mine_hard_negatives(model, anchors, positives, targets, head["hard_negatives"])
            anchors, positives = mined.pop("anchor"), mined.pop("positive")
            negatives = mined
            extra = (f"in-batch + {head['hard_negatives']} hard negative(s) per query mined "
                     "with the base model (TopK-PercPos, 5% margin)")
        model, result = train_pairs(
            model, anchors, positives, settings, run.work_dir, run.resume, run.callbacks,
            scale=head["loss_scale"], negatives=negatives, symmetric=head["symmetric_loss"],
        )
        described = (f"(query, entry {head['document']}); MultipleNegativesRankingLoss"
                     f"{' (symmetric)' if head['symmetric_loss'] else ''} with {extra}, "
                     "no-duplicates batches")
        return model, result, described

    def second_stage(self, run: Run, retriever: Retriever, settings: Any) -> dict[str, Any]:
        """Train the cross-encoder on first-stage mistakes, then decide on validation
        questions whether (and over how many candidates) it re-ranks; sets
        ``retriever.reranker`` when it does. Returns the choice with its figures."""
        from dataclasses import replace

        head, faq, splits = run.config["head"], run.data.info["faq"], run.data.train
        mode = rerank.rerank_mode(head["rerank"])
        position, texts = faq.position(), entry_texts(faq, head["document"])
        calibration = splits.calibration
        held = calibration.pick([i for i, f in enumerate(calibration.faq_ids) if f])  # in scope
        truth_held = [position[f] for f in held.faq_ids]
        if mode == "false":
            ranked, _ = retriever.first_stage(held.texts, 10)
            return {"used": False, "mode": mode, "validation questions": len(held),
                    "validation": {"first stage": rerank.figures(ranked, truth_held)}}
        if head["rerank_k"] < 0 or head["rerank_negatives"] < 1 or head["rerank_weight"] > 1:
            raise ConfigError(f"head.rerank_k must be 0 (chosen on validation) or more, "
                              f"head.rerank_negatives 1 or more and head.rerank_weight -1 (chosen "
                              f"on validation) or in [0, 1]; got {head['rerank_k']}, "
                              f"{head['rerank_negatives']} and {head['rerank_weight']}.")
        train = qa.cap_per_entry(splits.train, head["rerank_queries_per_entry"], settings.seed)
        if mode == "auto":  # skip the training where auto could not keep what it trains
            ranked, _ = retriever.first_stage(held.texts, 10)
            why = rerank.cannot_pay_off(len(train), ranked, truth_held, head["rerank_min_questions"])
            if why:
                return {"used": False, "mode": mode, "skipped": why,
                        "validation questions": len(held),
                        "validation": {"first stage": rerank.figures(ranked, truth_held)}}
        truth = [position[f] for f in train.faq_ids]
        ranked, _ = retriever.first_stage(train.texts, head["rerank_negatives"] + 1)
        wrong = rerank.wrong_candidates(ranked, truth, head["rerank_negatives"])
        columns = rerank.training_columns(train.texts, truth, wrong, texts, head["rerank_loss"])
        max_length = 2 * settings.max_length  # a question and an entry
        cross = rerank.load_cross_encoder(run.base_model, max_length, head["rerank_layers"], fresh=True)
        cross_settings = replace(settings, epochs=head["rerank_epochs"],
                                 learning_rate=head["rerank_learning_rate"])
        resume = run.resume and rerank.has_checkpoint(run.work_dir)
        cross, result = rerank.train_reranker(cross, columns, head["rerank_loss"], cross_settings,
                                              run.work_dir, resume, run.callbacks)
        depth = head["rerank_k"] or max(rerank.K_CHOICES)
        candidates, first = retriever.first_stage(held.texts, depth)
        scores = rerank.Reranker(cross, texts, depth, retriever.batch_size).rescore(held.texts, candidates)
        choice = rerank.choose(candidates, first, scores, truth_held, mode, head["rerank_k"],
                               head["rerank_weight"])
        choice.update({"layers": head["rerank_layers"] or "all", "max_length": max_length,
                       "loss": head["rerank_loss"], "training pairs": len(columns["label"])
                       if "label" in columns else len(columns["anchor"]),
                       "train seconds": round(result.train_seconds, 1)})
        if choice["used"]:
            retriever.reranker = rerank.Reranker(cross, texts, choice["k"], retriever.batch_size,
                                                 choice["weight"])
        return choice

    # -- using a saved model ------------------------------------------------------
    def load(self, model_dir: Path, config: Mapping[str, Any]) -> "FaqPredictor":
        """The model folder loaded once (encoder, index, FAQ) for many predictions."""
        retriever, settings = Retriever.load(model_dir, config["train"]["max_length"],
                                             config["train"]["eval_batch_size"])
        writer = (answers.load_writer(model_dir, retriever.faq, config, settings)
                  if settings.get("answer") == "generated" else None)
        return FaqPredictor(retriever, settings, writer)

    def evaluate(self, model_dir: Path, data: TaskData, config: Mapping[str, Any]):
        return self.load(model_dir, config).evaluate(data)

    def predict(self, model_dir: Path, inputs: Sequence[str], config: Mapping[str, Any]):
        return self.load(model_dir, config).predict(inputs)


class FaqPredictor:
    """Answers from a saved model: top FAQ entries with scores, or a hand-off; with
    generated answers (``writer``) the reply is written from the top entries."""

    def __init__(self, retriever: Retriever, settings: Mapping[str, Any],
                 writer: answers.Writer | None = None):
        self.retriever, self.settings, self.writer = retriever, dict(settings), writer
        self.threshold = float(settings["threshold"])

    @property
    def model(self):  # the torch module (what `--quantize int8` replaces)
        return self.retriever.model

    @model.setter
    def model(self, module) -> None:
        self.retriever.model = module

    def evaluate(self, data: TaskData) -> dict[str, Any]:
        qa.check_known(data.eval, self.retriever.faq, "evaluation queries")
        out = outputs(self.retriever.search, self.retriever.faq, data.eval, self.threshold,
                      handoff_message=self.settings["handoff_message"])
        return answers.with_written(out, self.writer, data.eval.texts) if self.writer else out

    def hands_off(self, row: np.ndarray, row_scores: np.ndarray) -> bool:
        """Whether a question whose search found ``row`` (best first, -1 padded) is handed
        off: nothing found, or the best score below the threshold."""
        return bool(row[0] < 0 or float(row_scores[0]) < self.threshold)

    def _found(self, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
        k = int(self.settings["top_k"])
        if self.writer is not None:
            k = max(k, self.writer.entries)
        return self.retriever.search(texts, k)

    def predict(self, inputs: Sequence[str]) -> list[dict[str, Any]]:
        texts = [str(t) for t in inputs]
        if not texts:
            return []
        entries, scores = self._found(texts)
        faq, top_k = self.retriever.faq, int(self.settings["top_k"])
        results = []
        for row, row_scores in zip(entries, scores):
            answers_ = []
            for e, s in zip(row[:top_k], row_scores[:top_k]):
                if e < 0:
                    continue
                item = {"id": faq.ids[e], "question": faq.questions[e], "answer": faq.answers[e],
                        "score": round(float(s), 4)}
                if faq.metadata and faq.metadata[e]:
                    item["metadata"] = faq.metadata[e]
                answers_.append(item)
            handoff = self.hands_off(row, row_scores)
            reply = self.settings["handoff_message"] if handoff else answers_[0]["answer"]
            results.append({"answers": answers_, "handoff": handoff, "reply": reply,
                            "threshold": round(self.threshold, 4)})
        if self.writer is not None:
            self._write(texts, entries, results)
        return results

    def _write(self, texts: list[str], entries: np.ndarray, results: list[dict[str, Any]]) -> None:
        """Generated replies for the questions not handed off, with the ids they rest on."""
        todo = [i for i, r in enumerate(results) if not r["handoff"]]
        written = self.writer.write([texts[i] for i in todo], [list(entries[i]) for i in todo])
        for result in results:
            result.update(answer="generated", grounded_in=[], cites=[])
        for i, (reply, cites) in zip(todo, written):
            results[i].update(reply=reply, grounded_in=self.writer.grounded(list(entries[i])),
                              cites=cites)

    def stream(self, text: str):
        """The reply to one question as it is written (a stored answer or the hand-off
        message comes in one piece)."""
        entries, scores = self._found([str(text)])
        if self.hands_off(entries[0], scores[0]):
            yield self.settings["handoff_message"]
        elif self.writer is None:
            yield self.retriever.faq.answers[int(entries[0][0])]
        else:
            yield from self.writer.stream(str(text), list(entries[0]))


def untuned(data: TaskData, config: Mapping[str, Any], base: Path) -> dict[str, Any]:
    """The base model without fine-tuning, same index and calibration."""
    from tunehub.plugin.biencoder import load_encoder

    faq, splits = data.info["faq"], data.train
    model = load_encoder(Path(base), config["train"]["max_length"])
    retriever = Retriever.build(model, faq, splits.train, config)
    threshold, _ = calibrate_search(retriever.search, faq, splits)
    return outputs(retriever.search, faq, data.eval, threshold,
                   handoff_message=config["head"]["handoff_message"])


def untuned_baseline(data: TaskData, config: Mapping[str, Any]) -> dict[str, Any]:
    """The ``untuned`` baseline: computed during the run (the base model is at hand there)."""
    cached = data.info.get("untuned_outputs")
    if cached is not None:
        return cached
    if data.base_model is None:
        raise ConfigError("the untuned baseline scores the base model, which this data does not "
                          "name; run it through `app run-task`.")
    return untuned(data, config, data.base_model)


def bm25(data: TaskData, config: Mapping[str, Any]) -> dict[str, Any]:
    """Okapi BM25 over the same indexed texts, its own threshold calibrated the same way."""
    from .retrieval import BM25

    faq, splits = data.info["faq"], data.train
    index = BM25(*documents(faq, splits.train, config["head"]))
    threshold, _ = calibrate_search(index.search, faq, splits)
    return outputs(index.search, faq, data.eval, threshold,
                   handoff_message=config["head"]["handoff_message"])


def retrieved_answer(data: TaskData, config: Mapping[str, Any]) -> dict[str, Any]:
    """The fine-tuned retriever's own reply: the top entry's stored answer (no generation).
    Computed while a generating run trains; outside a run (the contract kit, a direct
    call) no fine-tuned retriever exists and the untuned one stands in."""
    cached = data.info.get("retrieved_outputs")
    return cached if cached is not None else untuned_baseline(data, config)


def untuned_decoder(data: TaskData, config: Mapping[str, Any]) -> dict[str, Any]:
    """The base decoder, not fine-tuned, answering the same grounded prompts (from the
    run's retriever; outside a run, from the untuned one)."""
    from tunehub.plugin import generation

    cached = data.info.get("untuned_decoder_outputs")
    if cached is not None:
        return cached
    decoder = data.models.get("generate.model")
    if decoder is None:
        raise ConfigError("the untuned-decoder baseline needs generate.model: the decoder LLM "
                          "that writes answers (e.g. --set generate.model=smollm2).")
    writer = answers.Writer(generation.load_base(decoder, answers.writing(config),
                                                 precision=config["train"]["precision"]),
                            data.info["faq"], int(config["generate"]["entries"]))
    return answers.with_written(untuned_baseline(data, config), writer, data.eval.texts)
