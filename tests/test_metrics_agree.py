"""Our metrics agree with the libraries people compare them with, on real rows.

Classification metrics against scikit-learn, ranking metrics against trec_eval
(pytrec_eval), entity metrics and tag schemes against seqeval, AUC against scikit-learn,
BM25 against the Lucene formula, McNemar against statsmodels and the paired bootstrap
against scipy. Predictions need not be a model's: a seeded perturbation of the truth, or
seeded random scores, exercises the same code. Each check runs on the bundled samples
(always) and on the public data sets in ../shared/data (skipped when that folder is absent).
"""
from __future__ import annotations

import csv
import math
import os
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from tunehub.core.running import ranking
from tunehub.core.running.compare import mcnemar, paired_bootstrap
from tunehub.core.running.metrics import accuracy, classification_report, confusion_matrix, macro_f1
from tunehub.plugins.entity_extraction import metrics as entity
from tunehub.plugins.entity_extraction.data import read_file
from tunehub.plugins.entity_extraction.tags import detect_scheme, spans, to_iob2

ROOT = Path(__file__).resolve().parents[1]
PLUGINS = ROOT / "plugins"
SHARED = Path(os.environ.get("TUNEHUB_BENCH_DATA", ROOT.parent / "shared" / "data"))


def shared(*parts: str) -> Path:
    path = SHARED.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"{path} not found: the public data sets are not next to this checkout "
                    "(set TUNEHUB_BENCH_DATA to their folder to run this check)")
    return path


def read_csv(path: Path, limit: int | None = None) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    return rows[:limit] if limit else rows


@pytest.fixture(scope="module")
def catalog():
    from tunehub.core.extending.plugins import load_catalog

    return load_catalog()


# -- classification: scikit-learn ------------------------------------------------------------
def perturbed(y_true: list[int], n_labels: int, seed: int, share: float = 0.3) -> list[int]:
    """The truth with a seeded ``share`` of rows set to a random label."""
    rng = np.random.default_rng(seed)
    y = np.array(y_true)
    flip = rng.random(len(y)) < share
    y[flip] = rng.integers(0, n_labels, int(flip.sum()))
    return y.tolist()


def check_classification(names: list[str]) -> None:
    from sklearn import metrics as sk

    # a declared label that never occurs, as a task file's label list may hold
    labels = [*sorted(set(names)), "(never seen)"]
    y_true = [labels.index(n) for n in names]
    noisy = perturbed(y_true, len(labels) - 1, seed=0)
    one_never_predicted = [0 if y == 1 else y for y in perturbed(y_true, len(labels) - 1, 1)]
    majority = [Counter(y_true).most_common(1)[0][0]] * len(y_true)
    everything = list(range(len(labels)))
    for y_pred in (noisy, one_never_predicted, majority):
        out = {"labels": labels, "y_true": y_true, "y_pred": y_pred}
        assert accuracy(out) == pytest.approx(sk.accuracy_score(y_true, y_pred), abs=1e-12)
        assert macro_f1(out) == pytest.approx(
            sk.f1_score(y_true, y_pred, average="macro", zero_division=0), abs=1e-12)
        ours = classification_report(out)
        theirs = sk.classification_report(y_true, y_pred, labels=everything, target_names=labels,
                                          output_dict=True, zero_division=0)
        for row in [*labels, "macro avg", "weighted avg"]:
            for key, their_key in (("precision", "precision"), ("recall", "recall"),
                                   ("f1", "f1-score"), ("support", "support")):
                assert ours[row][key] == pytest.approx(theirs[row][their_key], abs=1e-12), (row, key)
        assert confusion_matrix(out)["matrix"] == \
            sk.confusion_matrix(y_true, y_pred, labels=everything).tolist()


def test_a_fixed_per_label_f1_still_scores_macro_f1_with_a_deprecation_warning():
    with pytest.deprecated_call(match="per_label_counts"):
        assert macro_f1({"y_true": [], "y_pred": [], "per_label_f1": {"A": 0.5, "B": 1.0}}) == 0.75


