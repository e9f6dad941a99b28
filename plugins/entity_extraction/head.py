"""The ``token-classification`` head: a transformer with a linear layer over each subword.

The model folder is a Hugging Face token-classification model (safetensors) with its
tokenizer and ``entities.json`` (entity types, window stride, decoding). Prediction takes
raw text, splits it into words keeping character offsets, tags the words and returns each
entity with its type, text, offsets into the original string and a score.
"""
from __future__ import annotations

import json
import random
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from tunehub.plugin import (ConfigError, DataError, FitOutput, ModelError, Run, TaskData,
                            TrainSettings, lora, resolve_precision, run_trainer)

from . import model as tagging
from .data import Sentences, read_file, words
from .metrics import entity_outputs

META = "entities.json"
DECODING = ("viterbi", "argmax")


class TokenClassificationHead:
    name = "token-classification"
    description = ("Entity extraction: a transformer + linear layer per token (transformers), "
                   "IOB2 tags, windows for long texts, constrained decoding.")
    paths = ("dataset.validation",)  # a file setting: relative in a task file means beside it
    # numeric settings and the interval each must lie in (checked before any data loads)
    ranges = {"dataset.validation_fraction": "[0, 1)"}
    schema = {
        "dataset.tag_scheme": "auto",  # auto | iob2 | iob1 | bioes (auto: bioes if E-/S- occur)
        "dataset.validation": "",  # a file for best-epoch selection; else a slice of train
        "dataset.validation_fraction": 0.1,
        "head.stride": 32,  # subwords shared by consecutive windows of a long text
        "head.decoding": "viterbi",  # viterbi (valid IOB2 path) | argmax (then repaired)
        # auto | causal | bidirectional: a decoder that can (Gemma 3) reads both ways
        "head.attention": "auto",
    }

    # -- data -----------------------------------------------------------------------
    def load_data(self, config: Mapping[str, Any], files: Mapping[str, Path]) -> TaskData:
        ds = config["dataset"]
        _check_settings(config)
        declared = list(ds["labels"])
        read = lambda path: read_file(Path(path), ds["columns"], ds["tag_scheme"], declared)  # noqa: E731
        files = dict(files)
        if ds["validation"] and "train" in files:  # evaluation alone needs no validation
            files["validation"] = Path(ds["validation"]).expanduser()
        train = read(files["train"]) if "train" in files else Sentences()
        if "eval" in files:
            evaluation = read(files["eval"])
        else:
            keep, held = _split(len(train), ds["eval_fraction"], ds["split_seed"], files["train"])
            train, evaluation = train.subset(keep), train.subset(held)
        validation = read(files["validation"]) if "validation" in files else None
        seen = train.entity_counts()
        types = declared or sorted(set(seen) | set(evaluation.entity_counts()))
        unseen = sorted(set(evaluation.entity_counts()) - set(seen)) if len(train) else []
        if unseen:
            raise DataError(f"{files['eval']}: entity type(s) {', '.join(unseen)} never occur in "
                            f"the training data {files['train']}; the model cannot learn them.")
        if len(train) and not seen:
            raise DataError(f"{files['train']}: no entities at all; tag some (B-TYPE/I-TYPE).")
        summary = {"train sentences": len(train), "eval sentences": len(evaluation),
                   "eval source": str(files["eval"]) if "eval" in files else
                   f"seeded {ds['eval_fraction']:.0%} of {Path(files['train']).name}",
                   "train entities": seen, "eval entities": evaluation.entity_counts()}
        return TaskData(train, evaluation, files, summary,
                        {"labels": types, "validation": validation})

    def training_texts(self, data: TaskData, config: Mapping[str, Any]) -> list[str]:
        """The sentences the tagger reads (the core checks the tokenizer covers them)."""
        return list(data.train.texts) or list(data.eval.texts)

    def example_inputs(self, data: TaskData, config: Mapping[str, Any]) -> list[str]:
        return list(dict.fromkeys(data.eval.texts))

    # -- feedback -------------------------------------------------------------------
    def row_keys(self, data: TaskData, config: Mapping[str, Any]) -> dict[str, list[str]]:
        """A row is a sentence's text (trimmed)."""
        return {"train": [t.strip() for t in data.train.texts],
                "eval": [t.strip() for t in data.eval.texts]}

    def corrections(self, config: Mapping[str, Any], labels: Sequence[str] | None) -> dict[str, Any]:
        """Feedback gives a text's entities in full (an empty list: it has none)."""
        types = list(config["dataset"]["labels"])
        label = {"type": "string", "minLength": 1, **({"enum": types} if types else {})}
        span = {"type": "object", "required": ["start", "end"],
                "anyOf": [{"required": ["label"]}, {"required": ["type"]}],
                "properties": {"start": {"type": "integer", "minimum": 0},
                               "end": {"type": "integer", "minimum": 1}, "label": label,
                               "type": label}}
        return {"entities": {"type": "array", "items": span,
                             "description": "Every entity of the text: character offsets "
                                            "(end exclusive) and its label (or type, as "
                                            "predictions name it)."}}

    def join_feedback(self, data: TaskData, items: Sequence[Mapping[str, Any]],
                      config: Mapping[str, Any], held_out: set[str]) -> dict[str, int]:
        """Each corrected text joins the training sentences with its spans as tags; a text
        already there takes the corrected tags."""
        from tunehub.plugin import latest_corrections

        from .data import from_spans

        types = set(data.info["labels"])
        latest, counts = latest_corrections(items, held_out)
        train = data.train
        at: dict[str, list[int]] = {}
        for position, known_text in enumerate(train.texts):
            at.setdefault(known_text.strip(), []).append(position)
        for key, item in latest.items():
            text = item["input"]
            spans = [{"start": e["start"], "end": e["end"], "label": e.get("label", e.get("type"))}
                     for e in item["entities"]]
            if any(span["label"] not in types for span in spans):
                counts["skipped (an entity type the task does not have)"] += 1
                continue
            try:
                tokens, tags, offsets = from_spans(text, spans, f"feedback {item.get('id')}")
            except DataError:
                counts["skipped (spans that do not fit the text)"] += 1
                continue
            known = at.get(key, [])
            for i in known:
                train.tokens[i], train.tags[i] = tokens, tags
                train.texts[i], train.offsets[i] = text, offsets
            if not known:
                train.add(tokens, tags, f"feedback {item.get('id')}", text, offsets)
            counts["changed a training sentence" if known else "added"] += 1
        return dict(counts)

    # -- training -------------------------------------------------------------------
    def fit(self, run: Run) -> FitOutput:
        from transformers import AutoTokenizer, DataCollatorForTokenClassification, Trainer

        cfg, settings = run.config, TrainSettings.from_config(run.config["train"])
        types = run.data.info["labels"]
        labels = tagging.tag_labels(types)
        tokenizer = _fast_tokenizer(AutoTokenizer.from_pretrained(run.base_model))
        attention = _attention(run.base_model, cfg["head"]["attention"])
        model = _load_model(run.base_model, labels, attention)
        if settings.freeze_embeddings:
            model.get_input_embeddings().weight.requires_grad_(False)
        # with LoRA: adapters on the backbone, the new classifier trained fully (TOKEN_CLS)
        model, settings, base = lora.apply(model, settings, run.base_model, cfg["model"],
                                           task_type="TOKEN_CLS")
        trained = lora.trainable_summary(model)
        train, val, source = self._validation(run.data, cfg["dataset"], settings.seed)
        stride = window_stride(cfg["head"]["stride"], settings.max_length)
        features = lambda s: tagging.training_features(  # noqa: E731
            tokenizer, s.tokens, s.tags, labels, settings.max_length, stride)
        selecting = run.primary_metric if val is not None else None

        def compute_metrics(prediction) -> dict[str, float]:
            return run.score(_window_outputs(types, labels, prediction))

        def make_trainer(args):
            return Trainer(model=model, args=args, train_dataset=features(train),
                           eval_dataset=features(val) if val is not None else None,
                           data_collator=DataCollatorForTokenClassification(tokenizer),
                           processing_class=tokenizer,
                           compute_metrics=compute_metrics if val is not None else None)

        trainer, result = run_trainer(make_trainer, settings, run.work_dir, selecting,
                                      run.greater_is_better, run.resume, run.callbacks)
        predictor = EntityPredictor(trainer.model, tokenizer, types, settings, stride,
                                    cfg["head"]["decoding"], attention)
        predictor.save(run.model_dir, base)
        if base is not None:  # evaluate as served: the adapter merged into the weights
            predictor.model = predictor.model.merge_and_unload()
        notes = {**result.notes(),
                 "fine-tuning": ("LoRA" if base else "full fine-tuning") + f" (train.peft); trained {trained}",
                 "attention direction": f"{attention} (head.attention)",
                 "selection": f"best epoch on {selecting} over {source}" if selecting else "last epoch"}
        return FitOutput(predictor.outputs(run.data.eval), result.log_history, notes)

    @staticmethod
    def _validation(data: TaskData, ds: Mapping[str, Any], seed: int):
        """(train, validation or None, where the validation came from)."""
        train, given = data.train, data.info.get("validation")
        if given is not None:
            return train, given, f"{len(given)} sentences of {data.files['validation']}"
        fraction = ds["validation_fraction"]
        if fraction <= 0 or len(train) < 20:
            return train, None, ""
        keep, held = _split(len(train), fraction, seed, data.files.get("train", ""),
                            "dataset.validation_fraction")
        return train.subset(keep), train.subset(held), f"{len(held)} held-out training sentences"

    # -- using a saved model --------------------------------------------------------
    def load(self, model_dir: Path, config: Mapping[str, Any]) -> EntityPredictor:
        """Load once, predict many (predict, evaluate and serve)."""
        _check_settings(config)
        return EntityPredictor.load(Path(model_dir), TrainSettings.from_config(config["train"]),
                                    config["head"]["stride"], config["head"]["decoding"])

    def evaluate(self, model_dir: Path, data: TaskData, config: Mapping[str, Any]):
        return self.load(model_dir, config).evaluate(data)

    def predict(self, model_dir: Path, inputs: Sequence[str], config: Mapping[str, Any]):
        return self.load(model_dir, config).predict(inputs)


