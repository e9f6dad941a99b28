"""The built-in ``sequence-classification`` head and its ``majority-class`` and
``char-tfidf-lr`` baselines.

A default plugin: it registers through the same hooks as any third-party plugin, and the
core reaches the head only through the head protocol (`tunehub.core.extending.heads`).
"""
from __future__ import annotations

import warnings
from collections import Counter
from collections.abc import Mapping
from typing import Any

from tunehub.plugin import PLUGIN_API_VERSION, hookimpl

TUNEHUB_PLUGIN_API = PLUGIN_API_VERSION


@hookimpl
def register_heads(register) -> None:
    from .head import SequenceClassificationHead

    register(SequenceClassificationHead())


def majority_class(data: Any, config: Mapping[str, Any]) -> dict[str, Any]:
    """Predict the most frequent training label for every evaluation row."""
    top = Counter(data.train.labels).most_common(1)[0][0]
    return {"labels": data.info["labels"], "y_true": list(data.eval.labels),
            "y_pred": [top] * len(data.eval.labels)}


def char_tfidf_lr(data: Any, config: Mapping[str, Any]) -> dict[str, Any]:
    """Character 1-3-gram TF-IDF and logistic regression (scikit-learn), its regularisation
    chosen by 3-fold cross-validation on the training rows: a strong classic baseline in
    any script, Chinese included (no word segmentation needed)."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegressionCV
    from sklearn.pipeline import make_pipeline

    labels = list(data.train.labels)
    folds = min(3, min(Counter(labels).values()))
    if len(set(labels)) < 2 or folds < 2:
        return majority_class(data, config)  # too few rows per label to fit and choose
    model = make_pipeline(
        TfidfVectorizer(analyzer="char", ngram_range=(1, 3), sublinear_tf=True, min_df=1),
        LogisticRegressionCV(Cs=[0.3, 1.0, 3.0, 10.0, 30.0], cv=folds, max_iter=2000,
                             scoring="accuracy"))
    with warnings.catch_warnings():  # scikit-learn's notices of coming API changes
        warnings.simplefilter("ignore", FutureWarning)
        model.fit(list(data.train.texts), labels)
    return {"labels": data.info["labels"], "y_true": list(data.eval.labels),
            "y_pred": [int(p) for p in model.predict(list(data.eval.texts))]}


@hookimpl
def register_baselines(register) -> None:
    register("majority-class", majority_class,
             description="always predicts the most frequent training label")
    register("char-tfidf-lr", char_tfidf_lr,
             description="character 1-3-gram TF-IDF + logistic regression (scikit-learn; "
                         "any script, Chinese included)")