@pytest.mark.parametrize("sample", ["sample.csv", "sample_zh.csv"])
def test_classification_metrics_equal_scikit_learn_on_the_bundled_samples(sample):
    rows = read_csv(PLUGINS / "financial_sentiment" / "data" / sample)
    check_classification([r["label"] for r in rows])


@pytest.mark.parametrize("folder, file, column", [
    ("financial_phrasebank", "allagree_test.csv", "label"),
    ("financial_phrasebank", "50agree_test.csv", "label"),
    ("finfe", "test.csv", "label"),
    ("banking77", "test.csv", "category"),  # 77 labels
])
def test_classification_metrics_equal_scikit_learn_on_public_data(folder, file, column):
    check_classification([r[column] for r in read_csv(shared(folder, file))])


# -- ranking: trec_eval (pytrec_eval) --------------------------------------------------------
def check_ranking(relevant: dict[str, set[str]], candidates: dict[str, list[str]], seed: int) -> None:
    """recall@k, MRR@10 and nDCG@10 of seeded random scores, ours against trec_eval's."""
    import pytrec_eval

    rng = np.random.default_rng(seed)
    run, outputs = {}, {"ranked": [], "relevant": []}
    for query, docs in candidates.items():
        scores = rng.random(len(docs))  # distinct: no tie order to agree on
        run[query] = {doc: float(s) for doc, s in zip(docs, scores)}
        outputs["ranked"].append([docs[i] for i in np.argsort(-scores)])
        outputs["relevant"].append(sorted(relevant.get(query, ())))
    qrels = {q: {doc: 1 for doc in docs} for q, docs in relevant.items() if docs}
    assert 0 < len(qrels) <= len(run)
    trec = pytrec_eval.RelevanceEvaluator(qrels, {"recall.1,5,10", "ndcg_cut.10"}).evaluate(run)
    top10 = {q: dict(sorted(docs.items(), key=lambda kv: -kv[1])[:10]) for q, docs in run.items()}
    reciprocal = pytrec_eval.RelevanceEvaluator(qrels, {"recip_rank"}).evaluate(top10)
    assert set(trec) == set(qrels)  # both leave out the queries with nothing relevant

    def mean(measure: str, table=trec) -> float:
        return float(np.mean([values[measure] for values in table.values()]))

    for k in (1, 5, 10):
        assert ranking.recall_at(k)(outputs) == pytest.approx(mean(f"recall_{k}"), abs=1e-9)
    assert ranking.ndcg_at(10)(outputs) == pytest.approx(mean("ndcg_cut_10"), abs=1e-9)
    assert ranking.mrr_at(10)(outputs) == pytest.approx(mean("recip_rank", reciprocal), abs=1e-9)


def faq_queries(data: Path, faq: str, queries: str) -> tuple[dict, dict]:
    entries = [r["id"] for r in read_csv(data / faq)]
    rows = read_csv(data / queries)
    relevant = {f"q{i}": {r["faq_id"]} if r["faq_id"] else set() for i, r in enumerate(rows)}
    return relevant, {q: entries for q in relevant}


def rated(rows: list[dict[str, str]], user: str, item: str, rating: str, at_least: float,
          seed: int, negatives: int) -> tuple[dict, dict]:
    """Per user: the items rated ``at_least`` are relevant, ranked among seeded other items."""
    items = sorted({r[item] for r in rows})
    liked: dict[str, set[str]] = {}
    for r in rows:
        liked.setdefault(r[user], set())
        if float(r[rating]) >= at_least:
            liked[r[user]].add(r[item])
    rng = np.random.default_rng(seed)
    candidates = {u: sorted(good | set(rng.choice(items, negatives, replace=False)))
                  for u, good in liked.items()}
    return liked, candidates


def test_ranking_metrics_equal_trec_eval_on_the_bundled_samples():
    data = PLUGINS / "customer_service" / "data"
    check_ranking(*faq_queries(data, "faq.csv", "queries.csv"), seed=0)
    check_ranking(*faq_queries(data, "faq_zh.csv", "queries_zh.csv"), seed=1)
    rows = read_csv(PLUGINS / "recommendation" / "data" / "interactions.csv")
    check_ranking(*rated(rows, "user_id", "item_id", "rating", 4, seed=2, negatives=50), seed=3)


