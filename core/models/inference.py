"""The inference path shared by evaluation, predict and serve.

Texts are tokenized once, sorted by token count so each batch pads little, run under
``torch.inference_mode`` (with bf16 autocast only where the hardware is fast at it), and
the results are put back in input order.

Heads expose "load once, predict many" through an optional ``load(model_dir, config)``
returning a `Predictor`; heads without it are called through ``head.predict``, so every
head works with predict, evaluate and serve.
"""
from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from ..errors import ConfigError

QUANTIZE_CHOICES = ("none", "int8")
# Padded tokens per forward pass. On CPU, small batches keep the activations in cache:
# MiniLM encodes ~30% faster at 512 tokens a batch than at 128 sentences a batch
# (bench/inference_throughput.py).
MAX_TOKENS = 512
# A call with fewer tokens than this (a single question, say) runs on one intra-op thread:
# waking an OpenMP team costs more than it saves on a few tokens, and on a busy machine a
# second spinning thread multiplies tail latency (a MiniLM question at 2 threads on a
# shared 2-core machine: p99 756 ms against 37 ms on one; bench/qa_serving.py).
SMALL_TOKENS = 256


class Predictor(Protocol):
    """What a head's ``load(model_dir, config)`` returns: a model loaded once.

    ``predict(inputs)`` returns one JSON-able dict per input, in input order (required).
    ``evaluate(data)`` returns evaluation outputs on ``data.eval`` (optional: else the
    head's ``evaluate``). ``quantize(kind)`` switches the loaded model to ``kind``
    (``"int8"``) in place (optional: without it, ``--quantize`` is refused). ``labels``: the
    names of the classes it predicts (optional; feedback and monitoring check labels against
    them). ``stream(input)`` yields the answer to one input piece by piece as it is written
    (optional; ``POST /v1/stream`` serves it as server-sent events).
    """

    def predict(self, inputs: Sequence[Any]) -> list[dict[str, Any]]: ...


class PredictorAdapter:
    """A head's predictor with the optional members filled in (see `Predictor`)."""

    def __init__(self, head: Any, impl: Any, model_dir: Path, config: Mapping[str, Any]) -> None:
        self.head, self.impl, self.model_dir, self.config = head, impl, Path(model_dir), config
        # the predictor's optional members, resolved once
        self._evaluate = _callable(impl, "evaluate")
        self._quantize = _callable(impl, "quantize")
        self._stream = _callable(impl, "stream")
        labels = getattr(impl, "labels", None) if impl is not None else None
        self.labels: list[str] | None = [str(label) for label in labels] if labels else None

    def predict(self, inputs: Sequence[Any]) -> list[dict[str, Any]]:
        if self.impl is None:  # heads without `load`: the model loads on every call
            return self.head.predict(self.model_dir, list(inputs), self.config)
        return list(self.impl.predict(list(inputs)))

    def evaluate(self, data: Any) -> Mapping[str, Any]:
        if self._evaluate is not None:
            return self._evaluate(data)
        if self.head.own_evaluate is not None:  # probed once, at registration
            return self.head.own_evaluate(self.model_dir, data, self.config)
        raise ConfigError(f"head '{self.head.name}' cannot evaluate: its predictor needs "
                          "evaluate(data), or the head evaluate(model_dir, data, config).")

    @property
    def streams(self) -> bool:
        return self._stream is not None

    def stream(self, prompt: Any) -> Iterator[str]:
        """The answer to one input as it is written (a predictor's ``stream``)."""
        if self._stream is None:
            raise ConfigError(f"head '{self.head.name}' does not stream its answers (its "
                              "predictor has no stream(input)); use /v1/predict.")
        return self._stream(prompt)

    @property
    def supports_quantize(self) -> bool:
        return self._quantize is not None

    def quantize(self, kind: str) -> None:
        if self._quantize is None:
            raise ConfigError(f"head '{self.head.name}' does not support --quantize (its "
                              "predictor has no quantize(kind) method); run without --quantize.")
        self._quantize(kind)


def _callable(obj: Any, name: str) -> Any:
    member = getattr(obj, name, None) if obj is not None else None
    return member if callable(member) else None


def load_predictor(head: Any, model_dir: Path, config: Mapping[str, Any],
                   quantize: str = "none") -> PredictorAdapter:
    """Load a registered head's model once; with ``quantize``, quantised in place, or refused
    with one line when the head's predictor has no ``quantize``."""
    if quantize not in QUANTIZE_CHOICES:
        raise ConfigError(f"--quantize must be one of {', '.join(QUANTIZE_CHOICES)}, got '{quantize}'.")
    if quantize == "int8":  # dynamic int8 runs fp32 activations: never bf16 autocast
        config = {**config, "train": {**config.get("train", {}), "precision": "fp32"}}
    predictor = head.load(Path(model_dir), config)
    if quantize != "none":
        predictor.quantize(quantize)
    return predictor


