"""customer-service-qa: data formats and errors, calibration, BM25, and a tiny end-to-end run."""
from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

import tunehub
from tunehub.core.cli import main
from tunehub.core.errors import ConfigError, DataError, ModelError
from tunehub.plugins.customer_service import DATA
from tunehub.plugins.customer_service.data import QASplits, Queries, calibration_split, readable
from tunehub.plugins.customer_service.retrieval import (BM25, calibrate, mix_weights, no_answer_precision,
                                                      no_answer_recall)

from conftest import tiny_overrides, write_csv

FAQ = [
    ["card-lost", "What should I do if I lost my card?", "Report it lost in the app.", "cards"],
    ["pin-reset", "How do I reset my PIN?", "Go to Cards > PIN and choose a new one.", "cards"],
    ["fees", "What are the monthly fees?", "The standard account is free.", "fees"],
    ["abroad", "Can I use my card abroad?", "Yes, in over 150 countries.", "travel"],
]
QUERIES = {
    "card-lost": ["i lost my card", "my card is missing", "cannot find my debit card",
                  "card gone, help", "dropped my card somewhere"],
    "pin-reset": ["forgot my pin", "change pin number", "new PIN please", "reset the pin code",
                  "what's my pin"],
    "fees": ["how much does the account cost", "monthly charge?", "are there fees",
             "price of the account", "do you charge me"],
    "abroad": ["using card in spain", "does my card work overseas", "travelling to japan",
               "card abroad fees", "pay in dollars"],
}
OUT_OF_SCOPE = ["what's the weather tomorrow", "who won the match", "tell me a joke"]


@pytest.fixture
def faq_files(tmp_path):
    faq = write_csv(tmp_path / "faq.csv", ["id", "question", "answer", "category"], FAQ)
    rows = [[q, entry] for entry, texts in QUERIES.items() for q in texts]
    rows += [[q, ""] for q in OUT_OF_SCOPE]
    queries = write_csv(tmp_path / "queries.csv", ["query", "faq_id"], rows)
    return faq, queries


def validate(data, **kwargs):
    return tunehub.validate_data("customer-service-qa", data=data, **kwargs)


def test_packaged_sample_loads_with_out_of_scope_rows_kept_out_of_training():
    data = tunehub.validate_data("customer-service-qa")
    faq = data.info["faq"]
    assert len(faq) == 55 and faq.metadata[0] == {"category": "cards"}
    assert all(data.train.train.faq_ids)  # nothing out of scope is trained on
    assert data.train.calibration.out_of_scope > 0 and data.eval.out_of_scope > 0
    total = len(data.train.train) + len(data.train.calibration) + len(data.eval)
    assert total == 405 and set(data.files) >= {"faq", "train"}


def test_faq_file_with_custom_column_names(tmp_path, faq_files):
    faq, queries = faq_files
    renamed = write_csv(tmp_path / "faq2.jsonl.csv", ["key", "q", "a"], [row[:3] for row in FAQ])
    data = validate(queries, overrides=[f"dataset.faq={renamed}", "dataset.columns.id=key",
                                        "dataset.columns.question=q", "dataset.columns.answer=a"])
    assert data.info["faq"].ids == ["card-lost", "pin-reset", "fees", "abroad"]


def test_intent_style_data_needs_only_column_mapping(tmp_path):
    rows = [[q, entry.replace("-", "_")] for entry, texts in QUERIES.items() for q in texts]
    train = write_csv(tmp_path / "train.csv", ["text", "category"], rows)
    data = validate(train, overrides=["dataset.columns.query=text", "dataset.columns.faq_id=category"])
    faq = data.info["faq"]
    assert faq.ids == ["abroad", "card_lost", "fees", "pin_reset"]
    assert faq.questions[1] == "card lost" and readable("card_arrival") == "card arrival"


@pytest.mark.parametrize("case, match", [
    ("unknown", r"queries.csv, row 3: faq_id 'no-such' is not an id in the FAQ file"),
    ("duplicate", r"faq.csv, row 3: duplicate FAQ id 'card-lost' \(first at row 2\)"),
    ("empty answer", r"faq.csv, row 2: empty 'answer' for FAQ id 'card-lost'"),
    ("missing column", r"no column 'faq_id' for the faq_id role.*--set dataset.columns.faq_id="),
])
def test_data_errors_name_the_file_row_and_fix(tmp_path, faq_files, case, match):
    faq, queries = faq_files
    faq_rows = [list(r) for r in FAQ]
    query_rows = [["lost card", "card-lost"], ["pin?", "pin-reset"]]
    header = ["query", "faq_id"]
    if case == "unknown":
        query_rows[1][1] = "no-such"
    elif case == "duplicate":
        faq_rows[1][0] = "card-lost"
    elif case == "empty answer":
        faq_rows[0][2] = "  "
    else:
        header = ["query", "intent"]
    write_csv(faq, ["id", "question", "answer", "category"], faq_rows)
    write_csv(queries, header, query_rows)
    with pytest.raises(DataError, match=match):
        validate(queries, overrides=[f"dataset.faq={faq}"])


