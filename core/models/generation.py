"""Decoder LLMs that write answers: supervised fine-tuning (LoRA by default), greedy or
sampled generation, streaming, grounded prompts that cite their sources, and the scores of
generated text against a reference.

Each training row is the prompt in the tokenizer's chat template (a plain "### Question /
### Answer" layout when it has none) followed by the response and the end-of-text token;
the loss counts the response tokens only. A trained folder holds the LoRA adapter (or the
full model with ``train.peft = none``), the tokenizer and ``generation.json`` (the prompt
layout and the base model's record).

A *grounded* prompt lists reference entries, numbered ``[1]``, ``[2]``..., before the
question; a response trained as ``"[2] the answer"`` says which entry it rests on, and
`cited` reads that back.
"""
from __future__ import annotations

import json
import re
import threading
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from ..errors import ConfigError, DataError, ModelError
from ..running.data import CJK_CHARACTERS

META = "generation.json"
PLAIN = "### Question:\n{prompt}\n\n### Answer:\n"  # for tokenizers without a chat template
# The predict-time settings a `Generator` reads, with their defaults.
GENERATION_DEFAULTS = {"max_new_tokens": 128, "temperature": 0.0, "stop": [], "batch_size": 8}


# -- prompts --------------------------------------------------------------------------


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


