"""The second stage: a cross-encoder that re-scores the first stage's top-k FAQ entries.

A bi-encoder embeds the question and the entry apart; a cross-encoder reads them together
(``[CLS] question [SEP] entry [SEP]``) and so sees which words of one answer which of the
other, at the cost of one forward pass per (question, candidate) pair. Here it starts from
the task's base encoder (optionally only its first layers, which halves or thirds the
cost) with a fresh one-logit head, and is trained on (question, entry) pairs: the right
entry against the wrong entries the fine-tuned first stage ranks highest for that question
(the mistakes the re-ranker exists to fix). Its score is ``sigmoid(logit)`` in [0, 1], so a
hand-off threshold calibrated on it means the same thing for every question.
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from tunehub.plugin import ConfigError

from .retrieval import Search

RERANK_DIR = "reranker"
LOSSES = ("bce", "mnrl")
K_CHOICES = (10, 20)  # first-stage candidates re-scored, chosen on validation (head.rerank_k=0)
WEIGHTS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)  # cross-encoder's share, likewise


def load_cross_encoder(path: str | Path, max_length: int, layers: int = 0, fresh: bool = False):
    """A sentence-transformers CrossEncoder from a local folder (safetensors, no remote code).

    ``fresh`` builds one on an encoder folder (a bi-encoder's): the encoder (its first
    ``layers`` transformer layers when ``layers`` > 0), mean pooling over the pair's tokens,
    and a new linear layer to one logit. Mean pooling rather than the usual [CLS] head:
    encoders trained with mean pooling (all-MiniLM-L6-v2) leave [CLS] almost constant
    across inputs (std ~5e-4), which a new head cannot learn from in a few hundred steps."""
    import torch
    from sentence_transformers import CrossEncoder

    from tunehub.plugin import quiet_transformers
    from tunehub.plugin import safe_model_folder

    quiet_transformers()
    folder = safe_model_folder(path)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    if not fresh:
        return CrossEncoder(str(folder), max_length=max_length, device=device,
                            trust_remote_code=False, model_kwargs={"use_safetensors": True})
    from sentence_transformers.base.modules import Dense, Transformer
    from sentence_transformers.sentence_transformer.modules import Pooling

    encoder = Transformer(str(folder), transformer_task="feature-extraction", max_seq_length=max_length,
                          config_kwargs={"num_hidden_layers": int(layers)} if layers > 0 else None,
                          model_kwargs={"use_safetensors": True})
    # Mean pooling leaves a BERT-style pooler unused: frozen, every trained parameter takes
    # part in each step, which `train_reranker`'s distributed runs rely on.
    pooler = getattr(encoder.model, "pooler", None)
    if pooler is not None:
        pooler.requires_grad_(False)
    width = encoder.get_embedding_dimension()
    head = Dense(width, 1, activation_function=None, module_output_name="scores")
    return CrossEncoder(modules=[encoder, Pooling(width, "mean"), head], device=device)


def wrong_candidates(entries: np.ndarray, truth: Sequence[int], count: int) -> list[list[int]]:
    """Per question, the first ``count`` entries of its ranking that are not its right one."""
    picked = []
    for row, right in zip(entries, truth):
        picked.append([int(e) for e in row if e >= 0 and e != right][:count])
    return picked


def training_columns(queries: Sequence[str], truth: Sequence[int], wrong: Sequence[Sequence[int]],
                     texts: Sequence[str], loss: str) -> dict[str, list]:
    """The dataset for ``loss``: 'bce' one (query, text, label) row per pair; 'mnrl' one row
    per question (anchor, positive, negative_1..n) with n the fewest negatives any has."""
    if loss not in LOSSES:
        raise ConfigError(f"head.rerank_loss must be one of {', '.join(LOSSES)}, got '{loss}'.")
    if loss == "bce":
        columns: dict[str, list] = {"query": [], "text": [], "label": []}
        for query, right, negatives in zip(queries, truth, wrong):
            for entry, label in [(right, 1.0)] + [(e, 0.0) for e in negatives]:
                columns["query"].append(query)
                columns["text"].append(texts[entry])
                columns["label"].append(label)
        return columns
    count = min((len(n) for n in wrong), default=0)
    columns = {"anchor": list(queries), "positive": [texts[r] for r in truth]}
    for n in range(count):
        columns[f"negative_{n + 1}"] = [texts[negatives[n]] for negatives in wrong]
    return columns


def train_reranker(model: Any, columns: dict[str, list], loss_name: str, settings: Any,
                   work_dir: Path, resume: bool = False, callbacks: Sequence[Any] = ()):
    """Fine-tune the cross-encoder in place through the engine; returns (model, FitResult)."""
    import torch
    from datasets import Dataset
    from sentence_transformers.cross_encoder import CrossEncoderTrainer, CrossEncoderTrainingArguments
    from sentence_transformers.cross_encoder.losses import BinaryCrossEntropyLoss, MultipleNegativesRankingLoss

    from tunehub.plugin import run_trainer

    dataset = Dataset.from_dict(columns)
    if loss_name == "bce":  # weigh the one positive as much as its negatives together
        negatives = max(1.0, (len(columns["label"]) - sum(columns["label"])) / max(1.0, sum(columns["label"])))
        loss = BinaryCrossEntropyLoss(model, pos_weight=torch.tensor(negatives))
    else:
        loss = MultipleNegativesRankingLoss(model, num_negatives=len(columns) - 2)
    model.model_card_data.widget = []  # no model card: skip its example pass

    def make_trainer(args):
        return CrossEncoderTrainer(model=model, args=args, train_dataset=dataset, loss=loss)

    trainer, result = run_trainer(
        make_trainer, settings, work_dir / RERANK_DIR, None, True, resume, callbacks,
        # Under torchrun, DDP's search for unused parameters breaks a cross-encoder's backward
        # ("marked as ready twice"); every trained parameter is used (see load_cross_encoder).
        args_overrides={"train_sampling_strategy": "random", "ddp_find_unused_parameters": False},
        args_class=CrossEncoderTrainingArguments,
    )
    return trainer.model, result


def score_pairs(model: Any, queries: Sequence[str], texts: Sequence[str], batch_size: int = 128,
                max_tokens: int = 1024) -> np.ndarray:
    """(N,) sigmoid scores of (queries[i], texts[i]) pairs, in input order.

    Pairs are tokenized once, sorted by length and batched under a padded-token budget,
    as the bi-encoder's inference path does."""
    import torch

    from tunehub.plugin import length_order, token_batches

    if not len(queries):
        return np.zeros(0, dtype=np.float32)
    model.eval()
    tokenizer = model.tokenizer
    encoded = tokenizer(list(queries), list(texts), truncation=True, max_length=model.max_length)
    keys = [k for k in ("input_ids", "attention_mask", "token_type_ids") if k in encoded]
    lengths = [len(row) for row in encoded["input_ids"]]
    order = length_order(lengths)
    pad_id = tokenizer.pad_token_id or 0
    out = np.empty(len(queries), dtype=np.float32)
    with torch.inference_mode():
        for rows in token_batches(order, lengths, batch_size, max_tokens):
            width = lengths[rows[0]]
            batch = {key: torch.tensor([encoded[key][i] + [pad_id if key == "input_ids" else 0]
                                        * (width - len(encoded[key][i])) for i in rows],
                                       dtype=torch.long, device=model.device) for key in keys}
            logits = model(batch)["scores"][:, 0].float()  # (B,)
            out[rows] = torch.sigmoid(logits).cpu().numpy()
    return out


