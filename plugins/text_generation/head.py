"""The ``text-generation`` head: supervised fine-tuning of a decoder LLM on (prompt,
response) rows, LoRA by default.

Each row becomes the prompt in the tokenizer's chat template (a plain "### Question /
### Answer" layout when it has none) followed by the response and the end-of-text token;
the loss counts the response tokens only. The model folder holds the LoRA adapter (or the
full model with ``train.peft = none``), the tokenizer and ``generation.json`` (the prompt
layout and the base model's record). Generation is greedy unless
``predict.temperature > 0``, stops at ``predict.max_new_tokens`` or a ``predict.stop``
string, and streams token by token.

With ``head.references = N`` the prompt is retrieval-augmented: the answers to the N most
similar training questions (TF-IDF) come before the question, so the model can reuse the
team's wording; it trains that way too, never seeing a row's own answer among its
references, and the model folder keeps the training pairs (``references.jsonl``).
The engine is `tunehub.plugin.generation`.
"""
from __future__ import annotations

import json
import random
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tunehub.plugin import (ConfigError, DataError, FitOutput, ModelError, Run, TaskData,
                            TrainSettings, column_for, generation, read_table, text_cell)

META = generation.META
ASKED = ("Answer the customer's question. The entries above are answers we gave to similar "
         "questions: use their words where they fit.")


@dataclass
class Pairs:
    """Prompts and the responses a model should give."""

    prompts: list[str] = field(default_factory=list)
    responses: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.prompts)

    def pick(self, rows: Sequence[int]) -> "Pairs":
        return Pairs([self.prompts[i] for i in rows], [self.responses[i] for i in rows])


def read_pairs(path: Path, columns: Mapping[str, str]) -> Pairs:
    table = read_table(path)
    prompt, response = column_for(table, "prompt", columns), column_for(table, "response", columns)
    return Pairs([text_cell(table, i, prompt) for i in range(len(table))],
                 [text_cell(table, i, response) for i in range(len(table))])


def split(n: int, fraction: float, seed: int, source: Any) -> tuple[list[int], list[int]]:
    """A seeded random split of ``n`` rows: (kept, held out), in file order."""
    if not 0 < fraction < 1:
        raise ConfigError(f"dataset.eval_fraction must be between 0 and 1, got {fraction}.")
    held = max(1, round(n * fraction))
    if n - held < 1:
        raise DataError(f"{source}: too few rows ({n}) to hold some out; give --eval-data FILE.")
    order = list(range(n))
    random.Random(seed).shuffle(order)
    return sorted(order[held:]), sorted(order[:held])


load_tokenizer, prompt_ids = generation.load_tokenizer, generation.prompt_ids


def encode(tokenizer: Any, pairs: Pairs, system: str, max_length: int) -> list[dict[str, Any]]:
    """Training rows of ``pairs`` (see `tunehub.plugin.generation.sft_rows`)."""
    return generation.sft_rows(tokenizer, pairs.prompts, pairs.responses, system, max_length)


class Neighbours:
    """The training pairs most like a prompt (TF-IDF cosine over words and character
    n-grams): the retrieval baseline, and the references of a retrieval-augmented prompt."""

    def __init__(self, pairs: Pairs) -> None:
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.pipeline import make_union

        if not len(pairs):
            raise DataError("retrieving similar answers needs training pairs.")
        self.pairs = pairs
        self.vectors = make_union(
            TfidfVectorizer(sublinear_tf=True),
            TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 4), sublinear_tf=True))
        self.matrix = self.vectors.fit_transform(pairs.prompts)

    def nearest(self, prompts: Sequence[str], k: int, skip_self: bool = False) -> list[list[int]]:
        """Row numbers of the ``k`` most similar training prompts, best first; with
        ``skip_self`` prompt ``i`` is training row ``i`` and never its own neighbour."""
        import numpy as np

        scores = (self.vectors.transform(list(prompts)) @ self.matrix.T).toarray()
        if skip_self:
            np.fill_diagonal(scores, -np.inf)
        k = min(k, len(self.pairs) - int(skip_self))
        return [list(row) for row in np.argsort(-scores, axis=1, kind="stable")[:, :k]]

    def prompts(self, prompts: Sequence[str], k: int, skip_self: bool = False) -> list[str]:
        """``prompts`` with the answers to their ``k`` nearest training prompts before them."""
        if k < 1:
            return list(prompts)
        rows = self.nearest(prompts, k, skip_self)
        return [generation.grounded_prompt(
            p, [(self.pairs.prompts[i], self.pairs.responses[i]) for i in near], ASKED)
            for p, near in zip(prompts, rows)]


