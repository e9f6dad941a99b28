"""Customer-service QA: answer questions from an FAQ, or hand off to a person.

Registers the ``customer-service-qa`` task (stored answers) and ``customer-service-answers``
(answers a decoder writes from the entries found, citing them), their sample FAQ of an
invented bank, the ``bi-encoder`` head (with its ``untuned``, ``retrieved-answer`` and
``untuned-decoder`` baselines), the no-answer and answer metrics, and ``bm25``.
"""
from __future__ import annotations

from pathlib import Path

from tunehub.plugin import PLUGIN_API_VERSION, hookimpl

TUNEHUB_PLUGIN_API = PLUGIN_API_VERSION
DATA = Path(__file__).parent / "data"


@hookimpl
def register_tasks(register) -> None:
    register(Path(__file__).parent / "customer-service-qa.toml")
    register(Path(__file__).parent / "customer-service-qa-zh.toml")
    register(Path(__file__).parent / "customer-service-answers.toml")


@hookimpl
def register_datasets(register) -> None:
    register("customer-service-sample", train=DATA / "queries.csv", faq=DATA / "faq.csv",
             description="Lumen Bank FAQ (55 entries) and 405 customer questions (35 out of "
                         "scope), written for tunehub")
    register("customer-service-zh-sample", train=DATA / "queries_zh.csv", faq=DATA / "faq_zh.csv",
             description="澜星银行 (Lanxing Bank) FAQ in Chinese (30 entries) and 270 customer "
                         "questions (30 out of scope), written for tunehub")


@hookimpl
def register_heads(register) -> None:
    from .head import BiEncoderHead

    register(BiEncoderHead())


@hookimpl
def register_metrics(register) -> None:
    from . import answers, retrieval

    register("no_answer_precision", retrieval.no_answer_precision,
             description="of the queries handed off, the share with no right top answer "
                         "(out of scope or wrong)")
    register("no_answer_recall", retrieval.no_answer_recall,
             description="of the queries with no right top answer, the share handed off")
    register("answer_token_f1", answers.answer_token_f1,
             description="mean token-F1 of the reply against the right entry's answer "
                         "(in-scope queries)")
    register("answer_rouge_l", answers.answer_rouge_l,
             description="mean ROUGE-L of the reply against the right entry's answer "
                         "(in-scope queries)")
    register("cites_right_entry", answers.cites_right_entry,
             description="of the in-scope queries, the share whose reply rests on the right "
                         "entry")


@hookimpl
def register_baselines(register) -> None:
    from .head import bm25

    # `untuned` (the base bi-encoder, same index and calibration) is the head's own baseline
    register("bm25", bm25, description="Okapi BM25 over the same FAQ texts (no model)")
