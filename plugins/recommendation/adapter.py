"""Training the item-tower adapter (imports torch: load this module only to train or apply it).

The adapter is ``v = normalize(e + W2 gelu(W1 e + b1) + b2)`` over frozen encoder
embeddings ``e`` (W2 starts at zero: step 0 is the untuned encoder). One training sample
is a position in a user's history: the user vector pooled from the items before it (as
`towers.user_vectors` pools them) must score the next item above every other item of the
catalogue (softmax cross-entropy at temperature ``temperature``; items already in the
prefix are masked). Above ``FULL_SOFTMAX_MAX`` items each step scores a uniform sample of
``SAMPLED_NEGATIVES`` items plus the batch's targets. After each epoch the validation
score (``validate``, e.g. `towers.relative_gain`) is measured; the best epoch is kept and
training stops after ``patience`` epochs without gain.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import torch
import torch.nn.functional as F

from .dataset import Split
from .towers import Pooling

FULL_SOFTMAX_MAX = 20_000
SAMPLED_NEGATIVES = 8_192


@dataclass(frozen=True)
class AdapterSettings:
    kind: str = "tanh"  # tanh | linear | mlp (see `forward`)
    hidden: int = 256  # mlp only
    rank: int = 0  # tanh/linear: W = A B of this rank while training (0: a full matrix)
    epochs: int = 8
    batch_size: int = 512
    learning_rate: float = 1e-3
    temperature: float = 0.05
    popularity_correction: float = 0.0  # logits - this * log(1 + item count) while training
    patience: int = 2
    seed: int = 13


def init_params(dim: int, kind: str, hidden: int, seed: int, rank: int = 0
                ) -> dict[str, torch.Tensor]:
    """Adapter parameters that start at the identity map (see `forward`)."""
    generator = torch.Generator().manual_seed(seed)
    if kind in ("linear", "tanh") and rank > 0:  # W = A B, A = 0 at the start
        return {"low.a": torch.zeros(dim, rank),
                "low.b": torch.randn(rank, dim, generator=generator) / math.sqrt(dim),
                "linear.bias": torch.zeros(dim)}
    if kind in ("linear", "tanh"):
        return {"linear.weight": torch.zeros(dim, dim), "linear.bias": torch.zeros(dim)}
    return {"up.weight": torch.randn(hidden, dim, generator=generator) / math.sqrt(dim),
            "up.bias": torch.zeros(hidden), "down.weight": torch.zeros(dim, hidden),
            "down.bias": torch.zeros(dim)}


def merged(params: dict[str, Any]) -> dict[str, Any]:
    """Low-rank factors multiplied out into ``linear.weight`` (what is saved and applied)."""
    if "low.a" not in params:
        return params
    return {"linear.weight": params["low.a"] @ params["low.b"], "linear.bias": params["linear.bias"]}


def forward(params: dict[str, torch.Tensor], base: torch.Tensor, kind: str) -> torch.Tensor:
    """(N, D) adapted unit vectors from (N, D) encoder embeddings.

    ``linear``: ``e + W e + b``; ``tanh``: ``e + tanh(W e + b)`` (both a residual
    sentence-transformers ``Dense`` layer); ``mlp``: ``e + W2 gelu(W1 e + b1) + b2``."""
    if kind == "mlp":
        hidden = F.gelu(base @ params["up.weight"].T + params["up.bias"])  # (N, H)
        out = base + hidden @ params["down.weight"].T + params["down.bias"]
    else:
        if "low.a" in params:
            out = (base @ params["low.b"].T) @ params["low.a"].T + params["linear.bias"]
        else:
            out = base @ params["linear.weight"].T + params["linear.bias"]
        out = base + (torch.tanh(out) if kind == "tanh" else out)
    return F.normalize(out, dim=-1)


def apply(params: dict[str, np.ndarray], base: np.ndarray, kind: str) -> np.ndarray:
    """The adapter on numpy arrays (no gradients), float32 unit vectors."""
    if not params:
        return base
    with torch.no_grad():
        tensors = {k: torch.as_tensor(np.asarray(v, dtype=np.float32)) for k, v in params.items()}
        return forward(tensors, torch.as_tensor(base), kind).numpy()


def attach(model: Any, params: dict[str, np.ndarray], kind: str) -> Any:
    """The sentence encoder with the adapter appended as a residual ``Dense`` layer and a
    ``Normalize``, so the saved folder's sentence embedding is the trained item vector."""
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Dense, Normalize

    if kind not in ("linear", "tanh"):
        raise ValueError(f"adapter kind '{kind}' has no sentence-transformers layer")
    weight = torch.as_tensor(params["linear.weight"])
    activation = torch.nn.Tanh() if kind == "tanh" else torch.nn.Identity()
    dense = Dense(weight.shape[1], weight.shape[0], activation_function=activation,
                  init_weight=weight, init_bias=torch.as_tensor(params["linear.bias"]),
                  use_residual=True)
    modules = list(model)
    if not isinstance(modules[-1], Normalize):  # the adapter was trained on unit vectors
        modules.append(Normalize())
    return SentenceTransformer(modules=[*modules, dense, Normalize()], device=str(model.device))


