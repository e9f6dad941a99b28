"""Recommendation models on hand-checkable data: EASE, transitions, towers, cold items, fusion."""
from __future__ import annotations

import math

import numpy as np
import pytest

from tunehub.core.errors import ConfigError
from tunehub.plugins.recommendation import collab, dataset, fusion, recipe, towers


def make_split(history: dict[str, str], n_items: int = 6) -> dataset.Split:
    ids = [chr(ord("a") + i) for i in range(n_items)]
    catalog = dataset.Items(ids, [i.upper() for i in ids], ids)
    indexed = {user: [catalog.index[i] for i in items] for user, items in history.items()}
    return dataset.Split(catalog, indexed, {u: set(h) for u, h in indexed.items()})


# -- EASE ---------------------------------------------------------------------------------


def test_ease_two_items_matches_the_closed_form_by_hand():
    # n_a = 3, n_b = 3, n_ab = 2: with two items EASE's weight is n_ab / (n_a + lambda)
    split = make_split({"u1": "ab", "u2": "a", "u3": "ab", "u4": "b"}, n_items=3)
    model = collab.EASE(split, lam=1.0)
    assert model.items.tolist() == [0, 1]  # c has no interactions: left out of the matrix
    assert model.b[0, 1] == pytest.approx(2 / 4) and model.b[1, 0] == pytest.approx(2 / 4)
    assert model.b[0, 0] == 0.0 and model.b[1, 1] == 0.0
    scores = model(["u2"])[0]
    assert scores[1] == pytest.approx(0.5) and scores[0] == 0.0 and scores[2] == 0.0


