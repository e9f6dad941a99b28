"""Entity extraction without a model: tag schemes, spans, decoding, metrics, readers, baselines."""
from __future__ import annotations

import json

import numpy as np
import pytest

from tunehub.core.running.metrics import macro_f1
from tunehub.plugin import DataError
from tunehub.plugins.entity_extraction import build_gazetteer, gazetteer_tags
from tunehub.plugins.entity_extraction import metrics as m
from tunehub.plugins.entity_extraction.data import read_file, words
from tunehub.plugins.entity_extraction.model import decode, entities
from tunehub.plugins.entity_extraction.tags import TagError, repair, spans, to_iob2, viterbi


# -- tag schemes ----------------------------------------------------------------------------
def test_iob1_and_bioes_convert_to_iob2():
    assert to_iob2(["I-PER", "I-PER", "B-PER", "O", "I-LOC"], "iob1") == \
        ["B-PER", "I-PER", "B-PER", "O", "B-LOC"]
    assert to_iob2(["B-ORG", "I-ORG", "E-ORG", "S-LOC", "O", "U-PER", "B-PER", "L-PER"], "bioes") == \
        ["B-ORG", "I-ORG", "I-ORG", "B-LOC", "O", "B-PER", "B-PER", "I-PER"]
    assert to_iob2(["B-ORG", "I-ORG", "O"], "iob2") == ["B-ORG", "I-ORG", "O"]


@pytest.mark.parametrize("tags, scheme, index, words_", [
    (["O", "I-PER"], "iob2", 1, "follows 'O'"),
    (["B-ORG", "I-PER"], "iob2", 1, "follows 'B-ORG'"),
    (["I-PER"], "iob2", 0, "continues no entity"),
    (["B-PER", "O"], "bioes", 1, "never closed"),
    (["O", "E-PER"], "bioes", 1, "never opened"),
    (["B-PER", "I-PER"], "bioes", 1, "ends inside an entity"),
    (["S-PER"], "iob2", 0, "BIOES tag"),
    (["PER"], "iob2", 0, "not a tag"),
])
def test_broken_tag_sequences_name_the_token(tags, scheme, index, words_):
    with pytest.raises(TagError, match=words_) as caught:
        to_iob2(tags, scheme)
    assert caught.value.index == index


def test_spans_follow_conll_semantics():
    # an I-X after O or another type opens an entity; B-X always opens one
    tags = ["B-PER", "I-PER", "I-ORG", "O", "I-LOC", "I-LOC", "B-LOC", "B-LOC", "I-LOC"]
    assert spans(tags) == [(0, 2, "PER"), (2, 3, "ORG"), (4, 6, "LOC"), (6, 7, "LOC"), (7, 9, "LOC")]
    assert repair(["O", "I-PER", "I-PER", "I-ORG"]) == ["O", "B-PER", "I-PER", "B-ORG"]


def test_viterbi_returns_the_best_valid_path():
    labels = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"]
    probs = np.array([[0.6, 0.3, 0.0, 0.1, 0.0],   # argmax O
                      [0.1, 0.0, 0.5, 0.0, 0.4],   # argmax I-PER: invalid after O
                      [0.9, 0.0, 0.1, 0.0, 0.0]])
    greedy = decode(probs, labels, "argmax")
    best = decode(probs, labels, "viterbi")
    assert greedy == ["O", "B-PER", "O"]  # repaired, not the best valid path
    assert best == ["B-PER", "I-PER", "O"]  # 0.3*0.5 beats 0.6*0.1 (O, O) and 0.6*0.0
    rng = np.random.default_rng(0)
    for _ in range(50):  # never an I-X that continues nothing
        path = [labels[i] for i in viterbi(np.log(rng.dirichlet(np.ones(5), size=7)), labels)]
        assert repair(path) == path


# -- metrics (hand-computed) ----------------------------------------------------------------
GOLD = [["B-PER", "I-PER", "O", "B-ORG", "O"], ["B-LOC", "O", "B-PER"]]
PRED = [["B-PER", "I-PER", "O", "B-LOC", "O"], ["B-LOC", "I-LOC", "B-PER"]]
# gold: PER(0,2) ORG(3,4) | LOC(0,1) PER(2,3) -> 4; predicted: PER(0,2) LOC(3,4) | LOC(0,2) PER(2,3) -> 4
# right: PER(0,2), PER(2,3) -> tp 2: precision 2/4, recall 2/4, f1 0.5
# PER: p 2/2 r 2/2 f1 1; ORG: p 0/0 r 0/1 f1 0; LOC: p 0/2 r 0/1 f1 0 -> macro 1/3