def sft_rows(tokenizer: Any, prompts: Sequence[str], responses: Sequence[str], system: str,
             max_length: int) -> list[dict[str, Any]]:
    """Training rows: prompt then response and end-of-text, the loss on the response only;
    a long prompt keeps its end, a long response its start."""
    rows = []
    for prompt, response in zip(prompts, responses):
        tail = list(tokenizer(response, add_special_tokens=False)["input_ids"])
        room = max(max_length // 2, max_length - len(tail) - 1)  # the answer fits when it can
        head = prompt_ids(tokenizer, prompt, system)[-room:]
        tail = tail[:max_length - len(head) - 1] + [tokenizer.eos_token_id]
        rows.append({"input_ids": head + tail, "attention_mask": [1] * (len(head) + len(tail)),
                     "labels": [-100] * len(head) + tail})
    return rows


GROUNDING = ("Answer the customer's question from the entries above, in their words. "
             "Start with the number of the entry you used, like [1].")


def grounded_prompt(question: str, references: Sequence[tuple[str, str]],
                    instruction: str = GROUNDING) -> str:
    """A prompt that lists ``references`` (question, answer) as numbered entries, then the
    question: what a grounded answer is written from."""
    entries = "\n\n".join(f"[{n}] {q}\n{a}" for n, (q, a) in enumerate(references, start=1))
    return f"Entries:\n{entries}\n\nQuestion: {question}\n\n{instruction}"


def cite(number: int, answer: str) -> str:
    """The response a grounded answer is trained on: ``"[number] answer"``."""
    return f"[{number}] {answer}"


CITATION = re.compile(r"^\s*((?:\[\d+\]\s*)+)")


def cited(text: str) -> tuple[list[int], str]:
    """(entry numbers cited at the start, the answer without them): ``"[2] Tap..."`` ->
    ``([2], "Tap...")``. A text without a citation cites nothing."""
    found = CITATION.match(text)
    if not found:
        return [], text.strip()
    numbers = [int(n) for n in re.findall(r"\d+", found.group(1))]
    return list(dict.fromkeys(numbers)), text[found.end():].strip()


# -- scores of generated text ---------------------------------------------------------

# Runs of ASCII letters and digits (what `rouge-score` reads), and each CJK character on
# its own (Chinese and Japanese are not written with spaces; `rouge-score` drops them).
WORD = re.compile(f"[a-z0-9]+|[{CJK_CHARACTERS}]")


def words(text: str) -> list[str]:
    """Lower-cased runs of ASCII letters and digits, and each CJK character as a word."""
    return WORD.findall(str(text).lower())


def token_f1(reference: str, generated: str) -> float:
    """F1 of the words two texts share (each word counted as often as both have it)."""
    ref, gen = words(reference), words(generated)
    if not ref or not gen:
        return float(ref == gen)
    shared = sum((Counter(ref) & Counter(gen)).values())
    if not shared:
        return 0.0
    precision, recall = shared / len(gen), shared / len(ref)
    return 2 * precision * recall / (precision + recall)


def _lcs(a: Sequence[str], b: Sequence[str]) -> int:
    """Length of the longest common subsequence (one row of the table at a time)."""
    if len(a) < len(b):
        a, b = b, a
    row = [0] * (len(b) + 1)
    for x in a:
        previous = 0
        for j, y in enumerate(b, start=1):
            current = row[j]
            row[j] = previous + 1 if x == y else max(row[j], row[j - 1])
            previous = current
    return row[-1]


def rouge_l(reference: str, generated: str) -> float:
    """ROUGE-L F-measure: the longest common word subsequence over both lengths (equal to
    `rouge-score`'s ``rougeL`` without stemming on text without CJK characters)."""
    ref, gen = words(reference), words(generated)
    if not ref or not gen:
        return 0.0
    common = _lcs(ref, gen)
    if not common:
        return 0.0
    precision, recall = common / len(gen), common / len(ref)
    return 2 * precision * recall / (precision + recall)


def exact_match(reference: str, generated: str) -> float:
    return float(words(reference) == words(generated))


# -- training -------------------------------------------------------------------------


def train(base: Path, name: str, prompts: Sequence[str], responses: Sequence[str],
          settings: Any, model_dir: Path, work_dir: Path, *, system: str = "",
          resume: bool = False, callbacks: Sequence[Any] = (),
          generation: Mapping[str, Any] | None = None) -> tuple["Generator", Any, str]:
    """Fine-tune the decoder at ``base`` (``name``: how the config names it) on (prompt,
    response) pairs and save it to ``model_dir``.

    ``settings`` is a `TrainSettings` (``peft`` auto: LoRA). Returns (the trained model as a
    `Generator` with the ``generation`` settings, the engine's `FitResult`, a sentence on
    how it was tuned)."""
    from transformers import DataCollatorForSeq2Seq, Trainer

    from ..artifacts.safety import refuse_remote_code
    from ..running.engine import run_trainer
    from . import lora

    if not len(prompts):
        raise DataError("no (prompt, response) pairs to fine-tune the decoder on.")
    refuse_remote_code(base, name)
    tokenizer = load_tokenizer(base)
    model = _causal_lm(base)
    model, settings, record = lora.apply(model, settings, base, name, task_type="CAUSAL_LM")
    room = getattr(model.config, "max_position_embeddings", None) or settings.max_length
    rows = sft_rows(tokenizer, prompts, responses, system, min(settings.max_length, room))

    collator = (ResponseBatches(tokenizer.pad_token_id) if keeps_logits(model)
                else DataCollatorForSeq2Seq(tokenizer, padding=True))

    def make_trainer(args):
        return Trainer(model=model, args=args, train_dataset=rows, data_collator=collator,
                       processing_class=tokenizer)

    trainer, result = run_trainer(make_trainer, settings, work_dir, None, True, resume, callbacks)
    trained = trainer.model
    how = (("LoRA" if record else "full fine-tuning") + f"; {lora.trainable_summary(trained)}; "
           "loss on response tokens")
    model_dir = Path(model_dir)
    model_dir.mkdir(parents=True, exist_ok=True)
    trained.save_pretrained(model_dir)  # with LoRA: the adapter alone
    tokenizer.save_pretrained(model_dir)
    meta = {"system_prompt": system,
            "layout": "chat template" if tokenizer.chat_template else "plain"}
    if record is not None:
        meta["base_model"] = record
        trained = trained.merge_and_unload()  # evaluate as served
    (model_dir / META).write_text(json.dumps(meta, indent=2) + "\n")
    how += f"; prompt layout: {meta['layout']}"
    return (Generator(trained.eval(), tokenizer, meta, generation, precision=settings.precision),
            result, how)


class ResponseBatches:
    """Training batches whose rows all end at the same place (left padding, positions
    counted from each row's first token), so the model computes its vocabulary logits for
    the last positions only: those that predict a response token (``logits_to_keep``).
    The loss is the same as over every position; the output layer and its softmax over the
    vocabulary, a large share of a small decoder's work on long prompts, run on the
    responses alone."""

    def __init__(self, pad_token_id: int) -> None:
        self.pad = int(pad_token_id)

    def __call__(self, rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
        import torch

        ids, mask = left_padded([r["input_ids"] for r in rows], self.pad)
        width = len(ids[0])
        # from the token before the first response token to the end
        keep = min(width, 1 + max(len(r["labels"]) - _first_label(r["labels"]) for r in rows))
        positions = [[0] * (width - len(r["input_ids"])) + list(range(len(r["input_ids"])))
                     for r in rows]
        labels = [row[width - keep:] for row in left_padded([r["labels"] for r in rows], -100)[0]]
        return {"input_ids": torch.tensor(ids), "attention_mask": torch.tensor(mask),
                "position_ids": torch.tensor(positions), "labels": torch.tensor(labels),
                "logits_to_keep": keep}


def left_padded(rows: Sequence[Sequence[int]], pad: int) -> tuple[list[list[int]], list[list[int]]]:
    """(rows padded on the left with ``pad`` to the longest row, attention masks): every
    row ends at the same place."""
    width = max(len(r) for r in rows)
    return ([[pad] * (width - len(r)) + list(r) for r in rows],
            [[0] * (width - len(r)) + [1] * len(r) for r in rows])


def _first_label(labels: Sequence[int]) -> int:
    return next((i for i, t in enumerate(labels) if t != -100), len(labels))


def keeps_logits(model: Any) -> bool:
    """True when the causal LM (under any PEFT wrapper) takes ``logits_to_keep`` and
    ``position_ids``, as transformers' Llama, Gemma, Qwen and Mistral classes do."""
    import inspect

    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    accepted = inspect.signature(base.forward).parameters
    return "logits_to_keep" in accepted and "position_ids" in accepted


def _causal_lm(folder: Path):
    """The decoder at ``folder`` with fp32 weights, no remote code."""
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(str(folder), trust_remote_code=False,
                                                dtype="float32")


def is_generator(folder: Path) -> bool:
    return (Path(folder) / META).is_file()


def load(model_dir: Path, generation: Mapping[str, Any] | None = None,
         precision: str = "auto") -> "Generator":
    """A folder `train` wrote, on the device inference runs on (``precision``: see
    `Generator`)."""
    from . import lora
    from .inference import place

    model_dir = Path(model_dir)
    if not is_generator(model_dir):
        raise ModelError(f"{model_dir} is not a fine-tuned decoder (no {META}); pass a "
                         "fine-tuned version of a text-generation task.")
    meta = json.loads((model_dir / META).read_text())
    if lora.is_adapter(model_dir):
        base = lora.base_folder(meta["base_model"], model_dir)
        model = lora.load_adapter(_causal_lm(base), model_dir)
    else:
        model = _causal_lm(model_dir)
    return Generator(place(model).eval(), load_tokenizer(model_dir), meta, generation,
                     precision=precision)


def load_base(base: Path, generation: Mapping[str, Any] | None = None,
              system: str = "", precision: str = "auto") -> "Generator":
    """The base decoder at ``base``, not fine-tuned (for an ``untuned`` baseline)."""
    from .inference import place

    return Generator(place(_causal_lm(base)).eval(), load_tokenizer(base), {"system_prompt": system},
                     generation, precision=precision)


# -- generation -----------------------------------------------------------------------


class Generator:
    """A loaded decoder: ``generate(prompts)`` -> texts, ``stream(prompt)`` yields one
    answer as it is written.

    ``generation``: ``max_new_tokens``, ``temperature`` (0: greedy), ``stop`` (strings that
    end an answer) and ``batch_size`` (prompts written at once, of similar length);
    missing keys take `GENERATION_DEFAULTS`. ``precision`` is ``train.precision``: where it
    resolves to bf16 (``auto`` on hardware with native bf16, or forced), the weights are
    cast to bf16 for generation (1.7-2.6x faster than fp32 on such CPUs,
    bench/generation_precision.py); else they stay fp32."""

    def __init__(self, model: Any, tokenizer: Any, meta: Mapping[str, Any],
                 generation: Mapping[str, Any] | None = None, precision: str = "auto") -> None:
        from ..running.engine import resolve_precision

        self.precision = resolve_precision(precision)
        if self.precision == "bf16":
            import torch

            model = model.to(torch.bfloat16)
        self.model, self.tokenizer, self.meta = model, tokenizer, dict(meta)
        g = {**GENERATION_DEFAULTS, **{k: v for k, v in (generation or {}).items()
                                      if k in GENERATION_DEFAULTS}}
        if int(g["max_new_tokens"]) < 1 or float(g["temperature"]) < 0:
            raise ConfigError("max_new_tokens must be 1 or more and temperature 0 or more, got "
                              f"{g['max_new_tokens']} and {g['temperature']}.")
        self.max_new_tokens, self.temperature = int(g["max_new_tokens"]), float(g["temperature"])
        self.stop, self.batch_size = [str(s) for s in g["stop"]], max(1, int(g["batch_size"]))

    def describe(self) -> str:
        how = "greedy" if self.temperature <= 0 else f"sampled at temperature {self.temperature:g}"
        return f"{how}, at most {self.max_new_tokens} new tokens, {self.precision} weights" + (
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

    def _ids(self, prompt: str) -> list[int]:
        return self._fit(prompt_ids(self.tokenizer, prompt, self.meta.get("system_prompt", "")))

    def _batch(self, ids: Sequence[list[int]]):
        import torch

        # left padding: every answer starts at the end
        padded, mask = left_padded(ids, self.tokenizer.pad_token_id)
        device = next(self.model.parameters()).device
        return torch.tensor(padded, device=device), torch.tensor(mask, device=device)

    def _fit(self, ids: list[int]) -> list[int]:
        """A prompt the model can read with room to answer: one longer than its context
        less the answer's tokens (at most half the context) keeps its end."""
        room = getattr(self.model.config, "max_position_embeddings", None)
        if not room:
            return ids
        keep = room - min(self.max_new_tokens, room // 2)
        return ids[-keep:] if len(ids) > keep else ids

    def _clean(self, text: str) -> str:
        for stop in self.stop:
            text = text.split(stop, 1)[0]
        return text.strip()

    def generate(self, prompts: Sequence[str]) -> list[str]:
        """The answer to each prompt, in order; prompts of similar length are written
        together (``batch_size`` at a time, longest first), so little of a batch is padding."""
        import torch

        ids = [self._ids(p) for p in prompts]
        order = sorted(range(len(ids)), key=lambda i: -len(ids[i]))
        out: list[str] = [""] * len(ids)
        for start in range(0, len(order), self.batch_size):
            rows = order[start:start + self.batch_size]
            input_ids, mask = self._batch([ids[i] for i in rows])
            with torch.inference_mode():
                tokens = self.model.generate(input_ids=input_ids, attention_mask=mask,
                                             **self._settings(input_ids.shape[1]))
            new = tokens[:, input_ids.shape[1]:]
            for i, text in zip(rows, self.tokenizer.batch_decode(new, skip_special_tokens=True)):
                out[i] = self._clean(text)
        return out

    def stream(self, prompt: str) -> Iterator[str]:
        """The answer to one prompt, piece by piece as the model writes it; the pieces
        join to ``generate([prompt])[0]``."""
        import torch
        from transformers import TextIteratorStreamer

        input_ids, mask = self._batch([self._ids(str(prompt))])
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
        from .inference import quantize_int8

        if kind != "int8":
            raise ConfigError(f"--quantize {kind}: text generation supports int8 only.")
        self.model, self.precision = quantize_int8(self.model.float()), "int8"


def stream_cited(pieces: Iterator[str]) -> Iterator[str]:
    """``pieces`` of a grounded answer without its leading citation (``"[2] "``): held back
    until it is clear whether the text starts with one."""
    held = ""
    for piece in pieces:
        if held is None:
            yield piece
            continue
        held += piece
        found = CITATION.match(held)
        if found and found.end() < len(held):  # the citation is complete: text follows
            rest = held[found.end():]
            held = None
            if rest:
                yield rest
        elif not found and not re.fullmatch(r"\s*\[?\d*", held):  # no citation after all
            yield held.lstrip()
            held = None
    if held:
        yield cited(held)[1]
