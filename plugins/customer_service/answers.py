"""Grounded answers (``head.answer = "generated"``): a LoRA-tuned decoder writes the reply
from the entries the retriever found, and says which entry it used.

The prompt lists the top ``generate.entries`` entries, numbered, then the customer's
question; the decoder answers ``"[n] ..."`` and the reply carries the id of entry ``n``
(``cites``) beside the ids of every entry it was shown (``grounded_in``). It trains on the
FAQ's training questions: each sees its own entry among the entries the fine-tuned
retriever ranks next, at a place drawn as often as the retriever puts the right entry there
on the held-out calibration questions (first most of the time, so the decoder learns both
the retriever's prior and to pick another entry when it answers better), and learns to
answer in that entry's words. The hand-off threshold still decides first: a
handed-off question gets the hand-off message and no generation.

The answer metrics read three output fields that every retriever here fills
(`retrieval.outputs`): ``answer_true`` (the right entry's answer, "" when out of scope),
``answer_pred`` (the reply) and ``cited`` (entry ids the reply rests on).
"""
from __future__ import annotations

import random
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from tunehub.plugin import ConfigError, DataError, TrainSettings, generation, split_batch

from .data import Faq, Queries

ANSWERS = ("retrieved", "generated")
GENERATOR_DIR = "generator"  # the fine-tuned decoder, inside the model folder
SETTINGS = {
    "head.answer": "retrieved",  # retrieved (the entry's stored answer) | generated (written from the top entries)
    "generate.model": "",  # the decoder that writes answers (head.answer = generated), e.g. smollm2
    "generate.entries": 3,  # entries shown to the decoder, best first
    "generate.epochs": 1,
    "generate.batch_size": 8,  # training pairs an optimizer step
    "generate.eval_batch_size": 32,  # questions answered at once (of similar length)
    "generate.max_steps": -1,  # optimizer steps of the decoder; -1: generate.epochs decide
    "generate.learning_rate": 5e-4,  # LoRA adapters' learning rate
    "generate.max_length": 512,  # tokens of prompt and answer while training
    "generate.max_new_tokens": 96,
    "generate.temperature": 0.0,  # 0: greedy
    "generate.stop": [],
}


def check(config: Mapping[str, Any]) -> None:
    """Settings of grounded answers, before any data or model loads."""
    answer, g = config["head"]["answer"], config["generate"]
    if answer not in ANSWERS:
        raise ConfigError(f"head.answer must be one of {', '.join(ANSWERS)}, got '{answer}'.")
    if answer == "generated" and not str(g["model"]).strip():
        raise ConfigError("head.answer = generated needs generate.model: the decoder LLM that "
                          "writes the answers (e.g. --set generate.model=smollm2).")
    if int(g["entries"]) < 1 or int(g["epochs"]) < 1 or int(g["max_new_tokens"]) < 1:
        raise ConfigError("generate.entries, generate.epochs and generate.max_new_tokens must be "
                          f"1 or more; got {g['entries']}, {g['epochs']} and {g['max_new_tokens']}.")
    if int(g["eval_batch_size"]) < 1 or not (int(g["max_steps"]) == -1 or int(g["max_steps"]) >= 1):
        raise ConfigError("generate.eval_batch_size must be 1 or more and generate.max_steps -1 "
                          f"(epochs decide) or 1 or more; got {g['eval_batch_size']} and "
                          f"{g['max_steps']}.")
    if answer == "generated":  # a global batch too, shared by this run's processes
        split_batch(int(g["batch_size"]), max_device_batch=int(config["train"]["max_device_batch"]),
                    key="generate.batch_size")


def generating(config: Mapping[str, Any]) -> bool:
    return config["head"]["answer"] == "generated"


def decoder_settings(config: Mapping[str, Any]) -> TrainSettings:
    """How the decoder trains: ``generate.*``, LoRA, the run's seed and precision."""
    g, train = config["generate"], config["train"]
    return TrainSettings(
        epochs=int(g["epochs"]), batch_size=int(g["batch_size"]),
        max_device_batch=int(train["max_device_batch"]), max_length=int(g["max_length"]),
        seed=int(train["seed"]), precision=train["precision"], peft="lora",
        max_steps=int(g["max_steps"]),
        lora={"learning_rate": float(g["learning_rate"]), "max_epochs": int(g["epochs"])},
        warmup_ratio=0.05, save_checkpoints=bool(train["save_checkpoints"]),
        checkpoint_minutes=float(train["checkpoint_minutes"]))


def writing(config: Mapping[str, Any]) -> dict[str, Any]:
    """How the decoder writes (`tunehub.plugin.generation.Generator`): ``generate.*``,
    ``eval_batch_size`` questions at a time."""
    g = config["generate"]
    return {**g, "batch_size": int(g["eval_batch_size"])}


def references(faq: Faq, row: Sequence[int]) -> list[tuple[str, str]]:
    return [(faq.questions[e], faq.answers[e]) for e in row if e >= 0]


