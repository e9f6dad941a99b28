"""Metrics against hand-computed cases."""
from __future__ import annotations

import math

import pytest

from tunehub.core.running import metrics, ranking

CLS = {"labels": ["neg", "neu", "pos"], "y_true": [0, 0, 1, 1, 2, 2], "y_pred": [0, 1, 1, 1, 2, 0]}


def test_accuracy_and_macro_f1_by_hand():
    assert metrics.accuracy(CLS) == pytest.approx(4 / 6)
    # neg: p=1/2 r=1/2 f=1/2; neu: p=2/3 r=1 f=0.8; pos: p=1 r=1/2 f=2/3
    assert metrics.macro_f1(CLS) == pytest.approx((0.5 + 0.8 + 2 / 3) / 3)


def test_classification_report_and_confusion_matrix():
    report = metrics.classification_report(CLS)
    assert report["neu"] == {"precision": pytest.approx(2 / 3), "recall": 1.0, "f1": pytest.approx(0.8), "support": 2}
    assert report["macro avg"]["f1"] == pytest.approx(metrics.macro_f1(CLS))
    assert metrics.confusion_matrix(CLS)["matrix"] == [[1, 1, 0], [0, 2, 0], [1, 0, 1]]


RANKED = {"ranked": [["a", "b", "c"], ["x", "y", "z"], ["p", "q"], ["m"]],
          "relevant": [["b"], ["q"], ["p", "q"], []]}  # the last query has no answer: skipped


def test_ranking_metrics_by_hand():
    assert ranking.recall_at(1)(RANKED) == pytest.approx((0 + 0 + 0.5) / 3)
    assert ranking.recall_at(5)(RANKED) == pytest.approx((1 + 0 + 1) / 3)
    assert ranking.mrr_at(10)(RANKED) == pytest.approx((1 / 2 + 0 + 1) / 3)
    ndcg_first = (1 / math.log2(3)) / 1.0
    assert ranking.ndcg_at(10)(RANKED) == pytest.approx((ndcg_first + 0 + 1.0) / 3)
