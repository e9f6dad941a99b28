"""ONNX Runtime as a second backend for text models: fast one-off predictions.

A one-off ``app predict`` spends most of its time importing torch and transformers (about
4 s of 4.7 on two cores), not predicting. A head that keeps an ONNX copy of its model next
to the weights (`export`) is served from it with onnxruntime and the ``tokenizers``
library alone (`Session`), which import in a fraction of a second; the torch weights stay
the artifact's source of truth (retraining, export, ``--quantize``, forced bf16).

The copy lives in ``<model_dir>/onnx/``: ``model.onnx`` (one graph from the tokenizer's
``input_ids``, ``attention_mask`` and, where the tokenizer makes them, ``token_type_ids`` to
the head's output, batch and length dynamic) and ``onnx.json`` (inputs, output, pad id,
opset, and the largest difference from torch measured when it was written). It is written
only after onnxruntime reproduces the torch model within ``ONNX_TOLERANCE`` on texts of
several lengths, and after ``tokenizers`` reproduces the transformers tokenizer's ids on
them; otherwise nothing is written and the reason is returned. It computes in fp32.

When a loaded model uses it (`use_onnx`): the copy exists and was made from the weights
the folder holds now (``onnx.json`` records each weight file's size and modification time,
so a copy left behind by edited weights is ignored), onnxruntime imports, and neither
``TUNEHUB_BACKEND=torch`` nor a forced bf16 (``train.precision`` or ``TUNEHUB_PRECISION``)
asks for the torch model.
"""
from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..artifacts.export import ONNX_CHECK_TEXTS, ONNX_OPSET, ONNX_TOLERANCE, write_graph
from ..errors import ConfigError

ONNX_DIR = "onnx"
BACKENDS = ("auto", "onnx", "torch")
INPUTS = ("input_ids", "attention_mask", "token_type_ids")


def missing_packages() -> str | None:
    """The first ONNX package this environment lacks (export needs all three), or None."""
    import importlib.util

    for name in ("onnx", "onnxscript", "onnxruntime"):
        if importlib.util.find_spec(name) is None:
            return name
    return None


def backend_wanted() -> str:
    """``TUNEHUB_BACKEND``: auto (the ONNX copy where there is one), onnx or torch."""
    wanted = os.environ.get("TUNEHUB_BACKEND", "auto").strip().lower() or "auto"
    if wanted not in BACKENDS:
        raise ConfigError(f"TUNEHUB_BACKEND must be one of {', '.join(BACKENDS)}, got '{wanted}'; "
                          "unset it for auto.")
    return wanted


def use_onnx(model_dir: Path, config: Mapping[str, Any]) -> bool:
    """Whether a model loaded from ``model_dir`` runs on its ONNX copy (module docstring)."""
    wanted = backend_wanted()
    has_copy = current(Path(model_dir))
    if wanted == "onnx" and not has_copy:
        raise ConfigError(f"TUNEHUB_BACKEND=onnx, but {model_dir} has no ONNX copy of its current "
                          "weights (one is written when the model is trained, per head.onnx); "
                          "unset TUNEHUB_BACKEND.")
    if wanted == "torch" or not has_copy:
        return False
    from ..running.engine import forced_precision

    precision = str(config.get("train", {}).get("precision", "auto")).lower()
    if wanted == "auto" and (precision == "bf16" or (precision == "auto"
                                                     and forced_precision() == "bf16")):
        return False
    import importlib.util

    if importlib.util.find_spec("onnxruntime") is None:
        if wanted == "onnx":
            raise ConfigError("TUNEHUB_BACKEND=onnx needs onnxruntime: pip install onnxruntime.")
        return False
    return True


def weights_stamp(model_dir: Path) -> dict[str, list[int]]:
    """Size and modification time (ns) of each weight file and head.json in ``model_dir``."""
    files = sorted(Path(model_dir).glob("*.safetensors")) + [Path(model_dir) / "head.json"]
    return {f.name: [f.stat().st_size, f.stat().st_mtime_ns] for f in files if f.is_file()}


def current(model_dir: Path) -> bool:
    """Whether ``model_dir`` has an ONNX copy made from the weights it holds now."""
    meta = Path(model_dir) / ONNX_DIR / "onnx.json"
    if not meta.is_file():
        return False
    try:
        return json.loads(meta.read_text()).get("weights") == weights_stamp(model_dir)
    except (OSError, ValueError):
        return False


def export(forward: Callable[..., Any], tokenizer: Any, model_dir: Path, max_length: int,
           output: str, texts: Sequence[str] = ()) -> dict[str, Any]:
    """Write ``model_dir/onnx/`` for ``forward(input_ids, attention_mask[, token_type_ids])``
    (a torch module returning one float tensor, e.g. probabilities (B, C)), checked against
    torch and against the transformers ``tokenizer`` on ``ONNX_CHECK_TEXTS`` plus ``texts``.

    Returns ``{"written": True, ...figures}`` or ``{"written": False, "reason": ...}``; a
    failed export leaves no ``onnx/`` folder."""
    missing = missing_packages()
    if missing:
        return {"written": False, "reason": f"{missing} is not installed (pip install onnx onnxscript onnxruntime)"}
    folder = Path(model_dir) / ONNX_DIR
    try:
        return _export(forward, tokenizer, Path(model_dir), folder, max_length, output, texts)
    except Exception as exc:  # the torch model is the artifact; the copy is an optimisation
        shutil.rmtree(folder, ignore_errors=True)
        return {"written": False, "reason": f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}"}