def places(search: Any, faq: Faq, held_out: Queries, entries: int) -> list[int]:
    """How often the right entry comes at each of the first ``entries`` places when
    ``search`` answers the in-scope ``held_out`` questions, plus one for each place (so
    every place is trained on)."""
    position = faq.position()
    rows = [i for i, f in enumerate(held_out.faq_ids) if f]
    counts = [1] * entries
    if rows:
        ranked, _ = search([held_out.texts[i] for i in rows], min(len(faq), entries))
        for i, row in zip(rows, ranked):
            hits = [p for p, e in enumerate(row) if e == position[held_out.faq_ids[i]]]
            if hits:
                counts[hits[0]] += 1
    return counts


def training_pairs(first_stage: Any, faq: Faq, train: Queries, entries: int, seed: int,
                   weights: Sequence[float] | None = None) -> tuple[list[str], list[str]]:
    """(prompts, responses) from the in-scope training questions: each question's own entry
    among the ``entries - 1`` others the retriever ranks highest, at a place drawn with
    ``weights`` (one per place; uniform when None)."""
    position = faq.position()
    rows = [i for i, f in enumerate(train.faq_ids) if f]
    if not rows:
        raise DataError("grounded answers train on in-scope questions, and the training queries "
                        "have none.")
    texts = [train.texts[i] for i in rows]
    ranked, _ = first_stage(texts, min(len(faq), entries + 1))
    rng = random.Random(seed)
    prompts, responses = [], []
    for text, i, row in zip(texts, rows, ranked):
        gold = position[train.faq_ids[i]]
        shown = [int(e) for e in row if e >= 0 and e != gold][:entries - 1]
        room = list(range(len(shown) + 1))
        place = rng.choices(room, weights=list(weights)[:len(room)] if weights else None)[0]
        shown.insert(place, gold)
        prompts.append(generation.grounded_prompt(text, references(faq, shown)))
        responses.append(generation.cite(place + 1, faq.answers[gold]))
    return prompts, responses


class Writer:
    """A decoder that writes replies from the entries found for each question."""

    def __init__(self, generator: Any, faq: Faq, entries: int) -> None:
        self.generator, self.faq, self.entries = generator, faq, entries

    def prompt(self, text: str, row: Sequence[int]) -> str:
        return generation.grounded_prompt(text, references(self.faq, row[:self.entries]))

    def grounded(self, row: Sequence[int]) -> list[str]:
        return [self.faq.ids[e] for e in row[:self.entries] if e >= 0]

    def _cites(self, numbers: Sequence[int], row: Sequence[int]) -> list[str]:
        shown = self.grounded(row)
        return [shown[n - 1] for n in numbers if 1 <= n <= len(shown)]

    def write(self, texts: Sequence[str], rows: Sequence[Sequence[int]]) -> list[tuple[str, list[str]]]:
        """(reply, ids of the entries it cites) per question."""
        written = self.generator.generate([self.prompt(t, r) for t, r in zip(texts, rows)])
        out = []
        for text, row in zip(written, rows):
            numbers, reply = generation.cited(text)
            out.append((reply, self._cites(numbers, row)))
        return out

    def stream(self, text: str, row: Sequence[int]) -> Iterator[str]:
        """The reply to one question as it is written, without its citation."""
        return generation.stream_cited(self.generator.stream(self.prompt(text, row)))


def with_written(outputs: Mapping[str, Any], writer: Writer, texts: Sequence[str]) -> dict[str, Any]:
    """Evaluation ``outputs`` with the replies ``writer`` writes from each question's ranked
    entries, for the questions not handed off (the others keep the hand-off message)."""
    position = writer.faq.position()
    answer = [i for i, h in enumerate(outputs["handoff"]) if not h]
    rows = [[position[f] for f in outputs["ranked"][i]] for i in answer]
    written = writer.write([texts[i] for i in answer], rows)
    out = {**outputs, "answer_pred": list(outputs["answer_pred"]), "cited": list(outputs["cited"])}
    for i, (reply, cites) in zip(answer, written):
        out["answer_pred"][i], out["cited"][i] = reply, cites
    return out


def load_writer(folder: Path, faq: Faq, config: Mapping[str, Any], settings: Mapping[str, Any]) -> Writer:
    return Writer(generation.load(Path(folder) / GENERATOR_DIR, writing(config),
                                  precision=config["train"]["precision"]),
                  faq, int(settings["entries"]))


# -- metrics ----------------------------------------------------------------------------


def _in_scope(outputs: Mapping[str, Any]) -> list[int]:
    return [i for i, truth in enumerate(outputs["answer_true"]) if truth]


def _mean(values: list[float]) -> float:
    return sum(values) / len(values) if values else 0.0


def answer_token_f1(outputs: Mapping[str, Any]) -> float:
    """Mean token-F1 of the reply against the right entry's answer, over in-scope questions
    (a hand-off scores the hand-off message)."""
    return _mean([generation.token_f1(outputs["answer_true"][i], outputs["answer_pred"][i])
                  for i in _in_scope(outputs)])


def answer_rouge_l(outputs: Mapping[str, Any]) -> float:
    """Mean ROUGE-L of the reply against the right entry's answer, over in-scope questions."""
    return _mean([generation.rouge_l(outputs["answer_true"][i], outputs["answer_pred"][i])
                  for i in _in_scope(outputs)])


def cites_right_entry(outputs: Mapping[str, Any]) -> float:
    """Of the in-scope questions, the share whose reply rests on the right entry."""
    return _mean([float(bool(set(outputs["relevant"][i]) & set(outputs["cited"][i])))
                  for i in _in_scope(outputs)])