REFERENCES = "references.jsonl"  # the training pairs a retrieval-augmented model reads from


class TextGenerationHead:
    name = "text-generation"
    description = ("Generated answers: supervised fine-tuning of a decoder LLM on prompt and "
                   "response pairs (LoRA by default), greedy or sampled generation, streaming.")
    input_role = "prompt"  # what a prediction reads
    ranges = {"head.references": "[0, 20]"}
    schema = {
        "head.system_prompt": "",  # a system message before each prompt ("" : the template's own)
        "head.references": 0,  # answers to the N most similar training questions shown with each
        "predict.max_new_tokens": 128,
        "predict.temperature": 0.0,  # 0: greedy
        "predict.stop": [],  # strings that end an answer
        "predict.batch_size": 8,
    }

    # -- data ---------------------------------------------------------------------
    def load_data(self, config: Mapping[str, Any], files: Mapping[str, Path]) -> TaskData:
        ds, p = config["dataset"], config["predict"]
        if int(p["max_new_tokens"]) < 1 or float(p["temperature"]) < 0:
            raise ConfigError("predict.max_new_tokens must be 1 or more and predict.temperature "
                              f"0 or more, got {p['max_new_tokens']} and {p['temperature']}.")
        columns = ds["columns"]
        train = read_pairs(files["train"], columns) if "train" in files else Pairs()
        if "eval" in files:
            evaluation = read_pairs(files["eval"], columns)
        else:
            keep, held = split(len(train), ds["eval_fraction"], ds["split_seed"], files["train"])
            train, evaluation = train.pick(keep), train.pick(held)
        summary = {"train pairs": len(train), "eval pairs": len(evaluation),
                   "eval source": str(files["eval"]) if "eval" in files else
                   f"seeded {ds['eval_fraction']:.0%} of {Path(files['train']).name}"}
        warnings = [f"only {len(evaluation)} evaluation pairs; treat the metrics as rough."] \
            if len(evaluation) < 30 else []
        return TaskData(train, evaluation, dict(files), summary, {}, warnings)

    def training_texts(self, data: TaskData, config: Mapping[str, Any]) -> list[str]:
        return list(data.train.prompts) + list(data.train.responses)

    def example_inputs(self, data: TaskData, config: Mapping[str, Any]) -> list[str]:
        return list(data.eval.prompts)

    # -- feedback -------------------------------------------------------------------
    def row_keys(self, data: TaskData, config: Mapping[str, Any]) -> dict[str, list[str]]:
        return {"train": [p.strip() for p in data.train.prompts],
                "eval": [p.strip() for p in data.eval.prompts]}

    corrections = {"response": {"type": "string", "minLength": 1,
                                "description": "The answer the model should have written."}}

    def join_feedback(self, data: TaskData, items: Sequence[Mapping[str, Any]],
                      config: Mapping[str, Any], held_out: set[str]) -> dict[str, int]:
        """A corrected answer joins the training pairs (a known prompt takes the new one)."""
        from tunehub.plugin import latest_corrections

        latest, counts = latest_corrections(items, held_out)
        at = {p.strip(): i for i, p in enumerate(data.train.prompts)}
        for prompt, item in latest.items():
            if prompt in at:
                data.train.responses[at[prompt]] = item["response"]
                counts["changed a training answer"] += 1
            else:
                data.train.prompts.append(prompt)
                data.train.responses.append(item["response"])
                counts["added"] += 1
        return dict(counts)

    # -- training -------------------------------------------------------------------
    def fit(self, run: Run) -> FitOutput:
        settings = TrainSettings.from_config(run.config["train"])
        system = str(run.config["head"]["system_prompt"])
        k = int(run.config["head"]["references"])
        train = run.data.train
        neighbours = Neighbours(train) if k else None
        prompts = neighbours.prompts(train.prompts, k, skip_self=True) if neighbours else train.prompts
        generator, result, how = generation.train(
            run.base_model, run.config["model"], prompts, train.responses, settings,
            run.model_dir, run.work_dir, system=system, resume=run.resume,
            callbacks=run.callbacks, generation=run.config["predict"])
        meta = {**generator.meta, "head": self.name, "references": k}
        (run.model_dir / META).write_text(json.dumps(meta, indent=2) + "\n")
        if neighbours:
            write_pairs(run.model_dir / REFERENCES, train)
        answers = Answers(generator, neighbours, k)
        notes = {**result.notes(), "fine-tuning": how, "generation": generator.describe(),
                 "references": f"the {k} most similar training pairs (TF-IDF) before each "
                               "question, never a row's own" if k else "none (the question alone)"}
        return FitOutput(answers.evaluate(run.data), result.log_history, notes)

    # -- using a saved model ----------------------------------------------------------
    def load(self, model_dir: Path, config: Mapping[str, Any]) -> "Answers":
        generator = generation.load(model_dir, config["predict"],
                                    precision=config["train"]["precision"])
        k = int(generator.meta.get("references", 0))
        neighbours = Neighbours(read_pairs_jsonl(Path(model_dir) / REFERENCES)) if k else None
        return Answers(generator, neighbours, k)

    @property
    def baselines(self) -> dict[str, Any]:
        return {"untuned": untuned, "nearest-response": nearest_response}