class EntityPredictor:
    """A loaded tagger: ``predict(texts)`` -> ``{"entities": [...]}`` per text."""

    def __init__(self, model, tokenizer, types: Sequence[str], settings: TrainSettings,
                 stride: int = 32, decoding: str = "viterbi", attention: str = "causal") -> None:
        self.model, self.tokenizer, self.settings = model, tokenizer, settings
        self.attention = attention
        self.types, self.labels = list(types), tagging.tag_labels(types)
        self.stride, self.decoding = stride, decoding

    def tag(self, sentences: Sequence[Sequence[str]]):
        """(IOB2 tags, word probabilities) per tokenised sentence."""
        probs = tagging.word_probabilities(
            self.model, self.tokenizer, sentences, self.settings.max_length, self.stride,
            self.settings.eval_batch_size, resolve_precision(self.settings.precision) == "bf16")
        return [tagging.decode(p, self.labels, self.decoding) for p in probs], probs

    def predict(self, inputs: Sequence[Any]) -> list[dict[str, Any]]:
        texts = [_text_of(x) for x in inputs]
        offsets = [words(text) for text in texts]
        tokens = [[text[s:e] for s, e in spans] for text, spans in zip(texts, offsets)]
        tags, probs = self.tag(tokens)
        return [{"entities": tagging.entities(t, p, self.labels, text, o)}
                for t, p, text, o in zip(tags, probs, texts, offsets)]

    def quantize(self, kind: str) -> None:
        """Dynamic int8 quantisation of the Linear layers, in place (``--quantize int8``)."""
        from tunehub.plugin import quantize_int8

        if kind != "int8":
            raise ConfigError(f"--quantize {kind}: entity extraction supports int8 only.")
        self.model = quantize_int8(self.model)

    def outputs(self, sentences: Sentences) -> dict[str, Any]:
        tags, _ = self.tag(sentences.tokens)
        return entity_outputs(self.types, sentences.tags, tags)

    def evaluate(self, data: TaskData) -> dict[str, Any]:
        unknown = sorted(set(data.eval.entity_counts()) - set(self.types))
        if unknown:
            raise DataError(f"entity type(s) {', '.join(unknown)} are not known to the model "
                            f"(it tags {', '.join(self.types)}).")
        return self.outputs(data.eval)

    def save(self, folder: Path, base: Mapping[str, Any] | None = None) -> None:
        """The model (with LoRA: the adapter and classifier, and ``base`` names the base)."""
        folder.mkdir(parents=True, exist_ok=True)
        self.model.save_pretrained(folder)
        self.tokenizer.save_pretrained(folder)
        meta = {"head": "token-classification", "types": self.types, "scheme": "IOB2",
                "stride": self.stride, "decoding": self.decoding, "attention": self.attention}
        if base is not None:
            meta["base_model"] = dict(base)
        (folder / META).write_text(json.dumps(meta, indent=2) + "\n")

    @classmethod
    def load(cls, folder: Path, settings: TrainSettings, stride: int | None = None,
             decoding: str | None = None) -> EntityPredictor:
        """The model in ``folder``; ``stride``/``decoding`` default to those it was trained with."""
        from transformers import AutoTokenizer

        if not (folder / META).is_file():
            raise ModelError(f"{folder} is not a token-classification model (no {META}); "
                             "pass a fine-tuned version such as entity-extraction@latest.")
        meta = json.loads((folder / META).read_text())
        # as trained (folders from before head.attention were all causal or encoders)
        attention = meta.get("attention", "causal")
        setting = "bidirectional" if attention == "bidirectional" else "causal"
        if lora.is_adapter(folder):
            base = lora.base_folder(meta.get("base_model", {}), folder)
            model = lora.load_adapter(
                _load_model(base, tagging.tag_labels(meta["types"]), setting), folder)
        else:
            model = _load_model(folder, tagging.tag_labels(meta["types"]), setting)
        from tunehub.plugin import place

        model = place(model)
        tokenizer = _fast_tokenizer(AutoTokenizer.from_pretrained(folder))
        stride = window_stride(meta["stride"] if stride is None else stride, settings.max_length)
        return cls(model, tokenizer, meta["types"], settings, stride, decoding or meta["decoding"],
                   attention)


