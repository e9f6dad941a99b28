"""The ``text-generation`` head: supervised fine-tuning of a decoder LLM on (prompt,
response) rows, LoRA by default.

Each row becomes the prompt in the tokenizer's chat template (a plain "### Question /
### Answer" layout when it has none) followed by the response and the end-of-text token;
the loss counts the response tokens only. The model folder holds the LoRA adapter (or the
full model with ``train.peft = none``), the tokenizer and ``generation.json`` (the prompt
layout and the base model's record). Generation is greedy unless
``predict.temperature > 0``, stops at ``predict.max_new_tokens`` or a ``predict.stop``
string, and streams token by token through `Generator.stream`.
"""
from __future__ import annotations

import json
import random
import threading
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tunehub.plugin import (ConfigError, DataError, FitOutput, ModelError, Run, TaskData,
                            TrainSettings, column_for, lora, place, read_table,
                            refuse_remote_code, run_trainer, text_cell)

META = "generation.json"
PLAIN = "### Question:\n{prompt}\n\n### Answer:\n"  # for tokenizers without a chat template


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


def load_tokenizer(folder: Path):
    """The tokenizer, with a pad token (its end-of-text token when it has none)."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(folder), trust_remote_code=False)
    if tokenizer.eos_token is None:  # an encoder's tokenizer: its separator ends the answer
        tokenizer.eos_token = tokenizer.sep_token or tokenizer.pad_token
    if tokenizer.eos_token is None:
        raise ModelError(f"{folder}: the tokenizer has no end-of-text token, so an answer could "
                         "not end; text generation needs a decoder LLM such as smollm2.")
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def prompt_ids(tokenizer: Any, prompt: str, system: str = "") -> list[int]:
    """The token ids the model reads before it answers ``prompt``."""
    if tokenizer.chat_template:
        messages = ([{"role": "system", "content": system}] if system else []) + [
            {"role": "user", "content": prompt}]
        ids = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=True)
        return list(ids["input_ids"] if isinstance(ids, Mapping) else ids)
    text = (f"{system}\n\n" if system else "") + PLAIN.format(prompt=prompt)
    return list(tokenizer(text)["input_ids"])


def encode(tokenizer: Any, pairs: Pairs, system: str, max_length: int) -> list[dict[str, Any]]:
    """Training rows: prompt then response and end-of-text, the loss on the response only;
    a long prompt keeps its end, a long response its start."""
    rows = []
    for prompt, response in zip(pairs.prompts, pairs.responses):
        head = prompt_ids(tokenizer, prompt, system)[-(max_length // 2):]
        tail = list(tokenizer(response, add_special_tokens=False)["input_ids"])
        tail = tail[:max_length - len(head) - 1] + [tokenizer.eos_token_id]
        rows.append({"input_ids": head + tail, "attention_mask": [1] * (len(head) + len(tail)),
                     "labels": [-100] * len(head) + tail})
    return rows


class TextGenerationHead:
    name = "text-generation"
    description = ("Generated answers: supervised fine-tuning of a decoder LLM on prompt and "
                   "response pairs (LoRA by default), greedy or sampled generation, streaming.")
    input_role = "prompt"  # what a prediction reads
    schema = {
        "head.system_prompt": "",  # a system message before each prompt ("" : the template's own)
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
        from transformers import AutoModelForCausalLM, DataCollatorForSeq2Seq, Trainer

        settings = TrainSettings.from_config(run.config["train"])
        refuse_remote_code(run.base_model, run.config["model"])
        tokenizer = load_tokenizer(run.base_model)
        model = AutoModelForCausalLM.from_pretrained(str(run.base_model), trust_remote_code=False,
                                                     dtype="float32")
        model, settings, base = lora.apply(model, settings, run.base_model, run.config["model"],
                                           task_type="CAUSAL_LM")
        system = str(run.config["head"]["system_prompt"])
        rows = encode(tokenizer, run.data.train, system, settings.max_length)

        def make_trainer(args):
            return Trainer(model=model, args=args, train_dataset=rows,
                           data_collator=DataCollatorForSeq2Seq(tokenizer, padding=True),
                           processing_class=tokenizer)

        trainer, result = run_trainer(make_trainer, settings, run.work_dir, None, True,
                                      run.resume, run.callbacks)
        trained = trainer.model
        run.model_dir.mkdir(parents=True, exist_ok=True)
        trained.save_pretrained(run.model_dir)  # with LoRA: the adapter alone
        tokenizer.save_pretrained(run.model_dir)
        meta = {"head": self.name, "system_prompt": system,
                "layout": "chat template" if tokenizer.chat_template else "plain"}
        if base is not None:
            meta["base_model"] = base
            trained = trained.merge_and_unload()  # evaluate as served
        (run.model_dir / META).write_text(json.dumps(meta, indent=2) + "\n")
        generator = Generator(trained.eval(), tokenizer, meta, run.config)
        notes = {**result.notes(),
                 "fine-tuning": ("LoRA" if base else "full fine-tuning")
                 + f"; {lora.trainable_summary(model)}; loss on response tokens; "
                 f"prompt layout: {meta['layout']}",
                 "generation": generator.describe()}
        return FitOutput(generator.evaluate(run.data), result.log_history, notes)

    # -- using a saved model ----------------------------------------------------------
    def load(self, model_dir: Path, config: Mapping[str, Any]) -> "Generator":
        from transformers import AutoModelForCausalLM

        path = Path(model_dir) / META
        if not path.is_file():
            raise ModelError(f"{model_dir} is not a text-generation model (no {META}); pass a "
                             "fine-tuned version of a text-generation task.")
        meta = json.loads(path.read_text())
        if lora.is_adapter(Path(model_dir)):
            base = lora.base_folder(meta["base_model"], Path(model_dir))
            model = AutoModelForCausalLM.from_pretrained(str(base), trust_remote_code=False,
                                                         dtype="float32")
            model = lora.load_adapter(model, Path(model_dir))
        else:
            model = AutoModelForCausalLM.from_pretrained(str(model_dir), trust_remote_code=False,
                                                         dtype="float32")
        return Generator(place(model).eval(), load_tokenizer(Path(model_dir)), meta, config)

    @property
    def baselines(self) -> dict[str, Any]:
        return {"untuned": untuned, "nearest-response": nearest_response}


class Generator:
    """A loaded decoder: ``predict(prompts)`` -> ``{"text": ...}``, ``stream(prompt)``
    yields the answer as it is written, ``evaluate(data)`` scores ``data.eval``."""

    def __init__(self, model: Any, tokenizer: Any, meta: Mapping[str, Any],
                 config: Mapping[str, Any]) -> None:
        self.model, self.tokenizer, self.meta = model, tokenizer, dict(meta)
        p = config["predict"]
        self.max_new_tokens, self.temperature = int(p["max_new_tokens"]), float(p["temperature"])
        self.stop, self.batch_size = [str(s) for s in p["stop"]], int(p["batch_size"])

    def describe(self) -> str:
        how = "greedy" if self.temperature <= 0 else f"sampled at temperature {self.temperature:g}"
        return f"{how}, at most {self.max_new_tokens} new tokens" + (
            f", stops at {self.stop}" if self.stop else "")

    def _settings(self, width: int = 0) -> dict[str, Any]:
        tok = self.tokenizer
        room = getattr(self.model.config, "max_position_embeddings", None)
        new = min(self.max_new_tokens, room - width) if room else self.max_new_tokens
        if new < 1:
            raise DataError(f"the prompt takes {width} tokens, all the model reads "
                            f"({room}); shorten it.")
        out = {"max_new_tokens": new, "pad_token_id": tok.pad_token_id,
               "eos_token_id": tok.eos_token_id, "do_sample": self.temperature > 0}
        if self.temperature > 0:
            out["temperature"] = self.temperature
        if self.stop:
            out.update(stop_strings=self.stop, tokenizer=tok)
        return out

    def _batch(self, prompts: Sequence[str]):
        import torch

        ids = [prompt_ids(self.tokenizer, p, self.meta.get("system_prompt", "")) for p in prompts]
        width = max(len(i) for i in ids)
        pad = self.tokenizer.pad_token_id  # left padding: every answer starts at the end
        device = next(self.model.parameters()).device
        input_ids = torch.tensor([[pad] * (width - len(i)) + i for i in ids], device=device)
        mask = torch.tensor([[0] * (width - len(i)) + [1] * len(i) for i in ids], device=device)
        return input_ids, mask

    def _clean(self, text: str) -> str:
        for stop in self.stop:
            text = text.split(stop, 1)[0]
        return text.strip()

    def generate(self, prompts: Sequence[str]) -> list[str]:
        import torch

        out: list[str] = []
        for start in range(0, len(prompts), self.batch_size):
            input_ids, mask = self._batch(prompts[start:start + self.batch_size])
            with torch.inference_mode():
                tokens = self.model.generate(input_ids=input_ids, attention_mask=mask,
                                             **self._settings(input_ids.shape[1]))
            new = tokens[:, input_ids.shape[1]:]
            out += [self._clean(t) for t in
                    self.tokenizer.batch_decode(new, skip_special_tokens=True)]
        return out

    def predict(self, inputs: Sequence[str]) -> list[dict[str, Any]]:
        return [{"text": text} for text in self.generate([str(x) for x in inputs])]

    def stream(self, prompt: str) -> Iterator[str]:
        """The answer to one prompt, piece by piece as the model writes it."""
        import torch
        from transformers import TextIteratorStreamer

        input_ids, mask = self._batch([str(prompt)])
        streamer = TextIteratorStreamer(self.tokenizer, skip_prompt=True, skip_special_tokens=True)
        failed: list[BaseException] = []

        def write() -> None:
            try:
                with torch.inference_mode():
                    self.model.generate(input_ids=input_ids, attention_mask=mask,
                                        streamer=streamer, **self._settings(input_ids.shape[1]))
            except BaseException as exc:  # noqa: BLE001 - re-raised by the reader
                failed.append(exc)
                streamer.end()

        thread = threading.Thread(target=write, daemon=True, name="tunehub-generate")
        thread.start()
        text, written = "", ""
        for piece in streamer:
            text += piece
            ready = self._ready(text)
            if len(ready) > len(written):
                yield ready[len(written):]
                written = ready
            if any(stop in text for stop in self.stop):
                break
        thread.join()
        if failed:
            raise failed[0]
        rest = self._clean(text)[len(written):]  # what the last piece held back
        if rest:
            yield rest

    def _ready(self, text: str) -> str:
        """The part of ``text`` that is final: up to a stop string, without white space
        at either end, and without an end that could still become a stop string."""
        for stop in self.stop:
            text = text.split(stop, 1)[0]
        ready = text.strip()
        for stop in self.stop:
            for k in range(len(stop) - 1, 0, -1):
                if ready.endswith(stop[:k]):
                    return ready[:-k].rstrip()
        return ready

    def quantize(self, kind: str) -> None:
        from tunehub.plugin import quantize_int8

        if kind != "int8":
            raise ConfigError(f"--quantize {kind}: text generation supports int8 only.")
        self.model = quantize_int8(self.model)

    def evaluate(self, data: TaskData) -> dict[str, Any]:
        return {"y_true": list(data.eval.responses),
                "y_pred": self.generate(list(data.eval.prompts))}


def untuned(data: TaskData, config: Mapping[str, Any]) -> dict[str, Any]:
    """The base model with the same prompt, not fine-tuned."""
    from transformers import AutoModelForCausalLM

    if data.base_model is None:
        raise ConfigError("the untuned baseline scores the base model, which this data does not "
                          "name; run it through `app run-task`.")
    model = AutoModelForCausalLM.from_pretrained(str(data.base_model), trust_remote_code=False,
                                                 dtype="float32")
    meta = {"system_prompt": str(config["head"]["system_prompt"])}
    return Generator(place(model).eval(), load_tokenizer(data.base_model), meta,
                     config).evaluate(data)


def nearest_response(data: TaskData, config: Mapping[str, Any]) -> dict[str, Any]:
    """Retrieval: the response of the most similar training prompt (TF-IDF cosine over
    words and character n-grams)."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.pipeline import make_union

    if not len(data.train):
        raise DataError("the nearest-response baseline needs training pairs.")
    vectors = make_union(TfidfVectorizer(sublinear_tf=True),
                         TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 4), sublinear_tf=True))
    train = vectors.fit_transform(data.train.prompts)
    scores = vectors.transform(data.eval.prompts) @ train.T
    best = scores.toarray().argmax(axis=1)
    return {"y_true": list(data.eval.responses),
            "y_pred": [data.train.responses[i] for i in best]}