def _export(forward, tokenizer, model_dir: Path, folder: Path, max_length: int, output: str,
            texts: Sequence[str]) -> dict[str, Any]:
    import onnxruntime
    import torch

    check = list(ONNX_CHECK_TEXTS) + [str(t) for t in texts]
    reference = tokenizer(check, truncation=True, max_length=max_length)
    names = [k for k in INPUTS if k in reference]
    fast = _fast_tokenizer(model_dir, max_length)
    if fast is None:
        return {"written": False, "reason": "the tokenizer has no tokenizer.json (not a fast tokenizer)"}
    ours = fast.encode_batch(check)
    if [e.ids for e in ours] != [list(r) for r in reference["input_ids"]]:
        return {"written": False,
                "reason": "the tokenizers library splits the check texts differently from "
                          "the transformers tokenizer"}
    pad_id = int(tokenizer.pad_token_id or 0)
    sample = tokenizer(check[:2], padding=True, return_tensors="pt")
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "model.onnx"
    write_graph(forward, tuple(sample[k] for k in names), path, names, output, max_length)
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    padded = tokenizer(check, padding=True, truncation=True, max_length=max_length, return_tensors="pt")
    (got,) = session.run(None, {k: padded[k].numpy() for k in names})
    with torch.no_grad():
        want = forward(*(padded[k] for k in names)).float().numpy()
    difference = float(np.abs(got - want).max())
    if not difference <= ONNX_TOLERANCE:
        shutil.rmtree(folder, ignore_errors=True)
        return {"written": False, "reason": f"onnxruntime differs from torch by {difference:.1e} "
                                            f"(allowed {ONNX_TOLERANCE:g})"}
    info = {"inputs": names, "output": output, "pad_id": pad_id, "max_length": int(max_length),
            "opset": ONNX_OPSET, "max_abs_difference": difference, "check_texts": len(check),
            "weights": weights_stamp(model_dir)}
    (folder / "onnx.json").write_text(json.dumps(info, indent=2) + "\n")
    return {"written": True, **info, "bytes": path.stat().st_size}


def _fast_tokenizer(model_dir: Path, max_length: int):
    """The model's ``tokenizer.json`` in the ``tokenizers`` library: truncated to
    ``max_length``, unpadded (batches pad themselves), special tokens as transformers adds them."""
    from tokenizers import Tokenizer

    path = Path(model_dir) / "tokenizer.json"
    if not path.is_file():
        return None
    tokenizer = Tokenizer.from_file(str(path))
    tokenizer.no_padding()
    tokenizer.enable_truncation(int(max_length))
    return tokenizer


class Session:
    """A model's ONNX copy loaded once: ``run(texts)`` -> the output rows, in input order.

    Texts are tokenized once, sorted by length and batched like the torch path
    (``batch_size`` texts, at most ``max_tokens`` padded tokens a batch, right padding)."""

    def __init__(self, model_dir: Path, threads: int | None = None) -> None:
        import onnxruntime

        folder = Path(model_dir) / ONNX_DIR
        self.info = json.loads((folder / "onnx.json").read_text())
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads or _threads()
        options.inter_op_num_threads = 1
        options.log_severity_level = 3  # errors only
        self.session = onnxruntime.InferenceSession(str(folder / "model.onnx"), options,
                                                    providers=["CPUExecutionProvider"])
        self.tokenizer = _fast_tokenizer(Path(model_dir), self.info["max_length"])
        self.names = list(self.info["inputs"])

    def run(self, texts: Sequence[str], batch_size: int = 128, max_tokens: int = 512) -> np.ndarray:
        from .inference import in_input_order, length_order, token_batches

        if not len(texts):
            return np.zeros((0,), dtype=np.float32)
        encoded = self.tokenizer.encode_batch([str(t) for t in texts])
        lengths = [len(e.ids) for e in encoded]
        order = length_order(lengths)
        fields = {"input_ids": "ids", "attention_mask": "attention_mask", "token_type_ids": "type_ids"}
        chunks = []
        for rows in token_batches(order, lengths, batch_size, max_tokens):
            width = lengths[rows[0]]
            feed = {}
            for name in self.names:
                fill = self.info["pad_id"] if name == "input_ids" else 0
                values = np.full((len(rows), width), fill, dtype=np.int64)
                for i, row in enumerate(rows):
                    got = getattr(encoded[row], fields[name])
                    values[i, :len(got)] = got
                feed[name] = values
            (out,) = self.session.run(None, feed)
            chunks.append(np.asarray(out, dtype=np.float32))
        return in_input_order(chunks, order)


def _threads() -> int:
    """$TUNEHUB_THREADS, else $OMP_NUM_THREADS, else one per CPU this process may use."""
    from .inference import wanted_threads

    wanted = wanted_threads()
    if wanted:
        return wanted
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:
        return os.cpu_count() or 1