def fuse(first: np.ndarray, cross: np.ndarray, weight: float) -> np.ndarray:
    """The final score: ``weight`` x cross-encoder score + (1 - weight) x first-stage cosine.

    Both lie in [0, 1] for any sensible match (sigmoid; cosine of unit vectors), so the sum
    does too and one hand-off threshold fits every question; padded slots stay -inf."""
    return weight * cross + (1.0 - weight) * first


class Reranker:
    """Re-scores candidate entries of a first-stage search with a cross-encoder, fused with
    the first stage's own score (``weight`` 1.0: the cross-encoder alone)."""

    def __init__(self, model: Any, texts: Sequence[str], k: int, batch_size: int = 128,
                 weight: float = 1.0):
        self.model, self.texts, self.k, self.batch_size = model, list(texts), int(k), batch_size
        self.weight = float(weight)

    def rescore(self, queries: Sequence[str], entries: np.ndarray) -> np.ndarray:
        """(Q, C) cross-encoder scores of each query's candidate entries; -inf where padded."""
        rows, cols = np.nonzero(entries >= 0)
        scores = np.full(entries.shape, -np.inf, dtype=np.float32)
        pairs_q = [queries[r] for r in rows]
        pairs_t = [self.texts[entries[r, c]] for r, c in zip(rows, cols)]
        scores[rows, cols] = score_pairs(self.model, pairs_q, pairs_t, self.batch_size)
        return scores

    def search(self, first: Search) -> Search:
        """The two-stage search: the first stage's top max(k, n) entries, re-ranked."""

        def two_stage(texts: list[str], n: int) -> tuple[np.ndarray, np.ndarray]:
            entries, scores = first(texts, max(self.k, n))
            return reorder(entries, fuse(scores, self.rescore(texts, entries), self.weight), n)

        return two_stage


