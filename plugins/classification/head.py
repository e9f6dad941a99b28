"""The ``sequence-classification`` head: a transformer encoder, pooling, a linear layer.

Mean pooling over tokens is the default: sentence encoders such as all-MiniLM-L6-v2 were
trained with it, and it fine-tunes to better accuracy than the [CLS] pooler. The model
folder holds the encoder in Hugging Face format (safetensors), its tokenizer, and the
classifier as ``head.safetensors`` with ``head.json`` (labels, pooling). Where transformers'
``*ForSequenceClassification`` computes the same (a causal decoder's last token, BERT's
pooler: ``head.pooling=pooler``), the folder is saved as that class, with ``id2label``, so
``pipeline("text-classification")`` loads it as it is.
"""
from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from tunehub.plugin import (
    MIN_EVAL_ROWS,
    MIN_ROWS_PER_LABEL,
    Table,
    column_for,
    key_cell,
    label_counts,
    read_table,
    stratified_split,
    text_cell,
)
from tunehub.plugin import ConfigError, DataError, ModelError, did_you_mean
from tunehub.plugin import FitOutput, Run, TaskData


@dataclass
class Examples:
    texts: list[str]
    labels: list[int]


def _labels_of(table: Table, column: str, declared: list[str]) -> list[str]:
    found = []
    for index in range(len(table)):
        label = key_cell(table, index, column)
        if declared and label not in declared:
            raise DataError(
                f"{table.where(index)}: unknown label '{label}'. Expected one of "
                f"{', '.join(declared)}; fix the row or add the label to dataset.labels."
            )
        found.append(label)
    return found


def _read_labelled(path: Path, columns: Mapping[str, str], declared: list[str]):
    table = read_table(path)
    text_col = column_for(table, "text", columns)
    label_col = column_for(table, "label", columns)
    texts = [text_cell(table, i, text_col) for i in range(len(table))]
    return table, texts, _labels_of(table, label_col, declared)


POOLINGS = ("auto", "mean", "cls", "last", "pooler")


def _check_split(train_file: Path, train_labels: list[str], eval_labels: list[str]) -> None:
    """A split must leave every label rows to learn from and rows to be scored on."""
    counts = Counter(train_labels) + Counter(eval_labels)
    short = sorted(label for label in counts if not (label in train_labels and label in eval_labels))
    if short:
        shown = ", ".join(f"'{label}' ({counts[label]} row{'s' * (counts[label] != 1)})" for label in short)
        raise DataError(
            f"{train_file}: too little data to split: label(s) {shown} cannot have both "
            "training and evaluation rows. Add rows for them, or give --eval-data FILE."
        )


def _few_rows(names: list[str], train_labels: list[int], eval_rows: int) -> list[str]:
    counts = Counter(train_labels)
    few = [f"{names[i]} ({counts.get(i, 0)})" for i in range(len(names))
           if counts.get(i, 0) < MIN_ROWS_PER_LABEL]
    out = []
    if few:
        out.append(f"few training rows for label(s) {', '.join(few)}: under {MIN_ROWS_PER_LABEL} "
                   "per label, the model learns little and metrics vary from run to run.")
    if eval_rows < MIN_EVAL_ROWS:
        out.append(f"only {eval_rows} evaluation rows (under {MIN_EVAL_ROWS}): each row moves "
                   f"accuracy by {1 / max(eval_rows, 1):.0%}; treat the metrics as rough.")
    return out