def quantize_int8(module: Any) -> Any:
    """Dynamic int8 quantisation of the Linear layers (weights int8, activations fp32)."""
    import warnings

    import torch

    with warnings.catch_warnings():  # torch.ao.quantization announces its move to torchao
        warnings.simplefilter("ignore")
        return torch.ao.quantization.quantize_dynamic(module, {torch.nn.Linear}, dtype=torch.qint8)


def configure_threads() -> int:
    """Intra-op threads: $TUNEHUB_THREADS, else $OMP_NUM_THREADS, else torch's default
    (one per physical core); one inter-op thread, since batches run one after another."""
    import torch

    wanted = wanted_threads()
    if wanted:
        torch.set_num_threads(wanted)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:  # already set once parallel work started; keep it
        pass
    return torch.get_num_threads()


def wanted_threads() -> int | None:
    """The intra-op threads asked for: $TUNEHUB_THREADS, else $OMP_NUM_THREADS (a positive
    integer), else None (the runtime's default)."""
    wanted = os.environ.get("TUNEHUB_THREADS") or os.environ.get("OMP_NUM_THREADS")
    return int(wanted) if wanted and wanted.isdigit() and int(wanted) > 0 else None


@contextmanager
def one_thread(enabled: bool) -> Iterator[None]:
    """Run the block on one intra-op thread when ``enabled``; restores the count after."""
    import torch

    threads = torch.get_num_threads()
    if not enabled or threads == 1:
        yield
        return
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def in_input_order(chunks: Sequence[np.ndarray], order: Sequence[int]) -> np.ndarray:
    """The rows of ``chunks`` (batches in ``order``, as `length_order` sorted them) put back
    in input order."""
    sorted_rows = np.concatenate(chunks)
    out = np.empty_like(sorted_rows)
    out[np.asarray(order)] = sorted_rows
    return out


def length_order(lengths: Sequence[int]) -> list[int]:
    """Indices from longest to shortest (stable), so a batch holds similar lengths."""
    return sorted(range(len(lengths)), key=lambda i: -lengths[i])


def token_batches(order: Sequence[int], lengths: Sequence[int], batch_size: int,
                  max_tokens: int) -> list[list[int]]:
    """Split ``order`` (longest first) into batches of at most ``batch_size`` rows and
    ``max_tokens`` padded tokens; a text longer than ``max_tokens`` goes alone."""
    batches: list[list[int]] = []
    rows: list[int] = []
    for i in order:
        width = lengths[rows[0]] if rows else lengths[i]  # the first row is the longest
        if rows and (len(rows) >= batch_size or (len(rows) + 1) * width > max_tokens):
            batches.append(rows)
            rows = []
        rows.append(i)
    if rows:
        batches.append(rows)
    return batches


def inference_device() -> str:
    """``cuda`` when a GPU is present, else ``cpu``: where predictors run."""
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def place(model: Any) -> Any:
    """``model`` on the inference device (a no-op on CPU-only machines)."""
    device = inference_device()
    return model if device == "cpu" else model.to(device)


def run_batches(
    texts: Sequence[str],
    tokenizer: Any,
    forward: Callable[[dict[str, Any]], Any],
    batch_size: int = 128,
    max_length: int = 128,
    bf16: bool = False,
    max_tokens: int = MAX_TOKENS,
) -> np.ndarray:
    """Apply ``forward(batch) -> Tensor (B, ...)`` to all texts; rows in input order.

    Texts are tokenized once without padding and sorted longest first; a batch holds up
    to ``batch_size`` texts and ``max_tokens`` padded tokens (at least one text), padded
    only to its own longest member. Calls of fewer than ``SMALL_TOKENS`` tokens run on
    one thread (`one_thread`).
    """
    import torch

    if not len(texts):
        return np.zeros((0,), dtype=np.float32)
    encoded = tokenizer(list(texts), truncation=True, max_length=max_length)
    keys = [k for k in ("input_ids", "attention_mask", "token_type_ids") if k in encoded]
    ids = encoded["input_ids"]
    lengths = [len(row) for row in ids]
    order = length_order(lengths)
    pad_id = tokenizer.pad_token_id or 0
    chunks: list[np.ndarray] = []
    small = sum(lengths) < SMALL_TOKENS
    device = inference_device()  # models are placed there when loaded (`place`)
    with (one_thread(small), torch.inference_mode(),
          torch.autocast(device, dtype=torch.bfloat16, enabled=bf16)):
        for rows in token_batches(order, lengths, batch_size, max_tokens):
            width = len(ids[rows[0]])  # longest in this batch
            batch = {}
            for key in keys:
                fill = pad_id if key == "input_ids" else 0
                # right padding: encoders' absolute positions stay those of an unpadded text
                batch[key] = torch.tensor(
                    [encoded[key][i] + [fill] * (width - len(encoded[key][i])) for i in rows],
                    dtype=torch.long).to(device)  # (B, T)
            chunks.append(forward(batch).float().cpu().numpy())
    return in_input_order(chunks, order)