def write_pairs(path: Path, pairs: Pairs) -> None:
    with open(path, "w", encoding="utf-8") as handle:
        for prompt, response in zip(pairs.prompts, pairs.responses):
            handle.write(json.dumps({"prompt": prompt, "response": response},
                                    ensure_ascii=False) + "\n")


def read_pairs_jsonl(path: Path) -> Pairs:
    if not path.is_file():
        raise ModelError(f"{path.parent}: this model answers from its training pairs, and "
                         f"{path.name} is missing; retrain the task.")
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]
    return Pairs([r["prompt"] for r in rows], [r["response"] for r in rows])


class Answers:
    """A loaded model: ``predict(prompts)`` -> ``{"text": ...}``, ``stream(prompt)`` yields
    the answer as it is written, ``evaluate(data)`` scores ``data.eval``."""

    def __init__(self, generator: Any, neighbours: Neighbours | None = None, k: int = 0) -> None:
        self.generator, self.neighbours, self.k = generator, neighbours, k

    @property
    def model(self):  # the torch module (what `--quantize int8` replaces)
        return self.generator.model

    def prompts(self, questions: Sequence[str]) -> list[str]:
        questions = [str(q) for q in questions]
        return self.neighbours.prompts(questions, self.k) if self.neighbours else questions

    def generate(self, questions: Sequence[str]) -> list[str]:
        return self.generator.generate(self.prompts(questions))

    def predict(self, inputs: Sequence[str]) -> list[dict[str, Any]]:
        return [{"text": text} for text in self.generate(inputs)] if len(inputs) else []

    def stream(self, prompt: str) -> Iterator[str]:
        return self.generator.stream(self.prompts([prompt])[0])

    def quantize(self, kind: str) -> None:
        self.generator.quantize(kind)

    def evaluate(self, data: TaskData) -> dict[str, Any]:
        return {"y_true": list(data.eval.responses), "y_pred": self.generate(data.eval.prompts)}


def untuned(data: TaskData, config: Mapping[str, Any]) -> dict[str, Any]:
    """The base model with the same prompt (the same references too), not fine-tuned."""
    if data.base_model is None:
        raise ConfigError("the untuned baseline scores the base model, which this data does not "
                          "name; run it through `app run-task`.")
    k = int(config["head"]["references"])
    base = generation.load_base(data.base_model, config["predict"],
                                str(config["head"]["system_prompt"]),
                                precision=config["train"]["precision"])
    return Answers(base, Neighbours(data.train) if k else None, k).evaluate(data)


def nearest_response(data: TaskData, config: Mapping[str, Any]) -> dict[str, Any]:
    """Retrieval: the response of the most similar training prompt (TF-IDF cosine over
    words and character n-grams)."""
    neighbours = Neighbours(data.train)
    best = [row[0] for row in neighbours.nearest(data.eval.prompts, 1)]
    return {"y_true": list(data.eval.responses),
            "y_pred": [data.train.responses[i] for i in best]}