def test_ranking_metrics_equal_trec_eval_on_public_data():
    rows = read_csv(shared("banking77", "test.csv"), limit=1500)
    intents = sorted({r["category"] for r in read_csv(shared("banking77", "train.csv"))})
    check_ranking({f"q{i}": {r["category"]} for i, r in enumerate(rows)},
                  {f"q{i}": intents for i in range(len(rows))}, seed=0)
    ratings = read_csv(shared("movielens_latest_small", "ratings.csv"), limit=20_000)
    check_ranking(*rated(ratings, "userId", "movieId", "rating", 4.5, seed=1, negatives=100), seed=2)


# -- recommendation AUC: scikit-learn ------------------------------------------------------
def check_auc(rows: list[dict[str, str]], user: str, item: str) -> None:
    """Each user's last item held out; ties in the scores count half, as roc_auc_score does."""
    from sklearn.metrics import roc_auc_score

    from tunehub.plugins.recommendation.dataset import Items, Split
    from tunehub.plugins.recommendation.scoring import auc, full_ranking

    ids = sorted({r[item] for r in rows})
    catalog = Items(ids, ids, ids)
    history: dict[str, list[int]] = {}
    for r in rows:
        history.setdefault(r[user], []).append(catalog.index[r[item]])
    cases = [(u, items[-1]) for u, items in history.items()
             if len(items) > 1 and items[-1] not in items[:-1]][:150]
    seen = {u: set(history[u][:-1]) for u, _ in cases}
    users = [u for u, _ in cases]
    scores = np.round(np.random.default_rng(0).random((len(users), len(ids))), 1)  # many ties
    row_of = {u: i for i, u in enumerate(users)}
    split = Split(catalog, {u: history[u][:-1] for u in users}, seen)
    _, _, positions = full_ranking(lambda block: scores[[row_of[u] for u in block]], split, cases, 0)
    theirs = []
    for (u, target), row in zip(cases, scores):
        negatives = sorted(set(range(len(ids))) - seen[u] - {target})
        truth = np.r_[1, np.zeros(len(negatives))]
        theirs.append(roc_auc_score(truth, np.r_[row[target], row[negatives]]))
    assert auc({"positions": positions}) == pytest.approx(float(np.mean(theirs)), abs=1e-9)


def test_recommendation_auc_equals_scikit_learn_on_the_bundled_sample():
    rows = read_csv(PLUGINS / "recommendation" / "data" / "interactions.csv")
    check_auc(rows, "user_id", "item_id")


def test_recommendation_auc_equals_scikit_learn_on_movielens():
    ratings = read_csv(shared("movielens_latest_small", "ratings.csv"), limit=8_000)
    check_auc(ratings, "userId", "movieId")


# -- entities and tag schemes: seqeval ------------------------------------------------------
def perturbed_tags(gold: list[list[str]], seed: int) -> list[list[str]]:
    """Gold entities with some dropped, shifted, retyped, cut short or opened with I-
    (invalid IOB2, which CoNLL semantics still reads), and a few spurious ones."""
    rng = np.random.default_rng(seed)
    types = sorted({kind for tags in gold for *_, kind in spans(tags)}) or ["X"]
    out = []
    for tags in gold:
        tags = list(tags)
        for start, end, kind in spans(tags):
            roll = rng.random()
            if roll < 0.1:
                tags[start:end] = ["O"] * (end - start)
            elif roll < 0.2 and end < len(tags) and tags[end] == "O":
                tags[end] = f"I-{kind}"  # one token too long
            elif roll < 0.3:
                other = types[(types.index(kind) + 1) % len(types)]
                tags[start:end] = [f"B-{other}", *[f"I-{other}"] * (end - start - 1)]
            elif roll < 0.4 and end - start > 1:
                tags[end - 1] = "O"  # one token too short
            elif roll < 0.45:
                tags[start] = f"I-{kind}"
        for i in range(len(tags)):
            if tags[i] == "O" and rng.random() < 0.02:
                tags[i] = f"B-{types[int(rng.integers(len(types)))]}"
        out.append(tags)
    return out


