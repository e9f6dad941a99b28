"""An ONNX copy of a text model for fast predictions without torch: ``export`` writes it
(checked against torch and the tokenizer), ``use_onnx`` says whether a loaded model should
run on it, ``Session`` runs it with onnxruntime and the ``tokenizers`` library.

See docs/reference.md (tunehub.plugin.onnx_backend).
"""
from __future__ import annotations

from ..core.models.onnx_backend import ONNX_DIR, Session, current, export, use_onnx

__all__ = ["ONNX_DIR", "export", "use_onnx", "current", "Session"]
