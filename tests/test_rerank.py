"""customer-service-qa's second stage: the cross-encoder re-ranker, its choice and its use."""
from __future__ import annotations

import json

import numpy as np
import pytest

import tunehub
from tunehub.core.errors import ConfigError
from tunehub.plugins.customer_service import rerank
from tunehub.plugins.customer_service.retrieval import calibrate, mix_weights

from conftest import tiny_overrides
from test_customer_service import FAQ, faq_files  # noqa: F401 (fixture)

TEXTS = ["lost card", "reset pin", "monthly fees", "card abroad"]


def lexical_scores(model, queries, texts, batch_size=128):
    """A stand-in cross-encoder: the share of the entry's words found in the question."""
    return np.asarray([len(set(t.split()) & set(q.split())) / len(t.split())
                       for q, t in zip(queries, texts)], dtype=np.float32)


def test_reranker_reorders_the_first_stage_by_its_own_scores(monkeypatch):
    monkeypatch.setattr(rerank, "score_pairs", lexical_scores)

    def first(texts, k):  # a first stage that ranks "monthly fees" above the right entry
        return np.tile([2, 1, 0, 3][:k], (len(texts), 1)), np.tile([0.9, 0.8, 0.7, 0.6][:k], (len(texts), 1))

    reranker = rerank.Reranker(None, TEXTS, k=3)
    entries, scores = reranker.search(first)(["how do I reset my pin", "i lost my card"], 2)
    assert entries.tolist() == [[1, 2], [0, 2]]  # the right entry moved up from 2nd / 3rd
    assert scores[:, 0].tolist() == [1.0, 1.0] and (scores[:, 0] >= scores[:, 1]).all()
    half = rerank.Reranker(None, TEXTS, k=3, weight=0.5).search(first)
    entries, scores = half(["how do I reset my pin"], 3)  # 0.5 x words + 0.5 x first stage
    assert entries.tolist() == [[1, 2, 0]] and scores[0].tolist() == pytest.approx([0.9, 0.45, 0.35])
    entries, _ = rerank.Reranker(None, TEXTS, k=1).search(first)(["i lost my card"], 1)
    assert entries.tolist() == [[2]]  # only the top 1 is re-scored: nothing to reorder


def test_padded_candidates_stay_last():
    entries = np.array([[3, 1, -1]])
    ranked, scores = rerank.reorder(entries, np.array([[0.1, 0.7, -np.inf]]), 3)
    assert ranked.tolist() == [[1, 3, -1]] and scores[0, 2] == -np.inf


def test_choice_keeps_the_reranker_only_when_validation_says_it_helps():
    truth = [0, 1, 2, 3] * 4
    entries = np.tile([[1, 0, 2, 3], [1, 0, 2, 3], [2, 0, 1, 3], [0, 3, 1, 2]], (4, 1))
    first = np.tile([0.9, 0.8, 0.7, 0.6], (16, 1))  # first stage: right on top for half
    better = np.where(entries == np.asarray(truth)[:, None], 0.9, 0.1)  # right entry on top
    on = rerank.choose(entries, first, better, truth, "auto")
    assert on["used"] and on["helps on validation"] and on["k"] == 4
    assert on["validation"]["first stage"] == {"recall@1": 0.5, "mrr@10": 0.75}
    assert on["validation"]["cross-encoder alone, top 4"] == {"recall@1": 1.0, "mrr@10": 1.0}
    assert 0.1 < on["weight"] <= 1.0  # the smallest weight that puts every right entry first
    fused = rerank.fuse(first, better, on["weight"])
    assert (fused.argmax(1) == [1, 0, 0, 1] * 4).all()  # the right entry's column, per row
    assert on["top answers fixed / broken"] == [8, 0]
    lucky = first.copy()  # keeps the first stage's order...
    lucky[[0, 3, 4]] = better[[0, 3, 4]]  # ...but fixes 3 top answers
    lucky[[1, 2]] = 1.0 - better[[1, 2]]  # ...and breaks 2: no clear gain
    chance = rerank.choose(entries, first, lucky, truth, "auto", fixed_weight=1.0)
    assert chance["top answers fixed / broken"] == [3, 2] and not chance["used"]
    worse = 1.0 - better  # puts the right entry last
    off = rerank.choose(entries, first, worse, truth, "auto")
    assert not off["used"] and not off["helps on validation"]
    forced = rerank.choose(entries, first, worse, truth, "true", fixed_k=2, fixed_weight=1.0)
    assert forced["used"] and (forced["k"], forced["weight"]) == (2, 1.0)
    with pytest.raises(ConfigError, match="head.rerank must be auto, true or false"):
        rerank.rerank_mode("sometimes")
    assert rerank.rerank_mode(True) == "true"


