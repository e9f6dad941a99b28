"""ONNX export of a sentence-transformers folder, checked against torch before it counts.

With ``--onnx`` (`export_onnx`), an exported folder also gets ``model.onnx``: the whole
sentence-transformers pipeline (encoder, pooling, and a classifier's dense layer or the
normalisation) as one graph taking the tokenizer's ``input_ids``, ``attention_mask`` (and
``token_type_ids`` where the tokenizer makes them), batch and sequence length dynamic,
and returning ``logits`` (classification) or ``sentence_embedding`` (bi-encoders)::

    import onnxruntime, transformers
    tokenizer = transformers.AutoTokenizer.from_pretrained(folder)
    session = onnxruntime.InferenceSession(f"{folder}/model.onnx")
    batch = tokenizer(texts, padding=True, truncation=True, return_tensors="np")
    (outputs,) = session.run(None, {i.name: batch[i.name] for i in session.get_inputs()})

Before the export counts as done, onnxruntime runs the graph on texts of several lengths
and its outputs must match the torch model's (largest absolute difference recorded in
``tunehub/export.json``).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from ..errors import ConfigError, ModelError

ONNX_FILE = "model.onnx"
ONNX_OPSET = 18
ONNX_TOLERANCE = 1e-4  # largest absolute difference allowed between onnxruntime and torch
ONNX_CHECK_TEXTS = ("ok", "Where is my card?",
                    "The quarterly report showed revenue up eight percent, and margins held "
                    "steady despite higher costs for shipping and raw materials.")


def export_onnx(folder: Path, output_name: str) -> dict[str, Any]:
    """Write ``folder/model.onnx`` for the sentence-transformers model in ``folder`` and
    check it against torch with onnxruntime; returns what ``export.json`` records."""
    try:
        import onnxruntime
        import onnxscript  # noqa: F401 (the torch.onnx exporter needs it)
    except ImportError as exc:
        raise ConfigError(f"--onnx needs the optional ONNX packages ({exc.name} is missing): "
                          "pip install onnx onnxscript onnxruntime.") from None
    import numpy as np
    import torch

    from ..models.biencoder import load_encoder

    model = load_encoder(folder).to("cpu").eval()
    tokenizer = model.tokenizer
    sample = tokenizer(["a short text", "a longer text, so that the batch needs padding"],
                       padding=True, return_tensors="pt")
    names = [key for key in ("input_ids", "attention_mask", "token_type_ids") if key in sample]

    class Pipeline(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                    token_type_ids: torch.Tensor | None = None) -> torch.Tensor:
            features = {"input_ids": input_ids, "attention_mask": attention_mask}
            if token_type_ids is not None:
                features["token_type_ids"] = token_type_ids
            return self.model(features)["sentence_embedding"]

    pipeline = Pipeline().eval()

    config = getattr(getattr(model[0], "auto_model", None), "config", None)
    positions = getattr(config, "max_position_embeddings", None) or model.max_seq_length
    path = Path(folder) / ONNX_FILE
    write_graph(pipeline, tuple(sample[k] for k in names), path, names, output_name, int(positions))
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    check = tokenizer(list(ONNX_CHECK_TEXTS), padding=True, truncation=True,
                      max_length=model.max_seq_length, return_tensors="pt")
    (ours,) = session.run(None, {k: check[k].numpy() for k in names})
    with torch.inference_mode():
        reference = pipeline(*(check[k] for k in names)).numpy()
    difference = float(np.abs(ours - reference).max())
    if not difference <= ONNX_TOLERANCE:
        raise ModelError(f"the ONNX graph disagrees with the torch model by {difference:.2e} "
                         f"(allowed {ONNX_TOLERANCE:g}); the export was not written. Export "
                         "without --onnx, or report this with your torch and onnxruntime versions.")
    return {"onnx": ONNX_FILE, "onnx_inputs": names, "onnx_output": output_name,
            "onnx_opset": ONNX_OPSET, "onnx_max_abs_difference": difference}


def write_graph(module: Any, inputs: tuple, path: Path, names: list[str], output_name: str,
                max_length: int) -> None:
    """``module(*inputs)`` as an ONNX graph at ``path`` (the dynamo exporter, one file),
    inputs ``names`` with batch and sequence length dynamic (length up to ``max_length``)."""
    import logging
    import warnings

    import torch

    batch = torch.export.Dim("batch")
    length = torch.export.Dim("sequence", max=int(max_length))
    exporter_log = logging.getLogger("torch.onnx")  # notes about absent optional packages
    level = exporter_log.level
    exporter_log.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings(), torch.inference_mode(False), torch.no_grad():
            warnings.simplefilter("ignore")
            torch.onnx.export(module, inputs, str(path), input_names=names,
                              output_names=[output_name],
                              dynamic_shapes={k: {0: batch, 1: length} for k in names},
                              opset_version=ONNX_OPSET, dynamo=True, external_data=False,
                              verbose=False, report=False)
    finally:
        exporter_log.setLevel(level)