class SequenceClassificationHead:
    name = "sequence-classification"
    description = "Text classification: encoder + mean pooling + linear layer (transformers)."
    # numeric settings and the interval each must lie in (checked before any data loads)
    ranges = {"head.dropout": "[0, 1)", "dataset.validation_fraction": "[0, 1)"}
    schema = {
        # auto (mean for encoders and decoders reading both ways, else the last token) | mean | cls | last
        "head.pooling": "auto",
        # causal | bidirectional | auto (both ways where the model can: Gemma 3). Causal by
        # default: on validation slices reading both ways scored lower for classification
        "head.attention": "causal",
        "head.dropout": 0.1,
        # auto | true | false: an ONNX copy of the model for predict and serve (onnxruntime
        # + tokenizers: a one-off prediction without importing torch). auto: encoders up to
        # ONNX_AUTO_PARAMETERS parameters; decoder LLMs keep torch (a graph of GBs, minutes to write)
        "head.onnx": "auto",
        "dataset.validation_fraction": 0.1,  # of the training rows, for best-epoch selection
    }
    # `app monitor` watches its tasks: the predicted label and the probability of each
    monitor_outputs = {"label": "label", "scores": "probabilities"}

    # -- data ---------------------------------------------------------------------
    def load_data(self, config: Mapping[str, Any], files: Mapping[str, Path]) -> TaskData:
        if config["head"]["pooling"] not in POOLINGS:
            raise ConfigError(f"'head.pooling' must be one of {', '.join(POOLINGS)}, got "
                              f"'{config['head']['pooling']}'.{did_you_mean(config['head']['pooling'], POOLINGS)}")
        from tunehub.plugin import lora

        if config["head"]["attention"] not in lora.ATTENTIONS:
            raise ConfigError(f"'head.attention' must be one of {', '.join(lora.ATTENTIONS)}, got "
                              f"'{config['head']['attention']}'.")
        onnx_mode(config["head"]["onnx"])
        ds = config["dataset"]
        declared = list(ds["labels"])
        twice = sorted({label for label in declared if declared.count(label) > 1})
        if twice:
            raise ConfigError(f"dataset.labels lists {', '.join(twice)} more than once; list each "
                              "label once.")
        columns = ds["columns"]
        if "train" not in files:  # evaluation only: every row of the eval file
            _, texts, labels = _read_labelled(files["eval"], columns, declared)
            names = declared or sorted(set(labels))
            index = {name: i for i, name in enumerate(names)}
            examples = Examples(texts, [index[label] for label in labels])
            summary = {"eval rows": len(texts), "eval labels": label_counts(labels)}
            return TaskData(Examples([], []), examples, dict(files), summary, {"labels": names})
        train_table, texts, labels = _read_labelled(files["train"], columns, declared)
        if "eval" in files:
            eval_table, eval_texts, eval_labels = _read_labelled(files["eval"], columns, declared)
            names = declared or sorted(set(labels) | set(eval_labels))
            unseen = sorted(set(eval_labels) - set(labels))
            if unseen:
                raise DataError(
                    f"{files['eval']}: label(s) {', '.join(unseen)} never occur in the training "
                    f"file {files['train']}; the model cannot learn them. Add training rows."
                )
            train_idx, eval_idx = list(range(len(texts))), None
        else:
            names = declared or sorted(set(labels))
            train_idx, eval_idx = stratified_split(labels, ds["eval_fraction"], ds["split_seed"])
            eval_texts = [texts[i] for i in eval_idx]
            eval_labels = [labels[i] for i in eval_idx]
        if len(set(labels)) < 2:
            raise DataError(f"{files['train']}: only one label ({labels[0]}); need at least two.")
        index = {name: i for i, name in enumerate(names)}
        train = Examples([texts[i] for i in train_idx], [index[labels[i]] for i in train_idx])
        evaluation = Examples(eval_texts, [index[label] for label in eval_labels])
        if "eval" not in files:
            _check_split(files["train"], [labels[i] for i in train_idx], eval_labels)
        summary = {
            "train rows": len(train.texts),
            "eval rows": len(evaluation.texts),
            "eval source": str(files["eval"]) if "eval" in files else
            f"stratified {ds['eval_fraction']:.0%} of {files['train'].name} (seed {ds['split_seed']})",
            "train labels": label_counts(names[i] for i in train.labels),
            "eval labels": label_counts(names[i] for i in evaluation.labels),
        }
        return TaskData(train, evaluation, dict(files), summary, {"labels": names},
                        _few_rows(names, train.labels, len(evaluation.texts)))

    def training_texts(self, data: TaskData, config: Mapping[str, Any]) -> list[str]:
        """What the model reads (the core checks the tokenizer covers it)."""
        return list(data.train.texts) or list(data.eval.texts)

    def example_inputs(self, data: TaskData, config: Mapping[str, Any]) -> list[str]:
        return list(data.eval.texts)

    # -- feedback -------------------------------------------------------------------
    def row_keys(self, data: TaskData, config: Mapping[str, Any]) -> dict[str, list[str]]:
        """A row is its text (trimmed)."""
        return {"train": [t.strip() for t in data.train.texts],
                "eval": [t.strip() for t in data.eval.texts]}

    def corrections(self, config: Mapping[str, Any], labels: Sequence[str] | None) -> dict[str, Any]:
        """Feedback names the right label of a text."""
        names = list(labels or config["dataset"]["labels"])
        return {"label": {"type": "string", "minLength": 1, **({"enum": names} if names else {}),
                          "description": "The right label."}}

    def join_feedback(self, data: TaskData, items: Sequence[Mapping[str, Any]],
                      config: Mapping[str, Any], held_out: set[str]) -> dict[str, int]:
        """Each (text, label) joins the training rows; a text already there takes the
        feedback's label (every copy of it)."""
        from tunehub.plugin import latest_corrections

        names = data.info["labels"]
        index = {name: i for i, name in enumerate(names)}
        latest, counts = latest_corrections(items, held_out)
        at: dict[str, list[int]] = {}
        for position, text in enumerate(data.train.texts):
            at.setdefault(text.strip(), []).append(position)
        for text, item in latest.items():
            label = str(item["label"])
            if label not in index:
                counts["skipped (a label the task does not have)"] += 1
            elif text not in at:
                data.train.texts.append(text)
                data.train.labels.append(index[label])
                counts["added"] += 1
            elif all(data.train.labels[p] == index[label] for p in at[text]):
                counts["agreed with training"] += 1
            else:
                for position in at[text]:
                    data.train.labels[position] = index[label]
                counts["overrode a training label"] += 1
        return dict(counts)

    # -- training -----------------------------------------------------------------
    def fit(self, run: Run) -> FitOutput:
        from transformers import DataCollatorWithPadding, Trainer

        from tunehub.plugin import TrainSettings, run_trainer

        from tunehub.plugin import lora

        cfg, settings = run.config, TrainSettings.from_config(run.config["train"])
        names = run.data.info["labels"]
        tokenizer = load_tokenizer(run.base_model)
        model = TextClassifier.from_encoder(
            run.base_model, names, cfg["head"]["pooling"], cfg["head"]["dropout"],
            settings.label_smoothing, cfg["head"]["attention"],
        )
        if settings.freeze_embeddings:
            model.encoder.get_input_embeddings().weight.requires_grad_(False)
        model.encoder, settings, model.base = lora.apply(model.encoder, settings, run.base_model,
                                                         cfg["model"])
        peft = "lora" if model.base else "none"
        trained = lora.trainable_summary(model)
        train, val = self._validation_split(run.data.train, cfg["dataset"], settings.seed)
        encode = lambda ex: _encode(tokenizer, ex, settings.max_length)  # noqa: E731
        selecting = run.primary_metric if val is not None else None

        def compute_metrics(prediction) -> dict[str, float]:
            outputs = _outputs(names, prediction.label_ids, prediction.predictions)
            return run.score(outputs)

        def make_trainer(args):
            return Trainer(
                model=model, args=args, train_dataset=encode(train),
                eval_dataset=encode(val) if val is not None else None,
                data_collator=DataCollatorWithPadding(tokenizer),
                processing_class=tokenizer,
                compute_metrics=compute_metrics if val is not None else None,
            )

        trainer, result = run_trainer(
            make_trainer, settings, run.work_dir, selecting, run.greater_is_better,
            run.resume, run.callbacks, head_parameters=list(model.classifier.parameters()),
        )
        model = trainer.model
        model.save(run.model_dir, tokenizer)
        if peft == "lora":  # evaluate as served: the adapter merged into the weights
            model.merge()
        onnx_note = write_onnx(model, tokenizer, run.model_dir, cfg["head"]["onnx"], settings,
                               train.texts[:64])
        outputs = ClassificationPredictor.open(run.model_dir, cfg, model, tokenizer).evaluate_examples(
            run.data.eval, names)
        notes = {
            **result.notes(),
            "fine-tuning": f"{peft_note(peft, settings)}; trained {trained}"
            f"; pooling {model.pooling}; attention {model.attention} (head.attention)",
            "selection": f"best epoch on {selecting} over {len(val.texts)} held-out training rows"
            if selecting else "last epoch (no validation slice)",
            "onnx": onnx_note,
        }
        return FitOutput(outputs, result.log_history, notes)

    @staticmethod
    def _validation_split(train: Examples, ds: Mapping[str, Any], seed: int):
        fraction = ds["validation_fraction"]
        counts = Counter(train.labels)
        if fraction <= 0 or len(train.texts) < 20 or min(counts.values()) < 2:
            return train, None
        keep, held = stratified_split(train.labels, fraction, seed)
        pick = lambda idx: Examples([train.texts[i] for i in idx], [train.labels[i] for i in idx])  # noqa: E731
        return pick(keep), pick(held)

    # -- using a saved model ------------------------------------------------------
    def evaluate(self, model_dir: Path, data: TaskData, config: Mapping[str, Any]):
        return self.load(model_dir, config).evaluate(data)

    def load(self, model_dir: Path, config: Mapping[str, Any]) -> ClassificationPredictor:
        """Load once, predict many (used by predict, evaluate and serve)."""
        return ClassificationPredictor.open(model_dir, config)

    def predict(self, model_dir: Path, inputs: Sequence[str], config: Mapping[str, Any]):
        return self.load(model_dir, config).predict(inputs)

    # evaluation from predictions made elsewhere (`app evaluate --engine ray`)
    def eval_inputs(self, data: TaskData, config: Mapping[str, Any]) -> list[str]:
        """The texts of the evaluation rows, in order."""
        return list(data.eval.texts)

    def eval_outputs(self, data: TaskData, predictions: list[dict[str, Any]],
                     config: Mapping[str, Any]) -> dict[str, Any]:
        """The predictor's `evaluate` outputs from the predictions of `eval_inputs`
        (probabilities as predictions round them)."""
        names = list(predictions[0]["probabilities"]) if predictions else list(data.info["labels"])
        _in_model_order(data, names)
        return {"labels": names, "y_true": list(data.eval.labels),
                "y_pred": [names.index(p["label"]) for p in predictions],
                "probs": [[p["probabilities"][n] for n in names] for p in predictions]}

    def export(self, model_dir: Path, dest: Path, config: Mapping[str, Any]) -> dict[str, Any]:
        """A standalone sentence-transformers folder (see `export.py` beside this module)."""
        from .export import export_classifier

        return export_classifier(Path(model_dir), Path(dest))


