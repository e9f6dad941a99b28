"""A FAISS index over normalised vectors, searched by inner product (cosine similarity).

Each vector belongs to an *entry* (``owners[i]`` is the entry number of vector ``i``); an
entry may own several vectors (say a document and its known paraphrases). A search
returns entries, each scored by its best vector, best first.

Up to ``exact_max`` vectors the index is exact (``IndexFlatIP``: one BLAS matrix product
per query batch with a fused top-k). Above it, an HNSW graph answers in sub-linear time;
its defaults (M=32, efSearch=128) keep recall@10 against exact search above 0.95 on
sentence embeddings. Saved with ``faiss.write_index`` next to a small JSON file and the
owners array, and reloaded without re-embedding anything.
"""
from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ConfigError, ModelError

EXACT_MAX = 100_000
SMALL_BATCH = 8  # query batches smaller than this search on one thread
KINDS = ("auto", "flat", "hnsw")
INDEX_FILE, META_FILE, OWNERS_FILE = "index.faiss", "index.json", "owners.npy"


def normalise(vectors: Any) -> np.ndarray:
    """Rows scaled to unit length, as contiguous float32 (what FAISS takes)."""
    array = np.ascontiguousarray(np.asarray(vectors, dtype=np.float32))
    if array.ndim != 2:
        raise ConfigError(f"vectors must be a 2-d array (rows, dim), got shape {array.shape}.")
    norms = np.linalg.norm(array, axis=1, keepdims=True)
    return array / np.maximum(norms, 1e-12)


def choose_kind(count: int, kind: str = "auto", exact_max: int = EXACT_MAX) -> str:
    """'flat' (exact) up to ``exact_max`` vectors, 'hnsw' (approximate) above."""
    if kind not in KINDS:
        raise ConfigError(f"index kind must be one of {', '.join(KINDS)}, got '{kind}'.")
    if kind != "auto":
        return kind
    return "flat" if count <= exact_max else "hnsw"