def samples(split: Split, history_len: int) -> tuple[np.ndarray, np.ndarray]:
    """Every (prefix, next item) of every history: (N, history_len) indices padded with -1
    (newest last), and (N,) targets."""
    prefixes, targets = [], []
    for user in sorted(split.history):
        items = split.history[user]
        for t in range(1, len(items)):
            prefix = items[max(0, t - history_len):t]
            prefixes.append([-1] * (history_len - len(prefix)) + prefix)
            targets.append(items[t])
    return (np.array(prefixes, dtype=np.int64).reshape(-1, history_len),
            np.array(targets, dtype=np.int64))


def _pool(vectors: torch.Tensor, prefix: torch.Tensor, decay: float) -> torch.Tensor:
    """(B, D) unit user vectors from (B, H) padded prefixes, as `towers.user_vectors`."""
    h = prefix.shape[1]
    weights = decay ** torch.arange(h - 1, -1, -1, dtype=torch.float32)  # newest last
    weights = weights[None, :] * (prefix >= 0)  # (B, H)
    pooled = (weights[:, :, None] * vectors[prefix.clamp(min=0)]).sum(1)  # (B, D)
    return F.normalize(pooled, dim=-1)


def _step(params, base, prefix, target, settings, pooling, generator,
          log_counts: torch.Tensor | None = None) -> torch.Tensor:
    """The mean cross-entropy of one batch of (prefix, target) samples.

    ``log_counts`` (I,) = log(1 + training count) of each item; subtracted from the logits
    (the logQ correction), the vectors learn affinity beyond popularity, so items without
    interactions are not outranked merely for lacking the popularity the rest absorbed."""
    n = base.shape[0]
    if n > FULL_SOFTMAX_MAX:  # a uniform sample of negatives plus the batch's targets
        drawn = torch.randint(n, (SAMPLED_NEGATIVES,), generator=generator)
        candidates = torch.unique(torch.cat([target, drawn]))
        needed = torch.unique(torch.cat([candidates, prefix[prefix >= 0]]))
        vectors = torch.zeros_like(base)
        vectors[needed] = forward(params, base[needed], settings.kind)  # rows not needed stay 0
    else:
        candidates, vectors = torch.arange(n), forward(params, base, settings.kind)  # (I, D)
    position = torch.full((n,), -1, dtype=torch.long)
    position[candidates] = torch.arange(len(candidates))
    users = _pool(vectors, prefix, pooling.decay)  # (B, D)
    logits = users @ vectors[candidates].T / settings.temperature  # (B, C)
    if log_counts is not None:
        logits = logits - settings.popularity_correction * log_counts[candidates]
    own = position[prefix.clamp(min=0)]  # (B, H) the prefix's items among the candidates
    valid = (prefix >= 0) & (own >= 0)
    hits = torch.zeros_like(logits, dtype=torch.int32).scatter_add_(
        1, torch.where(valid, own, 0), valid.to(torch.int32))
    logits = logits.masked_fill(hits > 0, float("-inf"))  # already consumed: not a negative
    return F.cross_entropy(logits, position[target])


def train_adapter(base: np.ndarray, split: Split, pooling: Pooling, settings: AdapterSettings,
                  validate: Callable[[dict[str, np.ndarray]], float],
                  log: Callable[[dict[str, Any]], None] = lambda row: None
                  ) -> tuple[dict[str, np.ndarray], list[dict[str, Any]]]:
    """Train the adapter; returns the best epoch's parameters and one log row per epoch
    (its mean loss at the optimizer ``step`` it ended on: the report's loss curve)."""
    torch.manual_seed(settings.seed)
    generator = torch.Generator().manual_seed(settings.seed)
    prefixes, targets = (torch.as_tensor(a) for a in samples(split, pooling.history_len))
    base_t = torch.as_tensor(base)
    counts = np.zeros(len(base), dtype=np.float32)
    np.add.at(counts, targets.numpy(), 1.0)
    log_counts = torch.as_tensor(np.log1p(counts)) if settings.popularity_correction else None
    params = init_params(base.shape[1], settings.kind, settings.hidden, settings.seed,
                         settings.rank)
    for tensor in params.values():
        tensor.requires_grad_(True)
    optimizer = torch.optim.Adam(params.values(), lr=settings.learning_rate)
    numpy = lambda: merged({k: v.detach().numpy().copy() for k, v in params.items()})  # noqa: E731
    best_value, best, history, waited, steps = validate({}), {}, [], 0, 0
    history.append({"epoch": 0, "validation": round(best_value, 4)})
    log(history[-1])
    for epoch in range(1, settings.epochs + 1):
        started, total = time.perf_counter(), 0.0
        order = torch.randperm(len(targets), generator=generator)
        for start in range(0, len(order), settings.batch_size):
            batch = order[start:start + settings.batch_size]
            loss = _step(params, base_t, prefixes[batch], targets[batch], settings, pooling,
                         generator, log_counts)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            steps += 1
            total += float(loss.detach()) * len(batch)
        value = validate(numpy())
        history.append({"epoch": epoch, "step": steps,
                        "loss": round(total / max(len(targets), 1), 4),
                        "validation": round(value, 4),
                        "seconds": round(time.perf_counter() - started, 1)})
        log(history[-1])
        if value > best_value:
            best_value, best, waited = value, numpy(), 0
        else:
            waited += 1
            if waited >= settings.patience:
                break
    return best, history