def _text_of(value: Any) -> str:
    if isinstance(value, Mapping):
        value = value.get("text")
    if not isinstance(value, str):
        raise DataError(f"entity extraction predicts on text; got {str(value)[:40]!r}.")
    return value


def _load_model(path: Path, labels: Sequence[str], attention: str = "auto"):
    """The token classifier at ``path``; a decoder that can attend both ways does so
    (``head.attention``), since a tag depends on the words after it as well."""
    from transformers import (AutoConfig, AutoModelForTokenClassification,
                              MODEL_FOR_TOKEN_CLASSIFICATION_MAPPING)

    from tunehub.plugin import quiet_transformers

    from . import decoders

    quiet_transformers()
    decoders.register()
    config = AutoConfig.from_pretrained(path, trust_remote_code=False)
    if type(config) not in MODEL_FOR_TOKEN_CLASSIFICATION_MAPPING:
        raise ModelError(
            f"entity extraction needs a token-classification model, and transformers has none "
            f"for '{config.model_type}' ({path}); use an encoder (minilm, a BERT) or a decoder "
            "that has one (Llama, SmolLM2, Gemma 3).")
    return AutoModelForTokenClassification.from_pretrained(
        path, num_labels=len(labels), id2label=dict(enumerate(labels)),
        label2id={label: i for i, label in enumerate(labels)},
        use_safetensors=True, trust_remote_code=False,
        **lora.attention_kwargs(config, attention))


