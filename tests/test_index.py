"""The FAISS index module: exact vs approximate by size, per-entry aggregation, save/load."""
from __future__ import annotations

import numpy as np
import pytest

from tunehub.core.errors import ConfigError, ModelError
from tunehub.core.models.index import VectorIndex, choose_kind, exact_top_k, normalise


def vectors(n: int, dim: int = 16, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((n, dim)).astype(np.float32)


def test_exact_up_to_the_threshold_and_approximate_above():
    assert choose_kind(100, exact_max=100) == "flat"
    assert choose_kind(101, exact_max=100) == "hnsw"
    assert choose_kind(10**9, kind="flat") == "flat"
    assert VectorIndex.build(vectors(50), exact_max=50).kind == "flat"
    assert VectorIndex.build(vectors(51), exact_max=50).kind == "hnsw"
    with pytest.raises(ConfigError, match="flat, hnsw"):
        choose_kind(10, kind="ivf-pq")


def test_exact_search_matches_brute_force_with_cosine_scores():
    data, queries = vectors(300), vectors(20, seed=1)
    index = VectorIndex.build(data * 5.0)  # scale must not matter: vectors are normalised
    entries, scores = index.search(queries, 10)
    assert entries.shape == (20, 10)
    np.testing.assert_array_equal(entries, exact_top_k(data, queries, 10))
    expected = normalise(queries) @ normalise(data).T
    np.testing.assert_allclose(scores[:, 0], expected.max(1), rtol=1e-5)
    assert (np.diff(scores, axis=1) <= 1e-6).all()  # best first


def test_approximate_search_recalls_the_exact_neighbours():
    data, queries = vectors(2000, 32), vectors(50, 32, seed=2)
    index = VectorIndex.build(data, kind="hnsw")
    found, _ = index.search(queries, 10)
    truth = exact_top_k(data, queries, 10)
    recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(found, truth)])
    assert recall >= 0.95


def test_several_vectors_per_entry_give_the_best_score_per_entry():
    # entry 0 owns vectors near e1 and e2; entry 1 owns e3; entry 2 owns -e1
    data = np.array([[1, 0, 0], [0, 1, 0], [0, 0, 1], [-1, 0, 0]], dtype=np.float32)
    index = VectorIndex.build(data, owners=[0, 0, 1, 2])
    entries, scores = index.search(np.array([[0.1, 1.0, 0.2]], dtype=np.float32), 3)
    assert entries.tolist() == [[0, 1, 2]]  # each entry once, best first
    np.testing.assert_allclose(scores[0, 0], 1.0 / np.linalg.norm([0.1, 1.0, 0.2]), rtol=1e-5)
    # many paraphrases of one entry must not crowd the others out of the top k
    crowd = np.vstack([vectors(200, 3, seed=3) * 0.01 + [1, 0, 0], [[0, 1, 0]], [[0, 0, 1]]])
    owners = [0] * 200 + [1, 2]
    entries, _ = VectorIndex.build(crowd, owners).search(np.array([[1, 0, 0]], np.float32), 3)
    assert sorted(entries[0].tolist()) == [0, 1, 2]


def test_save_and_load_round_trip_without_re_embedding(tmp_path):
    data, queries = vectors(120), vectors(5, seed=4)
    for kind in ("flat", "hnsw"):
        index = VectorIndex.build(data, owners=np.arange(120) // 2, kind=kind)
        before = index.search(queries, 5)
        index.save(tmp_path / kind)
        loaded = VectorIndex.load(tmp_path / kind)
        assert loaded.kind == kind and len(loaded) == 120 and loaded.entries == 60
        after = loaded.search(queries, 5)
        np.testing.assert_array_equal(before[0], after[0])
        np.testing.assert_allclose(before[1], after[1], rtol=1e-6)


def test_load_refuses_an_incomplete_folder(tmp_path):
    VectorIndex.build(vectors(10)).save(tmp_path / "ix")
    (tmp_path / "ix" / "owners.npy").unlink()
    with pytest.raises(ModelError, match="owners.npy"):
        VectorIndex.load(tmp_path / "ix")


def test_k_larger_than_the_entries_and_dimension_mismatch():
    index = VectorIndex.build(vectors(3))
    entries, scores = index.search(vectors(2, seed=5), 10)
    assert entries.shape == (2, 3) and (entries >= 0).all()
    with pytest.raises(ConfigError, match="dimensions"):
        index.search(vectors(1, dim=8), 1)