def test_threshold_calibration_separates_right_answers_from_the_rest():
    best = np.array([0.9, 0.85, 0.8, 0.3, 0.25, 0.7])
    right = np.array([True, True, True, False, False, False])
    threshold, note = calibrate(best, right)
    assert 0.7 < threshold < 0.8 and "6 held-out queries" in note
    # nobody handed off: half the gap below the lowest score, so a query scoring as it did
    # (give or take rounding) is answered too
    assert calibrate(np.array([0.5, 0.6]), np.array([True, True]))[0] == pytest.approx(0.45)
    assert calibrate(np.array([0.5, 0.6]), np.array([False, False]))[0] == pytest.approx(0.65)
    assert calibrate(np.zeros(0), np.zeros(0, dtype=bool))[0] == 0.0


def test_calibration_weighs_out_of_scope_queries_by_their_share_of_the_data():
    # two right answers (0.9, 0.6) and two out-of-scope queries scoring between them
    best, right = np.array([0.9, 0.6, 0.65, 0.62]), np.array([True, True, False, False])
    counted, _ = calibrate(best, right)
    assert 0.65 < counted < 0.9  # counted once each, two hand-offs buy one lost answer
    calibration = Queries(texts=["a", "b", "c", "d"], faq_ids=["x", "y", "", ""])
    weights = mix_weights(calibration, in_scope_share=0.9)  # the data: 10% out of scope
    assert weights[:2] == pytest.approx([1.8, 1.8]) and weights[2:] == pytest.approx([0.2, 0.2])
    assert (weights * np.array([1, 1, 0, 0])).sum() / weights.sum() == pytest.approx(0.9)
    weighted, note = calibrate(best, right, weights)
    assert weighted < 0.6 and "weighted to the query data's share" in note  # nobody handed off
    assert mix_weights(calibration, None) is None
    assert mix_weights(Queries(texts=["a"], faq_ids=["x"]), 0.9) is None  # one kind only


def test_the_query_mix_counts_training_and_calibration_queries():
    splits = calibration_split(Queries(texts=[f"q{i}" for i in range(40)],
                                       faq_ids=[f"e{i % 4}" if i < 36 else "" for i in range(40)]),
                               0.25, seed=13)
    assert all(splits.train.faq_ids) and splits.calibration.faq_ids.count("") == 4
    assert splits.in_scope_share() == pytest.approx(36 / 40)
    assert QASplits(Queries(), Queries()).in_scope_share() is None


def test_no_answer_metrics_count_out_of_scope_and_wrong_answers():
    outputs = {"ranked": [["a"], ["b"], ["a"], ["c"]], "relevant": [["a"], ["a"], [], ["c"]],
               "handoff": [False, True, True, True]}
    assert no_answer_precision(outputs) == pytest.approx(2 / 3)  # the 'c' hand-off was wrong
    assert no_answer_recall(outputs) == 1.0


def test_bm25_ranks_the_lexical_match_first_and_keeps_the_best_text_per_entry():
    index = BM25(["reset your pin", "lost card", "card fees abroad", "forgot pin number"],
                 owners=[0, 1, 2, 0])
    entries, scores = index.search(["I forgot my pin number", "fees abroad"], 3)
    assert entries[:, 0].tolist() == [0, 2]
    assert len(set(entries[0].tolist())) == 3 and scores[0, 0] > scores[0, 1]


