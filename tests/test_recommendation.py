"""The recommendation-scoring task: split, protocols, metrics, baselines, errors, a tiny run."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest
from click.testing import CliRunner
from conftest import tiny_overrides, write_csv

from tunehub.core.running import ranking
from tunehub.core.errors import DataError
from tunehub.plugins.recommendation import dataset, itemknn_baseline, popularity_baseline, scoring

ITEMS = [
    ["a", "Space Saga", "sci-fi", "Starships and distant planets."],
    ["b", "Robot Dawn", "sci-fi", "Machines wake up on a colony."],
    ["c", "Murder at Noon", "crime", "A detective and a locked room."],
    ["d", "The Heist", "crime", "A crew plans one last robbery."],
    ["e", "Love in Paris", "romance", "Two strangers meet on a bridge."],
    ["f", "Summer Letters", "romance", "Letters between old friends."],
]


def config(**dataset_values):
    ds = {"items": "", "item_text": ["title", "category", "description"], "min_rating": 0.0,
          "cold_start_fraction": 0.0, "split_seed": 13,
          "columns": {"user": "user_id", "item": "item_id", "rating": "rating",
                      "timestamp": "timestamp"}}
    ds.update(dataset_values)
    return {"dataset": ds}


@pytest.fixture
def items_csv(tmp_path):
    return write_csv(tmp_path / "items.csv", ["item_id", "title", "category", "description"], ITEMS)


def load(tmp_path, rows, items_csv, header=("user_id", "item_id", "rating", "timestamp"), **ds):
    path = write_csv(tmp_path / "interactions.csv", list(header), rows)
    return dataset.load(config(**ds), {"train": path, "items": items_csv})


# -- split ----------------------------------------------------------------------------


def test_leave_last_out_by_timestamp_without_leakage(tmp_path, items_csv):
    rows = [["u1", "c", 5, 30], ["u1", "a", 5, 10], ["u1", "b", 4, 20],  # file order != time
            ["u1", "d", 1, 40],  # a later, non-positive row: dropped with the test item
            ["u2", "a", 5, 5], ["u2", "e", 5, 6],
            ["u3", "f", 5, 1]]  # a single positive: training only
    data = load(tmp_path, rows, items_csv, min_rating=4.0)
    split, cases = data.train, data.eval
    ids = split.catalog.ids
    named = {user: ids[item] for user, item in cases.test}
    assert named == {"u1": "c", "u2": "e"}
    assert [ids[i] for i in split.history["u1"]] == ["a", "b"]
    assert {ids[i] for i in split.seen["u1"]} == {"a", "b"}  # neither c (test) nor d (later)
    assert [ids[i] for i in split.history["u3"]] == ["f"]
    for user, item in cases.test:
        assert item not in split.history[user] and item not in split.seen[user]
    assert "timestamp" in data.summary["split"] and "rating >= 4" in data.summary["positive"]


def test_random_order_without_timestamps_is_seeded(tmp_path, items_csv):
    rows = [[f"u{u}", item] for u in range(5) for item in "abcdef"]
    first = load(tmp_path, rows, items_csv, header=("user_id", "item_id"))
    again = load(tmp_path, rows, items_csv, header=("user_id", "item_id"))
    assert first.eval.test == again.eval.test
    assert len({item for _, item in first.eval.test}) > 1  # not simply the last row
    assert "random order (seed 13" in first.summary["split"]
    assert first.summary["positive"] == "every interaction"
    for user, item in first.eval.test:
        assert item not in first.train.seen[user]


def test_cold_start_items_leave_training_entirely(tmp_path, items_csv):
    rows = [[f"u{u}", item, 5, t] for u in range(6) for t, item in enumerate("abcdef")]
    data = load(tmp_path, rows, items_csv, cold_start_fraction=0.34)
    assert "2 held out entirely" in data.summary["cold-start items"]
    assert len(data.eval.cold) == 6  # every user interacted with them: one case each
    in_training = set().union(*data.train.seen.values())
    tested = {item for _, item in data.eval.test}
    cold = set(range(6)) - in_training - tested
    assert len(cold) == 2 and {item for _, item in data.eval.cold} <= cold


def test_items_missing_from_items_file_are_dropped_and_counted(tmp_path, items_csv):
    rows = [["u1", "a", 5, 1], ["u1", "zz", 5, 2], ["u1", "b", 5, 3]]
    data = load(tmp_path, rows, items_csv)
    assert data.summary["rows dropped (item not in the items file)"] == 1
    assert data.summary["unknown item ids"] == 1


@pytest.mark.parametrize("rows, header, ds, message", [
    ([["u1", "a"]], ("user", "item_id"), {}, "no column 'user_id' for the user role"),
    ([["u1", "a", "great", 1]], ("user_id", "item_id", "rating", "timestamp"), {}, "rating 'great'"),
    ([["u1", "a", 1]], ("user_id", "item_id", "timestamp"), {"min_rating": 3.0}, "no rating column"),
    ([["u1", "zz", 5, 1]], ("user_id", "item_id", "rating", "timestamp"), {}, "none of its item ids"),
    ([["u1", "a", 5, 1]], ("user_id", "item_id", "rating", "timestamp"), {}, "nothing can be held out"),
    ([["u1", "a", 5, 1]], ("user_id", "item_id", "rating", "timestamp"), {"item_text": ["genres"]},
     "no text column 'genres'"),
])
def test_bad_files_give_clear_errors(tmp_path, items_csv, rows, header, ds, message):
    with pytest.raises(DataError, match=message):
        load(tmp_path, rows, items_csv, header=header, **ds)


def test_missing_items_file_is_a_clear_error(tmp_path):
    path = write_csv(tmp_path / "i.csv", ["user_id", "item_id"], [["u1", "a"]])
    with pytest.raises(DataError, match="dataset.items"):
        dataset.load(config(), {"train": path})
    with pytest.raises(DataError, match="no such file"):
        dataset.load(config(items=str(tmp_path / "nope.csv")), {"train": path})


# -- protocols and metrics ------------------------------------------------------------


def hand_split():
    catalog = dataset.Items(list("abcdef"), list("ABCDEF"), list("abcdef"))
    history = {"u1": [0, 1], "u2": [2], "u3": [0, 2, 3]}
    seen = {user: set(items) for user, items in history.items()}
    return dataset.Split(catalog, history, seen)


def fixed(scores):
    return lambda users: np.array([scores[u] for u in users], dtype=float)


def test_full_ranking_excludes_training_items_and_matches_hand_counts():
    split = hand_split()
    scores = {"u1": [9, 8, 1, 5, 5, 2], "u2": [3, 2, 7, 1, 6, 0]}
    cases = dataset.Cases(test=[("u1", 3), ("u2", 5)])
    out = scoring.evaluate(fixed(scores), split, cases, seed=0)
    # u1: a, b are training items; d and e tie at 5; target d
    assert out["ranked"][0][:2] in (["d", "e"], ["e", "d"]) and out["ranked"][0][2:] == ["f", "c"]
    assert out["positions"][0] == [0, 1, 3]  # nothing higher, one tie, negatives c, e, f
    assert out["positions"][1] == [4, 0, 4]  # u2's target f is below a, b, d, e
    assert out["ranked"][1] == ["e", "a", "b", "d", "f"]
    auc = scoring.auc(out)
    assert math.isclose(auc, ((3 - 0 - 0.5) / 3 + 0 / 4) / 2)
    assert ranking.recall_at(1)({"ranked": out["ranked"], "relevant": out["relevant"]}) in (0.0, 0.5)
    assert ranking.recall_at(10)(out) == 1.0
    ndcg = ranking.ndcg_at(10)(out)
    u1 = 1.0 if out["ranked"][0][0] == "d" else 1 / math.log2(3)
    assert math.isclose(ndcg, (u1 + 1 / math.log2(6)) / 2)


def test_sampled_protocol_uses_target_plus_seeded_negatives():
    n = 300
    catalog = dataset.Items([f"i{i}" for i in range(n)], [""] * n, [""] * n)
    split = dataset.Split(catalog, {"u": [0, 1]}, {"u": {0, 1}})
    target = 7
    scores = {"u": np.arange(n, dtype=float)}  # higher id, higher score
    cases = dataset.Cases(test=[("u", target)])
    first = scoring.sampled_ranking(fixed(scores), split, cases.test, seed=3, k=100)
    again = scoring.sampled_ranking(fixed(scores), split, cases.test, seed=3, k=100)
    other = scoring.sampled_ranking(fixed(scores), split, cases.test, seed=4, k=100)
    ranked = first[0][0]
    assert first == again and other != first
    assert len(ranked) == 100 and "i7" in ranked and not {"i0", "i1"} & set(ranked)
    assert [int(i[1:]) for i in ranked] == sorted((int(i[1:]) for i in ranked), reverse=True)
    # hand count: the target's rank is 1 + the sampled negatives above it
    above = sum(int(i[1:]) > target for i in ranked)
    hr = scoring.on("sampled", ranking.recall_at(10))
    out = {"sampled": {"ranked": first[0], "relevant": first[1]}}
    assert hr(out) == (1.0 if above < 10 else 0.0)


def test_metrics_are_registered_for_the_task():
    from tunehub.core.extending.plugins import load_catalog

    catalog = load_catalog()
    for name in ("hr@10", "ndcg@10", "auc", "hr@10_sampled", "ndcg@10_sampled", "cold_start_hr@10"):
        catalog.metric(name)
    from tunehub.core.running.runner import baseline_fn

    head = catalog.head("two-tower")
    for name in ("popularity", "itemknn", "ease", "transitions", "untuned"):
        assert callable(baseline_fn(catalog, head, name))
    out = {"cold_start": {"ranked": [["a", "b"], ["c"]], "relevant": [["b"], ["z"]]}}
    assert catalog.metric("cold_start_hr@10").fn(out) == 0.5


# -- baselines -------------------------------------------------------------------------


def test_popularity_and_itemknn_on_a_known_answer(tmp_path, items_csv):
    # u0-u3 like a, b (then e, their test item); u4-u8 like c, d (then f); u9 has a, tests b
    rows = [[f"u{u}", x, 5, t] for u in range(4) for t, x in enumerate("abe")]
    rows += [[f"u{u}", x, 5, t] for u in range(4, 9) for t, x in enumerate("cdf")]
    rows += [["u9", "a", 5, 1], ["u9", "b", 5, 2]]
    data = load(tmp_path, rows, items_csv)
    cfg = {"dataset": {"split_seed": 13}}
    ids = data.train.catalog.index
    counts = scoring.popularity(data.train)
    assert [counts[ids[x]] for x in "abcdef"] == [5, 4, 5, 5, 0, 0]
    u9 = [u for u, _ in data.eval.test].index("u9")
    pop = popularity_baseline(data, cfg)["ranked"][u9]
    assert set(pop[:2]) == {"c", "d"} and pop[2] == "b" and set(pop[3:]) == {"e", "f"}  # not a
    knn = itemknn_baseline(data, cfg)
    assert knn["ranked"][u9][0] == "b"  # b co-occurs with a; c, d never do
    score = scoring.ItemKNN(data.train)(["u9"])[0]
    assert math.isclose(score[ids["b"]], 4 / math.sqrt(5 * 4), rel_tol=1e-5)  # cosine by hand
    assert score[ids["c"]] == 0.0 and score[ids["e"]] == 0.0
    assert scoring.evaluate(scoring.ItemKNN(data.train), data.train, data.eval, 13)["ranked"] == \
        knn["ranked"]


# -- a tiny end-to-end run, then predict ----------------------------------------------


@pytest.fixture
def tiny_rec(tmp_path, items_csv):
    rng = np.random.default_rng(0)
    rows = []
    for u in range(16):
        liked = ["a", "b"] if u % 3 == 0 else ["c", "d"] if u % 3 == 1 else ["e", "f"]
        picks = liked + [str(x) for x in rng.choice(list("abcdef"), size=2, replace=False)]
        for t, item in enumerate(dict.fromkeys(picks)):
            rows.append([f"u{u}", item, 5, 100 * u + t])
    return write_csv(tmp_path / "interactions.csv", ["user_id", "item_id", "rating", "timestamp"],
                     rows), items_csv


def test_end_to_end_tiny_run_then_predict(tiny_rec, tiny_model, capsys, monkeypatch):
    from tunehub.core.cli import main
    from tunehub.core.running import progress
    from tunehub.core.running.runner import run_task

    interactions, items = tiny_rec
    monkeypatch.setattr(progress, "ANNOUNCE_AFTER", 0.0)  # every phase, however quick, in the log
    result = run_task("recommendation-scoring", data=interactions, model=str(tiny_model),
                      overrides=tiny_overrides(**{"dataset.items": str(items),
                                                  "dataset.cold_start_fraction": "0.2"}))
    log = capsys.readouterr().err
    stages = ["encoding 6 items with the base encoder", "scoring the untuned text tower",
              "training the item-tower adapter (tanh)", "choosing EASE's lambda on validation",
              "choosing the fusion weights on validation", "fusion: score = ",
              "scoring the fused model", "scoring baseline popularity", "saved recommendation-scoring@v1"]
    places = [log.find(stage) for stage in stages]
    assert -1 not in places and places == sorted(places), log  # each stage, in order
    assert set(result.baselines) == {"popularity", "itemknn", "ease", "transitions", "untuned"}
    for values in (result.metrics, *result.baselines.values()):
        assert {"hr@10", "ndcg@10", "auc", "hr@10_sampled", "cold_start_hr@10"} <= set(values)
        assert 0.0 <= values["auc"] <= 1.0
    assert "leave-last-out" in result.notes["split"] and "score =" in result.notes["scoring"]
    chosen = result.notes["fusion on validation"]["fused (chosen)"]  # reported, from validation
    assert {"ndcg@10", "cold_start_hr@10"} <= set(chosen)
    own = {row: values["ndcg@10"] for row, values in result.notes["fusion on validation"].items()
           if row.endswith(" baseline")}
    assert set(own) == {"popularity baseline", "itemknn baseline", "ease baseline",
                        "transitions baseline"}
    assert chosen["ndcg@10"] >= max(own.values())  # never below a baseline on validation
    assert "validation NDCG@10" in result.notes["fusion choice"]
    assert result.below_baseline == [b for b in result.below_baseline if b["metric"] == "ndcg@10"]
    assert result.metrics["cold_start_hr@10"] > 0  # cold items are ranked, not left out

    from tunehub.core.running.runner import evaluate

    again = evaluate("recommendation-scoring", write=False)  # the saved model, same split
    for name in ("hr@10", "ndcg@10", "auc", "hr@10_sampled"):
        assert again.metrics[name] == pytest.approx(result.metrics[name], abs=1e-4)

    cli = CliRunner()
    out = cli.invoke(main, ["predict", "recommendation-scoring", "u0", "--set", "predict.k=3", "--json"])
    assert out.exit_code == 0, out.output
    answer = json.loads(out.stdout)[0]
    got = [r["item_id"] for r in answer["results"]]
    with open(interactions) as handle:
        own = {line.split(",")[1] for line in handle if line.startswith("u0,")}
    assert {"a", "b"} <= own and own.isdisjoint(got)  # u0's own items are excluded
    assert len(got) == min(3, 6 - len(own)) >= 1
    assert all({"item_id", "title", "score"} <= set(r) for r in answer["results"])
    scores = [r["score"] for r in answer["results"]]
    assert scores == sorted(scores, reverse=True)

    out = cli.invoke(main, ["predict", "recommendation-scoring", "u0", "--set", "predict.items=f,a",
                            "--json"])
    assert out.exit_code == 0, out.output
    given = json.loads(out.stdout)[0]["results"]
    assert {r["item_id"] for r in given} == {"a", "f"}
    assert next(r for r in given if r["item_id"] == "a")["seen"] is True

    out = cli.invoke(main, ["predict", "recommendation-scoring", "--user", "u0"])  # old spelling
    assert out.exit_code == 0 and "title" in out.output and "deprecated" in out.stderr

    out = cli.invoke(main, ["predict", "recommendation-scoring", "nobody"])
    assert out.exit_code == 2 and "unknown user 'nobody'" in out.output
    out = cli.invoke(main, ["predict", "recommendation-scoring", "u0", "--set", "predict.items=zz"])
    assert out.exit_code == 2 and "unknown item id(s) zz" in out.output