def check_entities(gold: list[list[str]]) -> None:
    import seqeval.metrics as sq

    pred = perturbed_tags(gold, seed=0)
    types = sorted({kind for tags in gold for *_, kind in spans(tags)})
    out = entity.entity_outputs(types, gold, pred)
    for ours, theirs in ((entity.f1, sq.f1_score), (entity.precision, sq.precision_score),
                         (entity.recall, sq.recall_score)):
        assert ours(out) == pytest.approx(theirs(gold, pred, zero_division=0), abs=1e-12)
    assert macro_f1(out) == pytest.approx(
        sq.f1_score(gold, pred, average="macro", zero_division=0), abs=1e-12)
    assert entity.token_accuracy(out) == pytest.approx(sq.accuracy_score(gold, pred), abs=1e-12)
    theirs = sq.classification_report(gold, pred, output_dict=True, zero_division=0)
    for kind, row in entity.per_type(out).items():
        assert (row["precision"], row["recall"], row["f1"], row["support"]) == pytest.approx(
            (theirs[kind]["precision"], theirs[kind]["recall"], theirs[kind]["f1-score"],
             theirs[kind]["support"]), abs=1e-6), kind


def sentences(path: Path, limit: int | None = None, tmp: Path | None = None):
    if limit:
        assert tmp is not None
        head = tmp / path.name
        with open(path, encoding="utf-8") as source:
            head.write_text("".join(line for _, line in zip(range(limit), source)), encoding="utf-8")
        path = head
    return read_file(path, {}, "auto", [])


@pytest.mark.parametrize("sample", ["sample.jsonl", "sample_zh.jsonl"])
def test_entity_metrics_equal_seqeval_on_the_bundled_samples(sample):
    check_entities(sentences(PLUGINS / "entity_extraction" / "data" / sample).tags)


def test_entity_metrics_equal_seqeval_on_public_data(tmp_path):
    check_entities(sentences(shared("conll2003", "test.jsonl"), 1000, tmp_path).tags)
    check_entities(sentences(shared("msra_ner", "test.jsonl"), 600, tmp_path).tags)


def written(gold: list[str], scheme: str) -> list[str]:
    """``gold`` (IOB2) written in another scheme, entity by entity."""
    tags = ["O"] * len(gold)
    previous_end, previous_kind = -1, ""
    for start, end, kind in spans(gold):
        width = end - start
        if scheme == "iob1":  # I- throughout; B- only right after an entity of the same type
            tags[start:end] = [f"I-{kind}"] * width
            if previous_end == start and previous_kind == kind:
                tags[start] = f"B-{kind}"
        else:
            single, last = ("S", "E") if scheme == "bioes" else ("U", "L")
            tags[start:end] = ([f"{single}-{kind}"] if width == 1 else
                               [f"B-{kind}", *[f"I-{kind}"] * (width - 2), f"{last}-{kind}"])
        previous_end, previous_kind = end, kind
    return tags


def check_schemes(gold: list[list[str]]) -> None:
    from seqeval.scheme import BILOU, IOB1, IOB2, IOBES, Entities

    def theirs(tags: list[list[str]], scheme) -> list[list[tuple]]:
        return [sorted((start, end, kind) for _, kind, start, end in (e.to_tuple() for e in row))
                for row in Entities(tags, scheme).entities]

    ours = [sorted(spans(tags)) for tags in gold]
    assert theirs(gold, IOB2) == ours
    for name, scheme in (("bioes", IOBES), ("bilou", BILOU), ("iob1", IOB1)):
        other = [written(tags, name) for tags in gold]
        assert theirs(other, scheme) == ours, name  # the test's writer is right
        read_as = "iob1" if name == "iob1" else "bioes"
        assert [to_iob2(tags, read_as) for tags in other] == gold, name
        if name != "iob1":
            assert detect_scheme([t for tags in other for t in tags]) == "bioes"