class VectorIndex:
    """Entries scored by their best vector; build with `VectorIndex.build`."""

    def __init__(self, index: Any, owners: np.ndarray, kind: str, settings: dict[str, Any]):
        self.index, self.owners, self.kind, self.settings = index, owners, kind, settings
        self.entries = int(owners.max()) + 1 if len(owners) else 0
        # most vectors any one entry owns: how far a search must look to see k entries
        self.multiplicity = int(np.bincount(owners).max()) if len(owners) else 1

    def __len__(self) -> int:
        return int(self.index.ntotal)

    @property
    def dim(self) -> int:
        return int(self.index.d)

    @classmethod
    def build(cls, vectors: Any, owners: Sequence[int] | None = None, *, kind: str = "auto",
              exact_max: int = EXACT_MAX, hnsw_m: int = 32, ef_construction: int = 80,
              ef_search: int = 128) -> "VectorIndex":
        """Index ``vectors`` (N, D), normalised here; ``owners`` defaults to one entry each."""
        import faiss

        data = normalise(vectors)  # (N, D)
        count, dim = data.shape
        owner_array = (np.arange(count, dtype=np.int64) if owners is None
                       else np.asarray(owners, dtype=np.int64))
        if len(owner_array) != count:
            raise ConfigError(f"{len(owner_array)} owners for {count} vectors; give one per vector.")
        if count and owner_array.min() < 0:
            raise ConfigError("owners must be entry numbers >= 0.")
        chosen = choose_kind(count, kind, exact_max)
        settings = {"hnsw_m": hnsw_m, "ef_construction": ef_construction, "ef_search": ef_search,
                    "exact_max": exact_max}
        if chosen == "flat":
            index = faiss.IndexFlatIP(dim)
        else:
            index = faiss.IndexHNSWFlat(dim, hnsw_m, faiss.METRIC_INNER_PRODUCT)
            index.hnsw.efConstruction = ef_construction
        index.add(data)
        return cls(index, owner_array, chosen, settings)

    def search(self, queries: Any, k: int = 10) -> tuple[np.ndarray, np.ndarray]:
        """Top ``k`` entries per query: (entries (Q, k) int64, -1 padded; scores (Q, k) float32)."""
        q = normalise(queries)  # (Q, D)
        if q.shape[1] != self.dim:
            raise ConfigError(f"query vectors have {q.shape[1]} dimensions, the index {self.dim}.")
        k = max(1, min(k, self.entries))
        entries = np.full((len(q), k), -1, dtype=np.int64)
        scores = np.full((len(q), k), -np.inf, dtype=np.float32)
        if not len(self) or not len(q):
            return entries, scores
        if self.multiplicity == 1:  # one vector per entry: no collapsing needed
            found, best = self._raw(q, k)
            hit = best >= 0
            entries[hit], scores[hit] = self.owners[best[hit]], found[hit]
            return entries, scores
        fetch = min(len(self), k * min(self.multiplicity, 4))
        todo = np.arange(len(q))
        while len(todo):
            found, best = self._raw(q[todo], fetch)  # (T, fetch) each
            short = []
            for row, (vec_scores, vec_ids) in enumerate(zip(found, best)):
                picked = _best_per_entry(self.owners, vec_ids, vec_scores, k)
                if len(picked[0]) < k and fetch < len(self):
                    short.append(todo[row])
                    continue
                entries[todo[row], :len(picked[0])] = picked[0]
                scores[todo[row], :len(picked[1])] = picked[1]
            todo, fetch = np.asarray(short, dtype=np.int64), min(len(self), fetch * 4)
        return entries, scores

    def _raw(self, q: np.ndarray, fetch: int) -> tuple[np.ndarray, np.ndarray]:
        import faiss

        if self.kind == "hnsw":
            self.index.hnsw.efSearch = max(int(self.settings["ef_search"]), fetch)
        if len(q) >= SMALL_BATCH:
            return self.index.search(q, fetch)  # (scores (Q, fetch), vector ids (Q, fetch))
        # a few queries: one thread; waking an OpenMP team costs more than it saves
        threads = faiss.omp_get_max_threads()
        faiss.omp_set_num_threads(1)
        try:
            return self.index.search(q, fetch)
        finally:
            faiss.omp_set_num_threads(threads)

    # -- persistence ------------------------------------------------------------------
    def save(self, folder: str | Path) -> Path:
        import faiss

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        faiss.write_index(self.index, str(folder / INDEX_FILE))
        np.save(folder / OWNERS_FILE, self.owners, allow_pickle=False)
        meta = {"kind": self.kind, "vectors": len(self), "entries": self.entries,
                "dim": self.dim, "settings": self.settings}
        (folder / META_FILE).write_text(json.dumps(meta, indent=2) + "\n")
        return folder

    @classmethod
    def load(cls, folder: str | Path) -> "VectorIndex":
        import faiss

        folder = Path(folder)
        for name in (INDEX_FILE, META_FILE, OWNERS_FILE):
            if not (folder / name).is_file():
                raise ModelError(f"{folder}: no {name}; this is not a saved vector index. "
                                 "Rebuild it by running the task again.")
        meta = json.loads((folder / META_FILE).read_text())
        index = faiss.read_index(str(folder / INDEX_FILE))
        owners = np.load(folder / OWNERS_FILE, allow_pickle=False)
        if index.ntotal != len(owners):
            raise ModelError(f"{folder}: the index holds {index.ntotal} vectors but "
                             f"{OWNERS_FILE} {len(owners)}; the files are from different builds.")
        return cls(index, owners.astype(np.int64), meta["kind"], dict(meta["settings"]))


def _best_per_entry(owners: np.ndarray, vec_ids: np.ndarray, vec_scores: np.ndarray, k: int):
    """Collapse vector hits (best first) to at most ``k`` entries, each with its best score."""
    seen: dict[int, float] = {}
    for vec, score in zip(vec_ids, vec_scores):
        if vec < 0:
            break  # FAISS pads missing results with -1
        entry = int(owners[vec])
        if entry not in seen:
            seen[entry] = float(score)
            if len(seen) == k:
                break
    return list(seen), list(seen.values())


def exact_top_k(vectors: np.ndarray, queries: np.ndarray, k: int) -> np.ndarray:
    """Reference top-k vector ids by brute force (numpy), for tests and benchmarks."""
    scores = normalise(queries) @ normalise(vectors).T  # (Q, N)
    top = np.argpartition(-scores, min(k, scores.shape[1] - 1), axis=1)[:, :k]
    order = np.take_along_axis(scores, top, 1).argsort(1)[:, ::-1]
    return np.take_along_axis(top, order, 1)