def test_run_then_predict_uses_only_the_artifact(tiny_model, faq_files, tunehub_home):
    faq, queries = faq_files
    overrides = tiny_overrides(**{"dataset.faq": str(faq), "dataset.eval_fraction": "0.3",
                                  "train.batch_size": "4"})
    result = tunehub.run_task("customer-service-qa", data=queries, model=str(tiny_model),
                              overrides=overrides)
    assert set(result.metrics) == {"recall@1", "recall@5", "recall@10", "mrr@10", "ndcg@10",
                                   "no_answer_precision", "no_answer_recall"}
    assert set(result.baselines) == {"untuned", "bm25"}
    model = tunehub_home / "artifacts" / "customer-service-qa" / "v1" / "model"
    for name in ("model.safetensors", "config.json", "modules.json", "tokenizer.json",
                 "faq.jsonl", "retrieval.json", "index/index.faiss", "index/owners.npy"):
        assert (model / name).is_file(), name
    assert not list(model.rglob("*.bin")) and not list(model.rglob("*.pt"))
    report = (model.parent / "report.md").read_text()
    assert "hand-off threshold" in report and "held-out queries" in report

    evaluated = tunehub.evaluate("customer-service-qa", data=queries,
                                 overrides=[f"dataset.faq={faq}"])
    assert set(evaluated.metrics) == set(result.metrics)

    faq.unlink()  # predict needs nothing but the artifact
    queries.unlink()
    out = tunehub.predict("customer-service-qa", ["i lost my card", "tell me a joke"])
    assert len(out) == 2 and len(out[0]["answers"]) == 3
    first = out[0]["answers"][0]
    assert set(first) >= {"id", "question", "answer", "score"}
    assert first["metadata"]["category"] in {"cards", "fees", "travel"}
    assert out[0]["answers"][0]["score"] >= out[0]["answers"][1]["score"]

    settings_file = model / "retrieval.json"
    settings = json.loads(settings_file.read_text())
    settings["threshold"] = 2.0  # cosine never reaches it: every question is handed off
    settings_file.write_text(json.dumps(settings))
    handed = tunehub.predict("customer-service-qa", ["i lost my card"])[0]
    assert handed["handoff"] and handed["reply"] == settings["handoff_message"]
    settings["threshold"] = -2.0
    settings_file.write_text(json.dumps(settings))
    answered = tunehub.predict("customer-service-qa", ["i lost my card"])[0]
    assert not answered["handoff"] and answered["reply"] == answered["answers"][0]["answer"]

    cli = CliRunner().invoke(main, ["predict", "customer-service-qa", "i lost my card", "--json"])
    assert cli.exit_code == 0, cli.stderr
    assert json.loads(cli.stdout)[0]["answers"][0]["id"] in {row[0] for row in FAQ}

    import numpy as np
    import onnxruntime
    from sentence_transformers import SentenceTransformer
    from transformers import AutoTokenizer

    dest = tunehub_home.parent / "qa-export"  # the retriever as ONNX, for other runtimes
    done = CliRunner().invoke(main, ["models", "export", "customer-service-qa@latest", str(dest),
                                     "--onnx", "--json"])
    assert done.exit_code == 0, done.output
    assert json.loads(done.stdout)["onnx_output"] == "sentence_embedding"
    texts = ["i lost my card", "how much does it cost to use my card when travelling abroad?"]
    session = onnxruntime.InferenceSession(str(dest / "model.onnx"))
    batch = AutoTokenizer.from_pretrained(dest)(texts, padding=True, return_tensors="np")
    (vectors,) = session.run(None, {i.name: batch[i.name] for i in session.get_inputs()})
    reference = SentenceTransformer(str(dest), device="cpu").encode(texts)
    assert np.abs(vectors - reference).max() < 1e-4


def test_hard_negative_mining_skips_near_duplicates_of_the_positive(monkeypatch):
    from tunehub.core.models import biencoder

    vectors = {"q": [1, 0], "right": [0.9, 0.436], "paraphrase": [0.95, 0.312],
               "near": [0.5, 0.866], "far": [-1, 0]}
    monkeypatch.setattr(biencoder, "encode", lambda model, texts, batch_size=128: np.array(
        [vectors[t] for t in texts], dtype=np.float32))
    corpus = ["right", "paraphrase", "near", "far"]
    # "paraphrase" scores above the right answer (0.95 > 0.9): within the margin, never a negative
    mined = biencoder.mine_hard_negatives(None, ["q"], ["right"], corpus, 2)
    assert (mined["negative_1"], mined["negative_2"]) == (["near"], ["far"])
    # a margin nothing passes: the least similar texts fill in, the anchor is kept
    mined = biencoder.mine_hard_negatives(None, ["q"], ["right"], corpus, 1, margin=5.0)
    assert mined["negative_1"] == ["far"] and mined["anchor"] == ["q"]
    with pytest.raises(ModelError, match="corpus of more than 4"):
        biencoder.mine_hard_negatives(None, ["q"], ["right"], corpus, 4)