class ClassificationPredictor:
    """A loaded classifier: ``predict(texts)`` -> label + probabilities per text.

    It runs on the model folder's ONNX copy where `onnx_backend.use_onnx` says so (no torch
    import), else on the torch model; the torch model loads on first use of ``model``
    (``--quantize int8``, export)."""

    def __init__(self, model_dir: Path, labels: list[str], settings, model=None, tokenizer=None,
                 session=None) -> None:
        self.model_dir, self.labels, self.settings = Path(model_dir), list(labels), settings
        self._model, self.tokenizer, self.session = model, tokenizer, session

    @classmethod
    def open(cls, model_dir: Path, config: Mapping[str, Any], model=None, tokenizer=None):
        from tunehub.plugin import TrainSettings, onnx_backend

        settings = TrainSettings.from_config(config["train"])
        if onnx_backend.use_onnx(model_dir, config):
            meta = json.loads((Path(model_dir) / "head.json").read_text())
            return cls(model_dir, meta["labels"], settings, model, tokenizer,
                       onnx_backend.Session(model_dir))
        if model is None:
            model, tokenizer = TextClassifier.load(model_dir)
        return cls(model_dir, model.labels, settings, model, tokenizer)

    @property
    def backend(self) -> str:
        return "onnx" if self.session is not None else "torch"

    @property
    def model(self):
        """The torch model (loaded on first use when predictions run on ONNX)."""
        if self._model is None:
            self._model, self.tokenizer = TextClassifier.load(self.model_dir)
        return self._model

    @model.setter
    def model(self, module) -> None:
        self._model = module

    def proba(self, texts: list[str]) -> np.ndarray:
        """(N, C) class probabilities, rows in input order."""
        if self.session is not None:
            return self.session.run(texts, self.settings.eval_batch_size)
        return predict_proba(self.model, self.tokenizer, texts, self.settings)

    def predict(self, inputs: Sequence[str]) -> list[dict[str, Any]]:
        probs = self.proba([str(t) for t in inputs])
        return [
            {"label": self.labels[int(row.argmax())],
             "probabilities": {name: round(float(p), 6) for name, p in zip(self.labels, row)}}
            for row in probs
        ]

    def quantize(self, kind: str) -> None:
        """Dynamic int8 quantisation of the Linear layers, in place (on the torch model)."""
        from tunehub.plugin import quantize_int8

        if kind != "int8":
            raise ConfigError(f"--quantize {kind}: the classifier supports int8 only.")
        self.model = quantize_int8(self.model)
        self.session = None

    def evaluate(self, data: TaskData) -> dict[str, Any]:
        """Evaluation outputs on ``data.eval``; its labels are mapped to the model's order."""
        _in_model_order(data, self.labels)
        return self.evaluate_examples(data.eval, self.labels)

    def evaluate_examples(self, examples: Examples, names: list[str]) -> dict[str, Any]:
        probs = self.proba(list(examples.texts))
        return {"labels": names, "y_true": list(examples.labels),
                "y_pred": probs.argmax(-1).tolist(), "probs": probs.tolist()}