def test_tag_schemes_read_as_seqeval_reads_them_on_the_bundled_sample():
    check_schemes(sentences(PLUGINS / "entity_extraction" / "data" / "sample.jsonl").tags)


def test_tag_schemes_read_as_seqeval_reads_them_on_conll2003(tmp_path):
    check_schemes(sentences(shared("conll2003", "train.jsonl"), 1000, tmp_path).tags)


# -- BM25: the Lucene formula (what bm25s computes with method="lucene") ---------------------
def lucene_bm25(documents: list[list[str]], k1=1.5, b=0.75):
    """Per-document scores of a query, written out from the formula."""
    n, df = len(documents), Counter(t for d in documents for t in set(d))
    avg = sum(map(len, documents)) / n
    tfs = [Counter(d) for d in documents]
    norms = [k1 * (1 - b + b * len(d) / avg) for d in documents]

    def scores(query: list[str]) -> np.ndarray:
        out = np.zeros(n)
        for term in query:  # a repeated query term counts each time
            idf = math.log(1 + (n - df[term] + 0.5) / (df[term] + 0.5))
            for i, (tf, norm) in enumerate(zip(tfs, norms)):
                if tf[term]:
                    out[i] += idf * tf[term] / (tf[term] + norm)
        return out

    return scores


def check_bm25(texts: list[str], owners: list[int], queries: list[str]) -> None:
    from tunehub.plugins.customer_service.retrieval import BM25, tokens

    index, reference = BM25(texts, owners), lucene_bm25([tokens(t) for t in texts])
    owners_ = np.asarray(owners)
    for query in queries:
        per_doc = reference(tokens(query))
        best = np.array([per_doc[owners_ == e].max() for e in range(owners_.max() + 1)])
        np.testing.assert_allclose(index.scores(query), best, rtol=1e-9, atol=1e-12)


def test_bm25_is_the_lucene_formula_on_the_bundled_faqs():
    from tunehub.plugins.customer_service.retrieval import BM25

    data = PLUGINS / "customer_service" / "data"
    for faq, queries in (("faq.csv", "queries.csv"), ("faq_zh.csv", "queries_zh.csv")):
        entries = read_csv(data / faq)
        asked = read_csv(data / queries)
        position = {r["id"]: i for i, r in enumerate(entries)}
        paraphrases = [q for q in asked[:200] if q["faq_id"]]  # indexed as the task does
        texts = [r["question"] for r in entries] + [q["query"] for q in paraphrases]
        owners = list(range(len(entries))) + [position[q["faq_id"]] for q in paraphrases]
        check_bm25(texts, owners, [q["query"] for q in asked[200:]])
    twice = BM25(["card fee", "lost card abroad"], [0, 1])
    assert twice.scores("fee fee")[0] == pytest.approx(2 * twice.scores("fee")[0])


def test_bm25_is_the_lucene_formula_on_banking77():
    train = read_csv(shared("banking77", "train.csv"), limit=1500)
    intents = sorted({r["category"] for r in train})
    texts = [i.replace("_", " ") for i in intents] + [r["text"] for r in train]
    owners = list(range(len(intents))) + [intents.index(r["category"]) for r in train]
    check_bm25(texts, owners, [r["text"] for r in read_csv(shared("banking77", "test.csv"))[::60]])


# -- McNemar (statsmodels) and the paired bootstrap (scipy) ---------------------------------
def paired_answers(labels: list[str]) -> tuple[dict, dict]:
    names = sorted(set(labels))
    y_true = [names.index(n) for n in labels]
    return ({"labels": names, "y_true": y_true, "y_pred": perturbed(y_true, len(names), 10, 0.25)},
            {"labels": names, "y_true": y_true, "y_pred": perturbed(y_true, len(names), 11, 0.15)})


