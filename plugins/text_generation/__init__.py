"""Generated answers: the ``text-generation`` head, its metrics and the ``support-answers``
task (support questions answered in the FAQ's words, on a bundled sample).

A default plugin: it registers through the same hooks as any third-party plugin and
imports only `tunehub.plugin`.
"""
from __future__ import annotations

from pathlib import Path

from tunehub.plugin import PLUGIN_API_VERSION, hookimpl

TUNEHUB_PLUGIN_API = PLUGIN_API_VERSION
DATA = Path(__file__).parent / "data"


@hookimpl
def register_heads(register) -> None:
    from .head import TextGenerationHead

    register(TextGenerationHead())


@hookimpl
def register_metrics(register) -> None:
    from . import metrics

    register("token_f1", metrics.token_f1,
             description="mean F1 of the words a generated text shares with its reference")
    register("rouge_l", metrics.rouge_l,
             description="mean ROUGE-L F-measure (longest common word subsequence)")
    register("exact_match", metrics.exact_match,
             description="share of generated texts equal to the reference (words, any case)")


@hookimpl
def register_tasks(register) -> None:
    register(Path(__file__).parent / "support-answers.toml")


@hookimpl
def register_datasets(register) -> None:
    register("support-answers-sample", train=DATA / "support.csv",
             description="425 banking support questions with the answer to give (written "
                         "for tunehub; the questions of the customer-service sample)")