def test_entity_metrics_match_hand_computed_values():
    out = m.entity_outputs(["PER", "ORG", "LOC"], GOLD, PRED)
    assert (m.precision(out), m.recall(out), m.f1(out)) == (0.5, 0.5, 0.5)
    assert m.token_accuracy(out) == pytest.approx(6 / 8)
    assert macro_f1(out) == pytest.approx(1 / 3)  # the core metric reads per_label_counts
    table = m.per_type(out)
    assert table["PER"] == {"precision": 1.0, "recall": 1.0, "f1": 1.0, "support": 2}
    assert table["ORG"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 1}
    assert table["LOC"]["support"] == 1 and table["LOC"]["precision"] == 0.0
    perfect = m.entity_outputs(["PER", "ORG", "LOC"], GOLD, GOLD)
    assert m.f1(perfect) == 1.0 and macro_f1(perfect) == 1.0


def test_a_boundary_error_costs_a_false_positive_and_a_false_negative():
    out = m.entity_outputs(["ORG"], [["B-ORG", "I-ORG", "I-ORG"]], [["B-ORG", "I-ORG", "O"]])
    assert (m.precision(out), m.recall(out)) == (0.0, 0.0)
    assert m.token_accuracy(out) == pytest.approx(2 / 3)


# -- readers --------------------------------------------------------------------------------
def write(path, text):
    path.write_text(text, encoding="utf-8")
    return path


def test_conll_columns_skip_docstart_and_split_on_blank_lines(tmp_path):
    path = write(tmp_path / "a.conll", "-DOCSTART- -X- O O\n\nAlice NNP B-PER\nflew VBD O\n"
                                       "\nto TO O\nParis NNP B-LOC\n\n\n")
    data = read_file(path, {}, "auto", [])
    assert data.tokens == [["Alice", "flew"], ["to", "Paris"]]
    assert data.tags == [["B-PER", "O"], ["O", "B-LOC"]]
    assert data.where == [f"{path}, line 3", f"{path}, line 6"]


def test_iob2_error_names_file_line_token_and_fix(tmp_path):
    path = write(tmp_path / "b.iob", "The O\nAcme I-ORG\n")
    with pytest.raises(DataError, match=r"b.iob, line 2 \('Acme'\): 'I-ORG' follows 'O'.*"
                                        r"dataset.tag_scheme=iob1"):
        read_file(path, {}, "auto", [])
    assert read_file(path, {}, "iob1", []).tags == [["O", "B-ORG"]]


def test_table_errors_name_the_row(tmp_path):
    rows = [{"tokens": ["a", "b"], "tags": ["O", "B-PER"]},
            {"tokens": ["a", "b"], "tags": ["O"]}]
    path = write(tmp_path / "c.jsonl", "".join(json.dumps(r) + "\n" for r in rows))
    with pytest.raises(DataError, match="c.jsonl, row 2: 2 tokens but 1 tags"):
        read_file(path, {}, "auto", [])
    path = write(tmp_path / "d.jsonl", json.dumps(rows[0]) + "\n")
    with pytest.raises(DataError, match=r"row 1, token 2 \('b'\): unknown entity type 'PER'.*"
                                        "dataset.labels"):
        read_file(path, {}, "auto", ["ORG", "LOC"])


def test_text_and_spans_become_word_tags_with_offsets(tmp_path):
    text = "Ping  Acme's team in São Paulo."
    row = {"text": text, "spans": [{"start": 6, "end": 10, "label": "ORG"},
                                   {"start": 21, "end": 30, "label": "LOC"}]}
    path = write(tmp_path / "e.jsonl", json.dumps(row, ensure_ascii=False) + "\n")
    data = read_file(path, {}, "auto", [])
    assert data.tokens[0] == ["Ping", "Acme", "'s", "team", "in", "São", "Paulo", "."]
    assert data.tags[0] == ["O", "B-ORG", "O", "O", "O", "B-LOC", "I-LOC", "O"]
    assert [text[s:e] for s, e in data.offsets[0]] == data.tokens[0]
    csv_path = tmp_path / "e.csv"
    csv_path.write_text('text,spans\n"Meet Ann.","[{""start"": 5, ""end"": 8, ""label"": ""PER""}]"\n')
    assert read_file(csv_path, {}, "auto", []).tags == [["O", "B-PER", "O"]]