def _attention(path: Path, setting: str) -> str:
    """``head.attention`` resolved for the model at ``path``: bidirectional or causal
    (encoders: bidirectional)."""
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(path, trust_remote_code=False)
    both = lora.bidirectional(config, setting) or not lora.is_decoder(config)
    return "bidirectional" if both else "causal"


def _fast_tokenizer(tokenizer):
    if not getattr(tokenizer, "is_fast", False):
        raise ModelError("entity extraction needs a fast tokenizer (word offsets); "
                         f"{type(tokenizer).__name__} is not one.")
    if tokenizer.pad_token is None:  # decoder LLMs ship without one
        tokenizer.pad_token = tokenizer.eos_token or tokenizer.unk_token
    return tokenizer


def window_stride(stride: int, max_length: int) -> int:
    """The overlap of consecutive windows: ``head.stride``, at most half a window."""
    return min(stride, (max_length - 2) // 2)


def _check_settings(config: Mapping[str, Any]) -> None:
    if config["head"]["stride"] < 0:
        raise ConfigError(f"head.stride must be 0 or more, got {config['head']['stride']}.")
    if config["train"]["max_length"] < 8:
        raise ConfigError(f"train.max_length must be at least 8, got {config['train']['max_length']}.")
    if config["head"]["attention"] not in lora.ATTENTIONS:
        raise ConfigError(f"head.attention must be one of {', '.join(lora.ATTENTIONS)}, "
                          f"got '{config['head']['attention']}'.")
    if config["head"]["decoding"] not in DECODING:
        raise ConfigError(f"head.decoding must be one of {', '.join(DECODING)}, "
                          f"got '{config['head']['decoding']}'.")


def _split(n: int, fraction: float, seed: int, source: Any,
           setting: str = "dataset.eval_fraction") -> tuple[list[int], list[int]]:
    """A seeded random split of ``n`` sentences: (kept, held out), both in file order."""
    if not 0 < fraction < 1:
        raise ConfigError(f"{setting} must be between 0 and 1, got {fraction}.")
    held = max(1, round(n * fraction))
    if n - held < 1:
        raise DataError(f"{source}: too few sentences ({n}) to hold some out; give "
                        "--eval-data FILE.")
    order = list(range(n))
    random.Random(seed).shuffle(order)
    return sorted(order[held:]), sorted(order[:held])


def _window_outputs(types, labels, prediction) -> dict[str, Any]:
    """Entity outputs of the Trainer's evaluation windows (labelled positions only)."""
    import numpy as np

    logits = prediction.predictions[0] if isinstance(prediction.predictions, tuple) \
        else prediction.predictions
    guess, truth = np.asarray(logits).argmax(-1), np.asarray(prediction.label_ids)
    y_true, y_pred = [], []
    for row_true, row_pred in zip(truth, guess):
        keep = row_true != -100
        y_true.append([labels[i] for i in row_true[keep]])
        y_pred.append(tagging.repair([labels[i] for i in row_pred[keep]]))
    return entity_outputs(types, y_true, y_pred)