def reorder(entries: np.ndarray, scores: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Each row sorted by ``scores`` (best first, stable), cut to ``n`` columns."""
    order = np.argsort(-scores, axis=1, kind="stable")[:, :n]
    return np.take_along_axis(entries, order, 1), np.take_along_axis(scores, order, 1)


def save_cross_encoder(model: Any, folder: Path) -> Path:
    """Write the cross-encoder in sentence-transformers format (safetensors weights)."""
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(folder), safe_serialization=True)
    return folder


def rerank_mode(value: Any) -> str:
    """``head.rerank`` as 'auto', 'true' or 'false' (TOML booleans accepted)."""
    mode = str(value).strip().lower()
    if mode not in ("auto", "true", "false"):
        raise ConfigError(f"head.rerank must be auto, true or false, got '{value}'; auto keeps "
                          "the re-ranker when the validation questions say it helps.")
    return mode


def figures(entries: np.ndarray, truth: Sequence[int]) -> dict[str, float]:
    """recall@1 and MRR@10 of rankings (Q, >=1) against each question's right entry."""
    if not len(truth):
        return {"recall@1": 0.0, "mrr@10": 0.0}
    hits = entries[:, :10] == np.asarray(truth)[:, None]  # (Q, <=10)
    ranks = np.where(hits.any(1), hits.argmax(1) + 1, np.inf)
    return {"recall@1": round(float(hits[:, 0].mean()), 4),
            "mrr@10": round(float((1 / ranks).mean()), 4)}


def choose(entries: np.ndarray, first: np.ndarray, cross: np.ndarray, truth: Sequence[int],
           mode: str, fixed_k: int = 0, fixed_weight: float = -1.0) -> dict[str, Any]:
    """Whether to re-rank, over how many candidates (k) and with what cross-encoder weight,
    from validation questions.

    ``entries`` (Q, K) is the first stage's ranking with its scores ``first``, ``cross``
    (Q, K) the cross-encoder's scores of those candidates. Every (k, weight) is scored from
    this one pass: re-ranking the top k re-sorts a prefix. The best setting has the highest
    recall@1 (then MRR@10), ties going to the smaller k (cheaper) and the smaller weight
    (closer to the first stage). Auto keeps it only when it fixes clearly more top answers
    than it breaks (a one-sided sign test at 95%): on a few dozen validation questions the
    best of 20 settings beats the first stage by a question or two by chance alone."""
    ks = [fixed_k] if fixed_k > 0 else [k for k in K_CHOICES if k <= entries.shape[1]] or [entries.shape[1]]
    weights = [fixed_weight] if fixed_weight >= 0 else list(WEIGHTS)
    validation = {"first stage": figures(entries, truth)}
    best, best_key = {"k": ks[0], "weight": weights[-1]}, None
    for k in ks:
        alone = None
        for weight in weights:
            ranked, _ = reorder(entries[:, :k], fuse(first[:, :k], cross[:, :k], weight), k)
            got = figures(np.concatenate([ranked, entries[:, k:]], axis=1), truth)
            key = (got["recall@1"], got["mrr@10"])
            if best_key is None or key > best_key:
                best, best_key = {"k": k, "weight": weight, **got}, key
            alone = got if weight == 1.0 else alone
        if alone is not None:
            validation[f"cross-encoder alone, top {k}"] = alone
    validation[f"fused (weight {best['weight']}), top {best['k']}"] = {
        "recall@1": best["recall@1"], "mrr@10": best["mrr@10"]}
    ranked, _ = reorder(entries[:, :best["k"]], fuse(first[:, :best["k"]], cross[:, :best["k"]],
                                                    best["weight"]), 1)
    fixed, broken = top1_changes(entries[:, 0], ranked[:, 0], truth)
    helps = clearly_helps(fixed, broken)
    used = mode == "true" or (mode == "auto" and helps)
    return {"used": used, "mode": mode, "k": best["k"], "weight": best["weight"],
            "helps on validation": helps, "validation questions": len(truth),
            "top answers fixed / broken": [fixed, broken],
            "validation": validation}


# head.rerank_min_questions: below it auto skips the cross-encoder. Its new scoring layer,
# trained on 259 questions (bundled sample), scored recall@1 0.29 alone on validation against
# the first stage's 0.67, and on 1,540 (BANKING77, 20 per entry) 0.568 against 0.925; the
# fusion was not kept either time.
MIN_QUESTIONS = 2000


def cannot_pay_off(questions: int, first: np.ndarray, truth: Sequence[int],
                   min_questions: int = MIN_QUESTIONS) -> str | None:
    """Why training a re-ranker cannot change the answer under ``head.rerank=auto``, or None.

    Two reasons: fewer training questions than ``min_questions``; or fewer first-stage top-1
    mistakes on the validation questions than the keep rule (`choose`) needs even if every
    one were fixed and none broken: fixed > 1.64 * sqrt(fixed) needs 3."""
    if questions < min_questions:
        return (f"{questions} training questions, fewer than head.rerank_min_questions="
                f"{min_questions} (re-rankers trained on fewer were not kept on validation)")
    misses = sum(1 for row, right in zip(first, truth) if int(row[0]) != right)
    if not clearly_helps(misses, 0):  # even fixing every miss and breaking none
        return (f"the first stage misses {misses} of {len(truth)} validation questions at "
                "rank 1, too few for a re-ranker to be kept (it needs 3 fixed)")
    return None


def clearly_helps(fixed: int, broken: int) -> bool:
    """The keep rule: re-ranking fixes clearly more top answers than it breaks (a one-sided
    sign test at 95%)."""
    return fixed - broken > 1.64 * (fixed + broken) ** 0.5


def top1_changes(before: np.ndarray, after: np.ndarray, truth: Sequence[int]) -> tuple[int, int]:
    """(questions whose top answer re-ranking made right, those it made wrong)."""
    right = np.asarray(truth)
    was, now = before == right, after == right
    return int((now & ~was).sum()), int((was & ~now).sum())


def has_checkpoint(work_dir: Path) -> bool:
    """Whether an interrupted re-ranker training left a checkpoint to resume."""
    from tunehub.plugin import last_checkpoint

    return last_checkpoint(work_dir / RERANK_DIR / "checkpoints") is not None


def describe(choice: dict[str, Any]) -> str:
    """One line for the report: used or not, k, and both stages' validation figures."""
    shown = "; ".join(f"{name} recall@1 {v['recall@1']:.4f} MRR@10 {v['mrr@10']:.4f}"
                      for name, v in choice["validation"].items())
    if choice["mode"] == "false":
        return f"off (head.rerank=false); on {choice['validation questions']} validation questions: {shown}"
    if choice.get("skipped"):
        return (f"not trained [head.rerank=auto]: {choice['skipped']}; head.rerank=true trains "
                f"it anyway; on {choice['validation questions']} validation questions: {shown}")
    verdict = (f"used, re-scores the top {choice['k']} (final score {choice['weight']} x "
               f"cross-encoder + {1 - choice['weight']:.1f} x first stage)" if choice["used"]
               else "not used (no gain on validation)")
    return (f"cross-encoder ({choice['layers']} layers of the base encoder, {choice['loss']}, "
            f"{choice['training pairs']} training rows, {choice['train seconds']} s): {verdict} "
            f"[head.rerank={choice['mode']}]; on {choice['validation questions']} validation "
            f"questions: {shown}")