@pytest.mark.parametrize("spans_, words_", [
    ([{"start": 5, "end": 40, "label": "PER"}], "outside the text"),
    ([{"start": 0, "end": 4, "label": "ORG"}, {"start": 2, "end": 8, "label": "PER"}], "overlap"),
    ([{"start": 0, "label": "ORG"}], "needs integer 'start', 'end'"),
])
def test_bad_spans_are_one_clear_error(tmp_path, spans_, words_):
    path = write(tmp_path / "f.jsonl", json.dumps({"text": "Acme hired Ann", "spans": spans_}) + "\n")
    with pytest.raises(DataError, match=f"f.jsonl, row 1: .*{words_}"):
        read_file(path, {}, "auto", [])


def test_words_keep_offsets_and_split_at_entity_edges():
    text = "Q3 revenue of $4.5 bn, up 1,200 units."
    found = [text[s:e] for s, e in words(text)]
    assert found == ["Q3", "revenue", "of", "$", "4.5", "bn", ",", "up", "1,200", "units", "."]
    assert [("AcmeCorp"[s:e]) for s, e in words("AcmeCorp", cuts=[4])] == ["Acme", "Corp"]


def test_entities_carry_offsets_into_the_original_text():
    text = "  Alice\tfrom  Acme\n"
    offsets = words(text)
    labels = ["O", "B-PER", "I-PER", "B-ORG", "I-ORG"]
    probs = np.eye(5)[[1, 0, 3]] * 0.8 + 0.04
    found = entities(["B-PER", "O", "B-ORG"], probs, labels, text, offsets)
    assert [(e["type"], e["text"], e["start"], e["end"]) for e in found] == \
        [("PER", "Alice", 2, 7), ("ORG", "Acme", 14, 18)]
    assert all(text[e["start"]:e["end"]] == e["text"] for e in found)
    assert found[0]["score"] == pytest.approx(0.84)


# -- baselines ------------------------------------------------------------------------------
def test_gazetteer_takes_the_longest_match_and_the_most_frequent_type():
    gazetteer = build_gazetteer(
        [["New", "York"], ["New", "York", "Times"], ["Jordan"], ["Jordan"], ["Jordan"]],
        [["B-LOC", "I-LOC"], ["B-ORG", "I-ORG", "I-ORG"], ["B-PER"], ["B-LOC"], ["B-LOC"]])
    assert gazetteer_tags(["the", "New", "York", "Times", "in", "New", "York", "and", "Jordan"],
                          gazetteer) == \
        ["O", "B-ORG", "I-ORG", "I-ORG", "O", "B-LOC", "I-LOC", "O", "B-LOC"]


def test_unspaced_scripts_split_into_characters_with_exact_offsets():
    from tunehub.plugins.entity_extraction.data import from_spans, words

    text = "张三在北京的Harbor Group工作，营收1,200万元。"
    pieces = [text[a:b] for a, b in words(text)]
    assert pieces[:6] == ["张", "三", "在", "北", "京", "的"]
    assert ["Harbor", "Group", "工", "作", "，"] == pieces[6:11] and "1,200" in pieces
    tokens, tags, offsets = from_spans("张三在北京工作", [
        {"start": 0, "end": 2, "label": "PER"}, {"start": 3, "end": 5, "label": "LOC"}], "row 1")
    assert tokens == list("张三在北京工作")
    assert tags == ["B-PER", "I-PER", "O", "B-LOC", "I-LOC", "O", "O"]
    assert offsets == [(i, i + 1) for i in range(7)]
    japanese = "株式会社トヨタ"
    assert [japanese[a:b] for a, b in words(japanese)] == list(japanese)


def test_chinese_spans_train_and_predictions_point_into_the_text(tiny_model, tmp_path):
    import json

    import tunehub

    from conftest import tiny_overrides

    people, places = ["张三", "李四", "王五", "赵六"], ["北京", "上海", "深圳", "杭州"]
    rows = []
    for i in range(24):
        person, place = people[i % 4], places[(i // 4) % 4]
        text = f"{person}昨天在{place}开会。"
        rows.append({"text": text, "spans": [
            {"start": 0, "end": 2, "label": "PER"},
            {"start": text.index(place), "end": text.index(place) + 2, "label": "LOC"}]})
    data = tmp_path / "zh.jsonl"
    data.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    tunehub.run_task("entity-extraction", data=data, model=str(tiny_model), overrides=tiny_overrides(
        **{"train.epochs": "30", "train.learning_rate": "5e-3", "train.batch_size": "4",
           "dataset.validation_fraction": "0", "train.max_length": "32"}))
    text = "王五昨天在深圳开会。"
    found = tunehub.predict("entity-extraction", [text])[0]["entities"]
    assert found and all(text[e["start"]:e["end"]] == e["text"] for e in found)
    assert {(e["text"], e["type"]) for e in found} == {("王五", "PER"), ("深圳", "LOC")}