def check_mcnemar(a: dict, b: dict) -> None:
    from statsmodels.stats.contingency_tables import mcnemar as reference

    right_a = [t == p for t, p in zip(a["y_true"], a["y_pred"])]
    right_b = [t == p for t, p in zip(b["y_true"], b["y_pred"])]
    for n in (len(right_a), 60, 30):  # large and small discordant counts: both branches
        ra, rb = right_a[:n], right_b[:n]
        pairs = Counter(zip(ra, rb))  # (A right, B right) -> count
        table = [[pairs[True, True], pairs[True, False]], [pairs[False, True], pairs[False, False]]]
        ours = mcnemar(ra, rb)
        discordant = table[0][1] + table[1][0]
        assert (ours["only_a_right"], ours["only_b_right"]) == (table[0][1], table[1][0])
        if discordant == 0:
            continue
        exact = discordant < 25
        assert ours["method"] == ("exact binomial" if exact
                                  else "chi-square with continuity correction")
        p = reference(table, exact=exact, correction=True).pvalue
        assert ours["p_value"] == pytest.approx(p, abs=1e-6), n


def check_bootstrap(catalog, a: dict, b: dict) -> None:
    """The 95% interval of B - A in accuracy, ours against scipy's percentile bootstrap
    (different random draws: they agree to within the Monte Carlo error)."""
    from scipy.stats import bootstrap

    diffs = paired_bootstrap(catalog, ["accuracy"], a, b, rounds=1000, seed=0)["accuracy"]
    ours = np.percentile(diffs, [2.5, 97.5])
    right_a = np.equal(a["y_true"], a["y_pred"]).astype(float)
    right_b = np.equal(b["y_true"], b["y_pred"]).astype(float)
    theirs = bootstrap((right_a, right_b), lambda x, y, axis: y.mean(axis) - x.mean(axis),
                       paired=True, vectorized=True, n_resamples=4000, method="percentile",
                       random_state=0).confidence_interval
    assert ours == pytest.approx([theirs.low, theirs.high], abs=0.01)
    assert ours[0] < float(np.mean(right_b - right_a)) < ours[1]


def test_mcnemar_and_bootstrap_agree_with_statsmodels_and_scipy_on_the_bundled_sample(catalog):
    rows = read_csv(PLUGINS / "financial_sentiment" / "data" / "sample.csv")
    a, b = paired_answers([r["label"] for r in rows])
    check_mcnemar(a, b)
    check_bootstrap(catalog, a, b)


def test_mcnemar_and_bootstrap_agree_with_statsmodels_and_scipy_on_phrasebank(catalog):
    a, b = paired_answers([r["label"] for r in read_csv(shared("financial_phrasebank",
                                                                "allagree_test.csv"))])
    check_mcnemar(a, b)
    check_bootstrap(catalog, a, b)


def test_entity_macro_f1_is_resampled_by_sentence_in_the_paired_bootstrap(catalog):
    """Each bootstrap round scores the resampled sentences as seqeval would."""
    import seqeval.metrics as sq

    gold = sentences(PLUGINS / "entity_extraction" / "data" / "sample.jsonl").tags[:300]
    types = sorted({kind for tags in gold for *_, kind in spans(tags)})
    pred_a, pred_b = perturbed_tags(gold, 1), perturbed_tags(gold, 2)
    a = entity.entity_outputs(types, gold, pred_a)
    b = entity.entity_outputs(types, gold, pred_b)
    rounds, seed = 8, 3
    diffs = paired_bootstrap(catalog, ["macro_f1", "f1"], a, b, rounds=rounds, seed=seed)
    rng = np.random.default_rng(seed)  # the draws paired_bootstrap makes: n indices a round
    for r in range(rounds):
        picks = rng.integers(0, len(gold), len(gold))
        g, pa, pb = ([seq[i] for i in picks] for seq in (gold, pred_a, pred_b))
        for name, average in (("macro_f1", "macro"), ("f1", "micro")):
            expected = (sq.f1_score(g, pb, average=average, zero_division=0)
                        - sq.f1_score(g, pa, average=average, zero_division=0))
            assert diffs[name][r] == pytest.approx(expected, abs=1e-9), (name, r)
    assert len(set(np.round(diffs["macro_f1"], 9))) > 1  # it varies with the resample