def test_ease_matches_a_dense_inverse_on_a_small_matrix():
    split = make_split({"u1": "abc", "u2": "ab", "u3": "bcd", "u4": "ad", "u5": "cde"})
    lam = 2.0
    x = np.zeros((5, 5))
    for row, items in enumerate(split.history.values()):
        x[row, items] = 1
    p = np.linalg.inv(x.T @ x + lam * np.eye(5))
    expected = -p / np.diag(p)[None, :]
    np.fill_diagonal(expected, 0.0)
    model = collab.EASE(split, lam)
    np.testing.assert_allclose(model.b, expected, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(model(["u1"])[0, :5], x[0] @ expected, rtol=1e-4, atol=1e-6)


def test_ease_is_refused_above_its_item_limit(monkeypatch):
    split = make_split({"u1": "abc", "u2": "bcd"})
    monkeypatch.setattr(collab, "EASE_MAX_ITEMS", 3)
    with pytest.raises(ConfigError, match="stops at 3 items.*--set baselines="):
        collab.EASE(split, 1.0)
    names, note = recipe.usable_signals(split, ["ease", "transitions"])
    assert names == ["transitions", "itemknn"] and "ItemKNN used instead" in note


def test_ease_limit_is_stated_the_same_in_the_baseline_listing():
    from tunehub.plugins import recommendation

    assert recommendation.EASE_MAX_ITEMS == collab.EASE_MAX_ITEMS


def test_choose_lambda_uses_validation_cases():
    split = make_split({f"u{n}": "abc" if n % 2 else "abd" for n in range(8)})
    lam, values, model = collab.choose_lambda(split, [("u1", 2)], lambdas=(0.5, 50.0))
    assert set(values) == {0.5, 50.0} and values[lam] == max(values.values())
    assert model.lam == lam


# -- transitions --------------------------------------------------------------------------


def test_transitions_by_hand():
    split = make_split({"u1": "abc", "u2": "ab", "u3": "ac", "u4": "da"})
    scores = collab.Transitions(split)(["u4", "u1"])
    ids = split.catalog.index
    # after a: b twice, c once
    assert scores[0, ids["b"]] == pytest.approx(2 / 3, abs=1e-5)
    assert scores[0, ids["c"]] == pytest.approx(1 / 3, abs=1e-5)
    # after c nothing ever came: only the popularity tie-break, a (4 users) first
    assert scores[1].max() < 1e-5 and np.argmax(scores[1]) == ids["a"]
    assert scores[0, ids["e"]] == 0.0  # never seen: no score at all


# -- towers -------------------------------------------------------------------------------


def test_user_vector_is_recency_weighted_mean_of_history():
    vectors = np.eye(4, dtype=np.float32)
    split = make_split({"u": "abc"}, n_items=4)
    got = towers.user_vectors(vectors, split, ["u", "nobody"], towers.Pooling(2, 0.5))
    expected = np.array([0, 0.5, 1.0, 0]) / math.hypot(0.5, 1.0)  # last 2 items: b (older), c
    np.testing.assert_allclose(got[0], expected, rtol=1e-6)
    assert not got[1].any()  # no history, zero vector


def test_adapter_starts_as_the_untuned_encoder_and_learns_clusters():
    from tunehub.plugins.recommendation import adapter

    rng = np.random.default_rng(0)
    n, dim = 40, 16
    base = rng.normal(size=(n, dim)).astype(np.float32)
    base /= np.linalg.norm(base, axis=1, keepdims=True)
    history = {}
    for u in range(200):  # users stay inside one half of the catalogue
        half = u % 2
        history[f"u{u}"] = [int(i) for i in rng.choice(n // 2, size=6, replace=False) + half * n // 2]
    catalog = dataset.Items([str(i) for i in range(n)], [""] * n, [""] * n)
    split = dataset.Split(catalog, history, {u: set(h) for u, h in history.items()})
    val = fusion.validation(split, 0.0, 0)
    pooling = towers.Pooling(10, 1.0)

    def validate(params):
        vectors = adapter.apply(params, base, "tanh")
        return fusion.validation_ndcg(towers.TextScorer(vectors, val.split, pooling), val.split,
                                      val.warm)

    for kind, rank in (("tanh", 0), ("tanh", 4), ("linear", 0), ("mlp", 0)):
        untouched = {k: v.numpy() for k, v in adapter.init_params(dim, kind, 8, 0, rank).items()}
        np.testing.assert_allclose(adapter.apply(untouched, base, kind), base, atol=1e-6)
    settings = adapter.AdapterSettings(kind="tanh", rank=8, epochs=5, batch_size=32, learning_rate=1e-2,
                                       patience=6)
    params, log = adapter.train_adapter(base, val.split, pooling, settings, validate)
    assert log[0]["epoch"] == 0 and len(log) > 1
    assert log[-1]["loss"] < log[1]["loss"]
    steps = [row["step"] for row in log if "loss" in row]  # the report's loss curve
    assert len(steps) > 1 and steps == sorted(set(steps)) and steps[0] > 0
    assert set(params) == {"linear.weight", "linear.bias"}  # low-rank factors multiplied out
    best = max(row["validation"] for row in log)
    assert validate(params) == pytest.approx(best, abs=1e-4)  # the best epoch is kept
    assert validate(params) > 1.2 * validate({})  # the clusters were learnt


# -- cold items and fusion ----------------------------------------------------------------


def cold_setup():
    # f has no interactions; its text vector is b's. a-lovers also like b.
    history = {"u1": "ab", "u2": "ab", "u3": "abc", "u4": "cd", "u5": "cde", "u6": "a"}
    split = make_split(history)
    vectors = np.eye(6, dtype=np.float32)
    vectors[5] = vectors[1]
    return split, vectors


def test_cold_items_get_finite_imputed_scores_and_reach_the_top_k():
    split, vectors = cold_setup()
    signals = {"text": towers.TextScorer(vectors, split, towers.Pooling()),
               "ease": collab.EASE(split, 1.0)}
    choice = fusion.Fusion({"text": 1.0, "ease": 1.0, "pop": 0.5})
    scorer = fusion.FusedScorer(signals, split, vectors, choice)
    assert scorer.cold.tolist() == [5]
    parts = scorer.parts(["u6"])
    raw = signals["ease"](["u6"])[0]
    ease_z = (raw - raw.mean()) / raw.std()
    # f reads exactly like b, so it takes b's collaborative score (and popularity)
    assert parts["ease"][0, 5] == pytest.approx(parts["ease"][0, 1], abs=1e-4)
    assert raw[5] == 0.0 and ease_z[5] < ease_z[1]  # without imputation f would trail b
    assert scorer.prior[5] == pytest.approx(scorer.prior[1], abs=1e-4)
    scores = scorer(["u6"])[0]
    assert np.isfinite(scores).all()
    own = scorer.combine(parts, fusion.Fusion({"text": 1.0}, 0.5, {"ease": 2.0}))[0]
    assert own[5] == pytest.approx(parts["ease"][0, 5] + 0.5)  # cold items' own weights
    assert own[1] == pytest.approx(parts["text"][0, 1])
    top = np.argsort(-np.where(np.isin(np.arange(6), list(split.seen["u6"])), -np.inf, scores))[:2]
    assert 5 in top  # the cold item is recommended to the user whose neighbours liked b


def test_validation_split_holds_out_last_items_and_whole_cold_items():
    split = make_split({f"u{n}": "abcdef"[n % 4:] for n in range(12)})
    val = fusion.validation(split, 0.2, seed=0)
    cold_items = {item for _, item in val.cold}
    assert cold_items and all(item not in h for h in val.split.history.values() for item in cold_items)
    for user in split.history:
        kept = [i for i in split.history[user] if i not in cold_items]
        held = [item for u, item in val.warm if u == user]
        assert held == kept[-min(3, len(kept) - 1):] if len(kept) > 1 else held == []
        assert val.split.history[user] == kept[:len(kept) - len(held)]  # one item at least stays
        assert not set(held) & val.split.seen[user]


def test_fusion_weights_come_from_validation_cases():
    split, vectors = cold_setup()
    val = fusion.Validation(split, warm=[("u1", 3), ("u2", 3), ("u6", 4)], cold=[("u4", 5)])
    informative = np.zeros((6, 6), dtype=np.float32)
    informative[:, 3], informative[:, 4] = 1.0, 0.5  # knows the validation targets
    users = {u: n for n, u in enumerate(sorted(split.history))}
    noise = np.random.default_rng(0).normal(size=(6, 6)).astype(np.float32)

    def lookup(table):
        return lambda us: table[[users[u] for u in us]]

    signals = {"text": towers.TextScorer(vectors, split, towers.Pooling()),
               "transitions": lookup(informative), "itemknn": lookup(noise)}
    scorer = fusion.FusedScorer(signals, split, vectors, fusion.Fusion())
    choice, report, _ = fusion.choose_fusion(scorer, val)
    assert choice.weights["transitions"] > 0
    assert choice.cold_weights is not None  # cold items are weighted on the cold cases
    assert report["fused (chosen)"]["ndcg@10"] >= report["itemknn only"]["ndcg@10"]
    assert report["fused (chosen)"]["ndcg@10"] >= report["text only"]["ndcg@10"]
    # the cold bias keeps the cold case at least as findable as text alone
    assert report["fused (chosen)"]["cold_start_hr@10"] >= report["text only"]["cold_start_hr@10"]


def baseline_setup(n_items: int = 30, n_users: int = 40):
    """Validation where one table knows every warm target (a baseline that no fused mix
    beats) and three items have no training interactions (the cold cases' targets)."""
    rng = np.random.default_rng(0)
    ids = [f"i{i:02d}" for i in range(n_items)]
    catalog = dataset.Items(ids, ids, ids)
    history = {f"u{u}": [int(i) for i in rng.choice(n_items - 3, size=6, replace=False)]
               for u in range(n_users)}
    split = dataset.Split(catalog, history, {u: set(h) for u, h in history.items()})
    targets = {u: int(rng.choice(sorted(set(range(n_items - 3)) - set(h))))
               for u, h in history.items()}
    cold = [(f"u{u}", n_items - 3 + u % 3) for u in range(10)]
    val = fusion.Validation(split, list(targets.items()), cold)
    rows = {u: n for n, u in enumerate(history)}
    oracle = rng.normal(size=(n_users, n_items)).astype(np.float32)
    oracle[[rows[u] for u in targets], list(targets.values())] = 10.0
    vectors = rng.normal(size=(n_items, 8)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    noise = rng.normal(size=(n_users, n_items)).astype(np.float32)

    def lookup(table):
        return lambda users: table[[rows[u] for u in users]]

    text = towers.TextScorer(vectors, split, towers.Pooling())
    return split, val, vectors, text, lookup(oracle), lookup(noise)


def test_the_cold_guard_never_pushes_the_fusion_below_a_baseline_on_validation():
    split, val, vectors, text, oracle, _ = baseline_setup()
    scorer = fusion.FusedScorer({"text": text, "ease": oracle}, split, vectors, fusion.Fusion())
    # without a floor, raising cold items to the (unreachable) reference costs warm NDCG@10
    loose, report, _ = fusion.choose_fusion(scorer, val, cold_reference=1.0)
    assert report["fused (chosen)"]["ndcg@10"] < report["ease only"]["ndcg@10"] == 1.0
    choice, report, why = fusion.choose_fusion(scorer, val, cold_reference=1.0,
                                               baselines={"ease": "ease"})
    assert report["ease baseline"]["ndcg@10"] == 1.0  # EASE's own scores rank every target first
    assert report["fused (chosen)"]["ndcg@10"] >= report["ease baseline"]["ndcg@10"]
    assert choice.cold_bias < loose.cold_bias
    # cold items as findable as the floor allows: more than EASE alone finds them
    assert report["fused (chosen)"]["cold_start_hr@10"] > report["ease only"]["cold_start_hr@10"]
    assert "best baseline: ease 1.0000" in why and "kept cold-start HR@10 at the reference" in why


def test_a_baseline_alone_ships_when_no_fused_mix_beats_it_on_validation():
    split, val, vectors, text, oracle, noise = baseline_setup()
    signals = {"text": text, "transitions": noise, "itemknn": oracle}  # itemknn: a baseline only
    scorer = fusion.FusedScorer(signals, split, vectors, fusion.Fusion())
    choice, report, why = fusion.choose_fusion(
        scorer, val, baselines={"itemknn": "itemknn", "transitions": "transitions",
                                "popularity": "pop"}, mix=["text", "transitions", "pop"])
    assert choice.weights == {"itemknn": 1.0}
    assert choice.cold_weights is not None and "itemknn" not in choice.cold_weights
    chosen = report["fused (chosen)"]
    assert chosen["ndcg@10"] >= max(report[f"{b} baseline"]["ndcg@10"]
                                    for b in ("itemknn", "transitions", "popularity"))
    assert chosen["cold_start_hr@10"] >= report["text only"]["cold_start_hr@10"]  # guard kept
    assert why.startswith("itemknn alone: validation NDCG@10 1.0000")
    assert why.endswith("; no fused mix kept NDCG@10 at itemknn's and cold-start HR@10 at "
                        "the reference")
    parts = scorer.parts([u for u, _ in val.warm])
    assert np.array_equal(scorer.combine(parts, choice)[:, :-3],  # warm items: itemknn's order
                          parts["itemknn"][:, :-3])


def test_the_rules_of_the_choice_in_order():
    # (weights, cold bias, cold items imputed) -> (warm NDCG@10, cold HR@10)
    values = {("mix", 0.0, True): (0.62, 0.9), ("mix", -1.0, True): (0.64, 0.1),
              ("ease", 0.0, True): (0.63, 0.8), ("ease", -1.0, True): (0.65, 0.0),
              ("ease", 0.0, False): (0.7, 0.0)}  # EASE as it ranks

    def measure(option):
        return values.get((next(iter(option.weights)), option.cold_bias, option.impute_cold),
                          (0.0, 0.0))

    candidates = {"the fused mix": {"mix": 1.0}, "ease alone": {"ease": 1.0}}
    as_is = {"ease": fusion.Fusion({"ease": 1.0}, impute_cold=False)}

    def choose(reference, floor):
        label, choice, rule, _ = fusion._choose(candidates, {"text": 1.0}, as_is, measure,
                                                reference, floor)
        return label, choice.cold_bias, choice.impute_cold, rule

    # choose(cold reference, floor): the best warm NDCG@10 keeping both, else the best cold
    assert choose(0.85, 0.6) == ("the fused mix", 0.0, True, "both")
    assert choose(0.5, 0.6) == ("ease alone", 0.0, True, "both")  # beats the mix, keeps cold
    assert choose(0.0, 0.0) == ("ease as it ranks", 0.0, False, "both")
    assert choose(0.95, 0.62) == ("the fused mix", 0.0, True, "floor")
    assert choose(0.5, 0.7) == ("ease as it ranks", 0.0, False, "floor")  # only it keeps up


def test_a_baseline_as_it_ranks_is_saved_and_served_as_it_was_chosen():
    from tunehub.plugins.recommendation import head, scoring

    split, vectors = cold_setup()
    choice = fusion.Fusion({"ease": 1.0}, impute_cold=False)
    meta = {"fusion": choice.as_dict(), "pooling": towers.Pooling().as_dict(),
            "signals": ["ease"], "ease_lambda": 1.0}
    served = head._scorer(meta, split, vectors)(["u6"])[0]
    raw = collab.EASE(split, 1.0)(["u6"])[0]
    assert raw[5] == 0.0  # f, the cold item: EASE has no score for it
    assert served == pytest.approx(scoring.standardize(raw[None])[0], abs=1e-5)  # nothing imputed
    imputed = head._scorer({**meta, "fusion": fusion.Fusion({"ease": 1.0}).as_dict()}, split,
                           vectors)(["u6"])[0]
    assert imputed[5] > served[5]  # imputed from b, which a-lovers like


def test_the_baselines_kept_up_with_are_parts_of_the_fusion(monkeypatch):
    split = make_split({"u1": "ab", "u2": "bc"})
    found = recipe.baseline_parts(split, ["popularity", "itemknn", "ease"])
    assert found == {"popularity": "pop", "itemknn": "itemknn", "ease": "ease"}
    monkeypatch.setattr(collab, "EASE_MAX_ITEMS", 2)  # three items with interactions
    assert recipe.baseline_parts(split, ["ease", "transitions"]) == {"transitions": "transitions"}


# -- settings checked before any model loads ----------------------------------------------


@pytest.mark.parametrize("override, message", [
    ("head.adapter=deep", "head.adapter: 'deep' is not one of tanh, linear, none"),
    ("head.signals=ease,svd", "unknown signal.*svd"),
    ("head.never_below=ease,untuned", "head.never_below: untuned cannot be kept up with"),
])
def test_bad_head_settings_are_clear_errors(override, message):
    from tunehub.core.running.runner import validate_data

    with pytest.raises(ConfigError, match=message):
        validate_data("recommendation-scoring", overrides=[override])


def test_ease_baseline_over_the_item_limit_is_refused_before_training(monkeypatch):
    from tunehub.core.running.runner import validate_data

    monkeypatch.setattr(collab, "EASE_MAX_ITEMS", 50)  # the sample data has ~200 items
    with pytest.raises(ConfigError, match="stops at 50 items"):
        validate_data("recommendation-scoring")
    data = validate_data("recommendation-scoring",
                         overrides=["baselines=popularity,itemknn,transitions,untuned"])
    assert data.eval.test  # without `ease` the same data loads