ONNX_AUTO_PARAMETERS = 150_000_000  # head.onnx=auto: BERT-base (110M) yes, Gemma 3 270M no


def onnx_mode(value: Any) -> str:
    """``head.onnx`` as auto, true or false (TOML booleans included)."""
    mode = str(value).lower()
    if mode not in ("auto", "true", "false"):
        raise ConfigError(f"head.onnx must be auto, true or false, got '{value}'.")
    return mode


def write_onnx(model, tokenizer, model_dir: Path, mode: str, settings, texts: Sequence[str]) -> str:
    """The model folder's ONNX copy per ``head.onnx``; returns the report's note."""
    import torch

    from tunehub.plugin import is_main_process, lora, onnx_backend

    mode = onnx_mode(mode)
    if mode == "false":
        return "none (head.onnx=false): predict and serve run the torch model"
    parameters = sum(p.numel() for p in model.parameters())
    if mode == "auto" and lora.is_decoder(model.encoder.config):
        return "none: a decoder LLM keeps the torch model (head.onnx=auto; true writes one)"
    if mode == "auto" and parameters > ONNX_AUTO_PARAMETERS:
        return (f"none: {parameters / 1e6:.0f}M parameters, above head.onnx=auto's "
                f"{ONNX_AUTO_PARAMETERS / 1e6:.0f}M (true writes one)")
    if not is_main_process():
        return "written by the main process"
    from accelerate.utils import extract_model_from_parallel

    # the Trainer's mixed precision wraps forward in autocast: export the fp32 model
    model = extract_model_from_parallel(model, keep_fp32_wrapper=False)

    class Probabilities(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, input_ids, attention_mask, token_type_ids=None):
            logits = self.model(input_ids=input_ids, attention_mask=attention_mask,
                                token_type_ids=token_type_ids)["logits"]
            return torch.softmax(logits.float(), -1)

    was_training = model.training
    model.eval()
    info = onnx_backend.export(Probabilities().eval(), tokenizer, model_dir, settings.max_length,
                               "probabilities", texts)
    model.train(was_training)
    if not info["written"]:
        if mode == "true":
            raise ModelError(f"head.onnx=true, but the ONNX copy could not be written: {info['reason']}.")
        return f"none: {info['reason']}; predict and serve run the torch model"
    return (f"onnx/model.onnx ({info['bytes'] / 2**20:.0f} MiB, opset {info['opset']}; "
            f"onnxruntime within {info['max_abs_difference']:.1e} of torch on "
            f"{info['check_texts']} texts): predict, evaluate and serve run it in fp32 "
            "(TUNEHUB_BACKEND=torch for the torch model)")


