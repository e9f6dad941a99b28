"""The all-entries objective: every training question is scored against every FAQ entry.

With in-batch negatives (MultipleNegativesRankingLoss) a question sees only the entries
that happen to share its batch: with 77 entries and batches of 32, most wrong entries are
never in view. Here each step re-encodes the FAQ's entry texts (with gradients) and
takes a softmax over all of them: a classifier whose weight rows are the entries' own
embeddings, so what it learns still serves nearest-neighbour search over the FAQ (and
over new entries, which need no retraining of a head). Large FAQs are sampled: the
batch's own entries plus random others, up to ``max_entries`` per step.
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tunehub.plugin import ModelError

LOSSES = ("mnrl", "all-entries")
MAX_ENTRIES = 512  # entries encoded per step; above, a sample that keeps the batch's own


def all_entries_loss(model: Any, entries: Sequence[str], scale: float = 20.0,
                     max_entries: int = MAX_ENTRIES, seed: int = 0):
    """A sentence-transformers loss module: cross-entropy of ``scale`` x cosine similarity
    between each question (column ``anchor``) and every entry text, target its entry
    number (column ``label``)."""
    import torch
    import torch.nn.functional as F
    from torch import nn

    texts = list(entries)
    if len(texts) < 2:
        raise ModelError("the all-entries objective needs at least two FAQ entries.")

    class AllEntriesLoss(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model, self.scale = model, float(scale)
            self.generator = torch.Generator().manual_seed(seed)

        def chosen(self, labels: Any) -> tuple[list[int], Any]:
            """(entry numbers encoded this step, each label's position among them)."""
            if len(texts) <= max_entries:
                return list(range(len(texts))), labels
            own = torch.unique(labels.cpu())
            others = torch.ones(len(texts), dtype=torch.bool)
            others[own] = False
            pool = others.nonzero().flatten()
            extra = pool[torch.randperm(len(pool), generator=self.generator)[:max_entries - len(own)]]
            picked = torch.cat([own, extra])
            where = torch.full((len(texts),), -1, dtype=torch.long)
            where[picked] = torch.arange(len(picked))
            return picked.tolist(), where[labels.cpu()].to(labels.device)

        def forward(self, sentence_features: Sequence[dict[str, Any]], labels: Any) -> Any:
            queries = self.model(sentence_features[0])["sentence_embedding"]  # (B, D)
            picked, targets = self.chosen(labels.long())
            features = self.model.preprocess([texts[i] for i in picked])
            features = {k: v.to(queries.device) if hasattr(v, "to") else v for k, v in features.items()}
            keys = self.model(features)["sentence_embedding"]  # (E, D)
            logits = self.scale * F.normalize(queries, dim=-1) @ F.normalize(keys, dim=-1).T
            return F.cross_entropy(logits.float(), targets)

    return AllEntriesLoss()


def train_all_entries(model: Any, anchors: Sequence[str], labels: Sequence[int],
                      entries: Sequence[str], settings: Any, work_dir: Path, resume: bool = False,
                      callbacks: Sequence[Any] = (), scale: float = 20.0):
    """Fine-tune ``model`` in place: question ``anchors[i]`` belongs to entry
    ``labels[i]`` (a position in ``entries``). Returns the engine's FitResult."""
    from datasets import Dataset
    from sentence_transformers import SentenceTransformerTrainer, SentenceTransformerTrainingArguments

    from tunehub.plugin import run_trainer

    if len(anchors) != len(labels) or not len(anchors):
        raise ModelError(f"the all-entries objective needs one entry per question (>0), got "
                         f"{len(anchors)} questions and {len(labels)} entries.")
    dataset = Dataset.from_dict({"anchor": list(anchors), "label": [int(x) for x in labels]})
    loss = all_entries_loss(model, entries, scale, seed=settings.seed)
    model.model_card_data.widget = [{"text": ""}]  # no model card: skip its example pass

    def make_trainer(args):
        return SentenceTransformerTrainer(model=model, args=args, train_dataset=dataset, loss=loss)

    trainer, result = run_trainer(make_trainer, settings, work_dir, None, True, resume, callbacks,
                                  args_class=SentenceTransformerTrainingArguments)
    return trainer.model, result