def test_mining_and_training_rows():
    wrong = rerank.wrong_candidates(np.array([[0, 2, 1], [3, 1, -1]]), [0, 1], 2)
    assert wrong == [[2, 1], [3]]
    bce = rerank.training_columns(["q1", "q2"], [0, 1], wrong, TEXTS, "bce")
    assert bce["label"] == [1.0, 0.0, 0.0, 1.0, 0.0]
    assert bce["text"][:3] == ["lost card", "monthly fees", "reset pin"]
    mnrl = rerank.training_columns(["q1", "q2"], [0, 1], wrong, TEXTS, "mnrl")
    assert list(mnrl) == ["anchor", "positive", "negative_1"]  # the fewest any question has
    with pytest.raises(ConfigError, match="rerank_loss"):
        rerank.training_columns(["q1"], [0], [[1]], TEXTS, "hinge")


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_reranker_is_trained_saved_and_used_by_predict(tiny_model, faq_files, tunehub_home,  # noqa: F811
                                                        monkeypatch, precision):
    faq, queries = faq_files
    overrides = tiny_overrides(**{"dataset.faq": str(faq), "dataset.eval_fraction": "0.3",
                                  "dataset.validation_fraction": "0.3", "train.batch_size": "4",
                                  "head.rerank": "true", "head.rerank_negatives": "2",
                                  "train.precision": precision})
    result = tunehub.run_task("customer-service-qa", data=queries, model=str(tiny_model),
                              overrides=overrides)
    assert "re-scores the top 4" in result.notes["re-ranker"]
    model = tunehub_home / "artifacts" / "customer-service-qa" / "v1" / "model"
    assert (model / "reranker" / "model.safetensors").is_file()
    assert not list(model.rglob("*.bin"))
    settings = json.loads((model / "retrieval.json").read_text())
    choice = settings["rerank"]
    assert choice["used"] and choice["k"] == 4 and "first stage" in choice["validation"]

    calls = []
    original = rerank.score_pairs
    monkeypatch.setattr(rerank, "score_pairs", lambda *a, **k: calls.append(a[1]) or original(*a, **k))
    out = tunehub.predict("customer-service-qa", ["i lost my card"])[0]
    assert calls and calls[0] == ["i lost my card"] * 4  # every entry re-scored
    scores = [a["score"] for a in out["answers"]]
    assert all(0.0 <= s <= 1.0 for s in scores) and scores == sorted(scores, reverse=True)

    # the hand-off threshold is calibrated on the final (re-ranked) score
    from tunehub.plugins.customer_service.head import BiEncoderHead

    data = tunehub.validate_data("customer-service-qa", data=queries, overrides=overrides)
    calibration = data.train.calibration
    predictor = BiEncoderHead().load(model, {"train": {"max_length": 32, "eval_batch_size": 8}})
    entries, final = predictor.retriever.search(calibration.texts, 1)
    truth = np.asarray([data.info["faq"].position().get(f, -2) for f in calibration.faq_ids])
    weights = mix_weights(calibration, data.train.in_scope_share())
    expected, _ = calibrate(final[:, 0], entries[:, 0] == truth, weights)
    assert settings["threshold"] == pytest.approx(expected, abs=1e-3)


def test_reranker_off_leaves_the_first_stage_alone(tiny_model, faq_files, tunehub_home):  # noqa: F811
    faq, queries = faq_files
    overrides = tiny_overrides(**{"dataset.faq": str(faq), "dataset.eval_fraction": "0.3",
                                  "train.batch_size": "4", "head.rerank": "false"})
    result = tunehub.run_task("customer-service-qa", data=queries, model=str(tiny_model),
                              overrides=overrides)
    assert result.notes["re-ranker"].startswith("off (head.rerank=false); on ")
    model = tunehub_home / "artifacts" / "customer-service-qa" / "v1" / "model"
    assert not (model / "reranker").exists()
    assert json.loads((model / "retrieval.json").read_text())["rerank"]["used"] is False
    assert tunehub.predict("customer-service-qa", ["i lost my card"])[0]["answers"]


def test_a_reranker_that_cannot_pay_off_is_not_trained():
    truth = [0, 1, 2, 3]
    right = np.array([[0, 1], [1, 0], [2, 0], [3, 0]])  # the first stage is right on all four
    assert "fewer than head.rerank_min_questions=2000" in rerank.cannot_pay_off(259, right, truth)
    assert "misses 0 of 4" in rerank.cannot_pay_off(5000, right, truth)
    two_wrong = np.array([[1, 0], [0, 1], [2, 0], [3, 0]])
    assert "misses 2 of 4" in rerank.cannot_pay_off(5000, two_wrong, truth)  # 2 fixed: not kept
    assert rerank.choose(two_wrong, np.ones((4, 2)), np.array([[0., 1.], [0., 1.], [1., 0.], [1., 0.]]),
                         truth, "auto", fixed_k=2, fixed_weight=1.0)["used"] is False
    three_wrong = np.array([[1, 0], [0, 1], [0, 2], [3, 0]])
    assert rerank.cannot_pay_off(5000, three_wrong, truth, min_questions=0) is None


def test_auto_skips_the_reranker_on_a_small_faq_and_says_why(tiny_model, faq_files,  # noqa: F811
                                                             tunehub_home):
    faq, queries = faq_files
    overrides = tiny_overrides(**{"dataset.faq": str(faq), "dataset.eval_fraction": "0.3",
                                  "train.batch_size": "4"})
    result = tunehub.run_task("customer-service-qa", data=queries, model=str(tiny_model),
                              overrides=overrides)
    note = result.notes["re-ranker"]
    assert note.startswith("not trained [head.rerank=auto]: ") and "head.rerank=true trains" in note
    model = tunehub_home / "artifacts" / "customer-service-qa" / "v1" / "model"
    assert not (model / "reranker").exists()
    saved = json.loads((model / "retrieval.json").read_text())["rerank"]
    assert saved["used"] is False and "head.rerank_min_questions" in saved["skipped"]
    assert not (tunehub_home / "artifacts" / "customer-service-qa" / "v1" / "logs" / "reranker").exists()