def _in_model_order(data: TaskData, names: list[str]) -> None:
    """Map ``data.eval``'s label ids to the model's label order ``names``, in place; labels
    the model does not know are a DataError."""
    if list(data.info["labels"]) == names:
        return
    extra = sorted(set(data.info["labels"]) - set(names))
    if extra:
        raise DataError(f"labels {', '.join(extra)} are not known to the model "
                        f"(it predicts {', '.join(names)}).")
    remap = {i: names.index(n) for i, n in enumerate(data.info["labels"])}
    data.eval.labels = [remap[i] for i in data.eval.labels]
    data.info["labels"] = list(names)


def peft_note(peft: str, settings) -> str:
    if peft != "lora":
        return "full fine-tuning (train.peft)"
    from tunehub.plugin import lora

    cfg = lora.lora_settings(settings)
    targets = cfg["target_modules"]
    where = "every linear layer of the blocks" if targets in ("auto", "all-linear") else targets
    return (f"LoRA r={cfg['r']} alpha={cfg['alpha']} dropout={cfg['dropout']} on {where}, "
            f"learning rate {settings.learning_rate:g}, at most {cfg['max_epochs']} epochs "
            "(train.peft, train.lora)")


def load_tokenizer(folder: Path):
    """The model's tokenizer; decoders get a pad token (their end-of-text token) and
    right padding, so the last real token of each row is where the mask ends."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(folder, trust_remote_code=False)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token or tokenizer.unk_token
    tokenizer.padding_side = "right"
    return tokenizer


def _encode(tokenizer, examples: Examples, max_length: int) -> list[dict[str, Any]]:
    encoded = tokenizer(examples.texts, truncation=True, max_length=max_length)
    return [
        {**{key: encoded[key][i] for key in encoded}, "labels": examples.labels[i]}
        for i in range(len(examples.texts))
    ]


def _outputs(names: list[str], label_ids, logits) -> dict[str, Any]:
    logits = logits[0] if isinstance(logits, tuple) else logits
    return {"labels": names, "y_true": np.asarray(label_ids).tolist(),
            "y_pred": np.asarray(logits).argmax(-1).tolist()}


def predict_proba(model, tokenizer, texts: list[str], settings) -> np.ndarray:
    """(N, C) class probabilities, rows in input order."""
    import torch

    from tunehub.plugin import resolve_precision
    from tunehub.plugin import run_batches

    model.eval()
    return run_batches(
        texts, tokenizer, lambda batch: torch.softmax(model(**batch)["logits"].float(), -1),
        batch_size=settings.eval_batch_size, max_length=settings.max_length,
        bf16=resolve_precision(settings.precision) == "bf16",
    )


@lru_cache(maxsize=None)
def _module():
    import torch

    class TextClassifier(torch.nn.Module):
        """Encoder -> pooled sentence vector (B, H) -> dropout -> linear -> logits (B, C).

        The backbone is any transformers model: an encoder (BERT, MiniLM: mean or [CLS]
        pooling) or a decoder LLM (Llama: the last real token's state, since in a causal
        model only it has seen the whole text; Gemma 3 reads both ways, `head.attention`,
        and is mean-pooled). With LoRA the backbone is a PEFT model and only its adapters
        and the classifier train.
        """

        def __init__(self, encoder, labels: list[str], pooling: str = "auto",
                     dropout: float = 0.1, label_smoothing: float = 0.0) -> None:
            super().__init__()
            from tunehub.plugin import lora

            if pooling not in POOLINGS:
                raise ModelError(f"head.pooling must be one of {', '.join(POOLINGS)}, got '{pooling}'.")
            decoder = lora.is_decoder(encoder.config)
            both_ways = not decoder or bool(getattr(encoder.config, "use_bidirectional_attention", False))
            if pooling == "auto":
                pooling = "mean" if both_ways else "last"
            if pooling == "pooler" and getattr(_plain(encoder), "pooler", None) is None:
                raise ModelError(f"head.pooling=pooler needs a model with a pooler layer (BERT "
                                 f"and its kind); {encoder.config.model_type} has none. Use "
                                 "head.pooling=mean or cls.")
            self.encoder, self.labels, self.pooling = encoder, list(labels), pooling
            self.attention = "bidirectional" if both_ways else "causal"
            self.label_smoothing = label_smoothing
            self.base: dict[str, Any] | None = None  # set for LoRA: the base model's record
            self.dropout = torch.nn.Dropout(dropout)
            # decoders: no bias, like transformers' *ForSequenceClassification ``score``
            self.classifier = torch.nn.Linear(encoder.config.hidden_size, len(labels),
                                              bias=not decoder)

        @classmethod
        def from_encoder(cls, path: Path, labels, pooling="auto", dropout=0.1, label_smoothing=0.0,
                         attention="causal"):
            return cls(_backbone(Path(path), attention, keep_pooler=pooling == "pooler"), labels,
                       pooling, dropout, label_smoothing)

        def forward(self, input_ids, attention_mask, token_type_ids=None, labels=None):
            kwargs = {"token_type_ids": token_type_ids} if token_type_ids is not None else {}
            states = self.encoder(input_ids=input_ids, attention_mask=attention_mask, **kwargs)
            hidden = states.last_hidden_state  # (B, T, H)
            if self.pooling == "pooler":  # BERT's dense + tanh over [CLS], as *ForSequenceClassification
                pooled = states.pooler_output
            elif self.pooling == "cls":
                pooled = hidden[:, 0]
            elif self.pooling == "last":  # the last position the mask keeps, left or right padding
                last = attention_mask.shape[1] - 1 - attention_mask.flip(1).argmax(1)  # (B,)
                pooled = hidden[torch.arange(hidden.shape[0], device=hidden.device), last]
            else:
                mask = attention_mask.unsqueeze(-1).to(hidden.dtype)  # (B, T, 1)
                pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)  # (B, H)
            logits = self.classifier(self.dropout(pooled))  # (B, C)
            out = {"logits": logits}
            if labels is not None:
                out["loss"] = torch.nn.functional.cross_entropy(
                    logits.float(), labels, label_smoothing=self.label_smoothing)
            return out

        def merge(self) -> None:
            """Fold LoRA adapters into the backbone's weights (a plain model again)."""
            if hasattr(self.encoder, "merge_and_unload"):
                self.encoder = self.encoder.merge_and_unload()

        def save(self, folder: Path, tokenizer) -> None:
            """The backbone (or, with LoRA, only its adapter), tokenizer, classifier.

            A model that transformers' ``*ForSequenceClassification`` computes the same way
            (a causal decoder's last token, BERT's pooler) is saved as one, with ``id2label``,
            so ``pipeline("text-classification", model=folder)`` answers as `predict` does."""
            from safetensors.torch import save_file

            from .export import save_sequence_classification, standard_class

            folder.mkdir(parents=True, exist_ok=True)
            if self.base is None and standard_class(self) is not None:
                save_sequence_classification(self, tokenizer, folder)
            else:
                self.encoder.save_pretrained(folder)
            tokenizer.save_pretrained(folder)
            state = {k: v.detach().contiguous().cpu() for k, v in self.classifier.state_dict().items()}
            save_file(state, str(folder / "head.safetensors"))
            meta = {"head": "sequence-classification", "labels": self.labels, "pooling": self.pooling,
                    "attention": self.attention}
            if self.base is not None:
                meta["base_model"] = self.base
            (folder / "head.json").write_text(json.dumps(meta, indent=2) + "\n")

        @classmethod
        def load(cls, folder: Path):
            from safetensors.torch import load_file

            from tunehub.plugin import lora

            meta_path = Path(folder) / "head.json"
            if not meta_path.is_file():
                raise ModelError(
                    f"{folder} is not a sequence-classification model (no head.json); "
                    "pass a fine-tuned version such as TASK@latest."
                )
            meta = json.loads(meta_path.read_text())
            # as trained (folders from before head.attention were causal or encoders)
            attention = "bidirectional" if meta.get("attention") == "bidirectional" else "causal"
            keep_pooler = meta["pooling"] == "pooler"
            if lora.is_adapter(folder):
                base = lora.base_folder(meta.get("base_model", {}), Path(folder))
                encoder = lora.load_adapter(_backbone(base, attention, keep_pooler), Path(folder))
            else:
                encoder = _backbone(Path(folder), attention, keep_pooler)
            model = cls(encoder, meta["labels"], meta["pooling"], 0.0)
            model.classifier.load_state_dict(load_file(str(Path(folder) / "head.safetensors")))
            model.eval()
            from tunehub.plugin import place

            return place(model), load_tokenizer(Path(folder))

    return TextClassifier