def test_hard_negatives_are_mined_with_the_base_model(tiny_model, faq_files):
    from tunehub.core.models.biencoder import load_encoder, mine_hard_negatives

    faq, queries = faq_files
    model = load_encoder(tiny_model, max_length=16)
    corpus = ["How do I report a lost card?", "What does the account cost?", "Can I pay abroad?"]
    mined = mine_hard_negatives(model, ["lost card", "monthly fee?"], corpus[:2], corpus, 1)
    assert set(mined) == {"anchor", "positive", "negative_1"}
    for anchor, positive, negative in zip(*mined.values()):
        assert negative in corpus and negative != positive

    overrides = tiny_overrides(**{"dataset.faq": str(faq), "dataset.eval_fraction": "0.3",
                                  "train.batch_size": "4", "head.hard_negatives": "1",
                                  "head.loss": "mnrl"})
    result = tunehub.run_task("customer-service-qa", data=queries, model=str(tiny_model),
                              overrides=overrides)
    assert "hard negative" in result.notes["training pairs"]
    assert 0.0 <= result.metrics["recall@1"] <= 1.0
    with pytest.raises(ConfigError, match="hard_negatives must be 0 or more"):
        tunehub.run_task("customer-service-qa", data=queries, model=str(tiny_model),
                         overrides=[*overrides, "head.hard_negatives=-1"])


def test_sample_data_is_packaged():
    assert (DATA / "faq.csv").is_file() and (DATA / "queries.csv").is_file()


def test_all_entries_loss_is_the_softmax_over_every_entry(tiny_model):
    import torch
    import torch.nn.functional as F

    from tunehub.core.models.biencoder import load_encoder
    from tunehub.plugins.customer_service.objective import all_entries_loss

    model = load_encoder(tiny_model, max_length=16)
    entries = [row[1] for row in FAQ]
    questions, labels = ["i lost my card", "monthly charge?"], torch.tensor([0, 2])
    loss = all_entries_loss(model, entries, scale=20.0)
    value = loss([model.preprocess(questions)], labels)
    with torch.no_grad():
        q = F.normalize(torch.tensor(model.encode(questions)), dim=-1)
        e = F.normalize(torch.tensor(model.encode(entries)), dim=-1)
    assert torch.allclose(value, F.cross_entropy(20.0 * q @ e.T, labels), atol=1e-4)
    value.backward()  # entry texts are re-encoded with gradients: the entries move too
    words = model[0].auto_model.get_input_embeddings().weight
    only_in_entries = model.tokenizer.convert_tokens_to_ids("abroad")
    assert words.grad[only_in_entries].abs().sum() > 0

    sampled = all_entries_loss(model, entries, scale=20.0, max_entries=2)
    picked, targets = sampled.chosen(torch.tensor([3, 3, 1]))
    assert len(picked) == 2 and {1, 3} == set(picked)  # the batch's own entries always kept
    assert [picked[t] for t in targets.tolist()] == [3, 3, 1]


def test_all_entries_objective_trains_end_to_end(tiny_model, faq_files, tunehub_home):
    from tunehub.core.models.biencoder import encode, load_encoder

    faq, queries = faq_files
    overrides = tiny_overrides(**{"dataset.faq": str(faq), "dataset.eval_fraction": "0.3",
                                  "train.batch_size": "4", "head.loss": "all-entries"})
    result = tunehub.run_task("customer-service-qa", data=queries, model=str(tiny_model),
                              overrides=overrides)
    assert "softmax over all 4 entries" in result.notes["training pairs"]
    tuned = tunehub_home / "artifacts" / "customer-service-qa" / "v1" / "model"
    texts = ["i lost my card", "monthly charge?"]
    moved = encode(load_encoder(tuned), texts) - encode(load_encoder(tiny_model), texts)
    assert np.isfinite(moved).all() and np.abs(moved).max() > 1e-3  # the encoder was trained
    with pytest.raises(ConfigError, match="head.loss must be one of"):
        tunehub.run_task("customer-service-qa", data=queries, model=str(tiny_model),
                         overrides=[*overrides, "head.loss=softmax"])
    with pytest.raises(ConfigError, match="hard_negatives applies to head.loss=mnrl"):
        tunehub.run_task("customer-service-qa", data=queries, model=str(tiny_model),
                         overrides=[*overrides, "head.hard_negatives=1"])