def _plain(encoder):
    """The transformers model inside a PEFT wrapper (or the model itself)."""
    return encoder.get_base_model() if hasattr(encoder, "get_base_model") else encoder


def _backbone(path: Path, attention: str = "causal", keep_pooler: bool = False):
    """The transformer without an LM head (safetensors only, no remote code); a decoder
    that can attend both ways does when ``attention`` (``head.attention``) says so. A
    folder saved as ``*ForSequenceClassification`` loads its backbone here too."""
    from transformers import AutoConfig, AutoModel

    from tunehub.plugin import lora, quiet_transformers
    from tunehub.plugin import refuse_remote_code

    quiet_transformers()
    refuse_remote_code(path)
    config = AutoConfig.from_pretrained(path, trust_remote_code=False)
    encoder = AutoModel.from_pretrained(path, use_safetensors=True, trust_remote_code=False,
                                        **lora.attention_kwargs(config, attention))
    if getattr(encoder, "pooler", None) is not None and not keep_pooler:
        encoder.pooler = None  # unused: we pool ourselves (and DDP needs no dead params)
    return encoder


class _Lazy:
    """Resolve the torch-backed class on first use, so importing this module stays light."""

    def __getattr__(self, name: str):
        return getattr(_module(), name)


TextClassifier = _Lazy()
