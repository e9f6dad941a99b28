"""Grounded answers in customer-service QA (``head.answer = "generated"``): citations are
read back exactly, streaming drops them the same way, the decoder trains on each question's
own entry at a random place among the retriever's next best, and a tiny end-to-end run
(random BERT retriever, random Llama decoder) reports the answer metrics beside its
baselines, serves replies that cite the entries they were shown, and streams them."""
from __future__ import annotations

import json
import re
import shutil

import numpy as np
import pytest
from click.testing import CliRunner

import tunehub
from tunehub.core.cli import main
from tunehub.core.running import runner
from tunehub.plugin import generation
from tunehub.plugins.customer_service import answers
from tunehub.plugins.customer_service.data import Faq, Queries

from conftest import tiny_overrides, write_csv
from test_customer_service import FAQ, OUT_OF_SCOPE, QUERIES

TASK = "customer-service-answers"


@pytest.mark.parametrize("text, numbers, answer", [
    ("[2] Tap Cards.", [2], "Tap Cards."),
    ("  [1][3] Both apply.", [1, 3], "Both apply."),
    ("[1] [1] Once.", [1], "Once."),
    ("No citation here.", [], "No citation here."),
    ("See [2] later.", [], "See [2] later."),
    ("[2]", [2], ""),
])
def test_citations_are_read_from_the_start_of_the_answer(text, numbers, answer):
    assert generation.cited(text) == (numbers, answer)


@pytest.mark.parametrize("text", ["[2] Tap Cards, then Report lost.", "[12] Ten.",
                                  "No citation at all.", "[x] not a number", "[3]"])
def test_streaming_drops_the_citation_like_the_whole_answer(text):
    for size in (1, 2, 3, 5, len(text)):
        pieces = [text[i:i + size] for i in range(0, len(text), size)]
        assert "".join(generation.stream_cited(iter(pieces))) == generation.cited(text)[1]


def test_a_grounded_prompt_numbers_its_entries():
    prompt = generation.grounded_prompt("lost card?", [("Lost card", "Report it."),
                                                       ("PIN", "Reset it.")])
    assert "[1] Lost card\nReport it." in prompt and "[2] PIN\nReset it." in prompt
    assert prompt.index("[2]") < prompt.index("Question: lost card?")


def test_the_decoder_trains_on_its_own_entry_at_a_random_place():
    faq = Faq([r[0] for r in FAQ], [r[1] for r in FAQ], [r[2] for r in FAQ])
    train = Queries([q for e, qs in QUERIES.items() for q in qs] + ["joke"],
                    [e for e, qs in QUERIES.items() for _ in qs] + [""])

    def first_stage(texts, k):  # always ranks the entries in file order
        return np.tile(np.arange(k), (len(texts), 1)), np.ones((len(texts), k))

    prompts, responses = answers.training_pairs(first_stage, faq, train, 3, seed=1)
    assert len(prompts) == len(train) - 1  # the out-of-scope question is not trained on
    places = set()
    for prompt, response, entry in zip(prompts, responses, train.faq_ids):
        numbers, answer = generation.cited(response)
        gold = faq.ids.index(entry)
        assert answer == faq.answers[gold]
        assert f"[{numbers[0]}] {faq.questions[gold]}\n{faq.answers[gold]}" in prompt
        assert re.findall(r"(?m)^\[(\d)\] ", prompt) == ["1", "2", "3"]
        places.add(numbers[0])
    assert places == {1, 2, 3}


def test_the_right_entry_is_placed_as_the_retriever_places_it_on_held_out_questions():
    faq = Faq([r[0] for r in FAQ], [r[1] for r in FAQ], [r[2] for r in FAQ])
    held = Queries(["a", "b", "c", "d", "joke"], ["card-lost", "card-lost", "pin-reset", "abroad", ""])

    def search(texts, k):  # file order: card-lost 1st, pin-reset 2nd, fees 3rd, abroad 4th
        return np.tile(np.arange(k), (len(texts), 1)), np.ones((len(texts), k))

    weights = answers.places(search, faq, held, 3)
    assert weights == [1 + 2, 1 + 1, 1]  # abroad is not in the top 3: not counted
    train = Queries([q for qs in QUERIES.values() for q in qs] * 20,
                    [e for e, qs in QUERIES.items() for _ in qs] * 20)
    _, responses = answers.training_pairs(search, faq, train, 3, seed=0, weights=[8, 1, 1])
    first = sum(r.startswith("[1]") for r in responses) / len(responses)
    assert 0.7 < first < 0.9


@pytest.fixture(scope="module")
def long_llama(tiny_llama, tmp_path_factory):
    """The tiny Llama with room for a prompt of three FAQ entries."""
    folder = tmp_path_factory.mktemp("long-llama")
    shutil.copytree(tiny_llama, folder, dirs_exist_ok=True)
    config = json.loads((folder / "config.json").read_text())
    config["max_position_embeddings"] = 1024
    (folder / "config.json").write_text(json.dumps(config))
    return folder


@pytest.fixture(scope="module")
def grounded(tiny_model, long_llama, tmp_path_factory):
    folder = tmp_path_factory.mktemp("grounded")
    faq = write_csv(folder / "faq.csv", ["id", "question", "answer", "category"], FAQ)
    rows = [[q, entry] for entry, texts in QUERIES.items() for q in texts * 2]
    rows += [[q, ""] for q in OUT_OF_SCOPE]
    queries = write_csv(folder / "queries.csv", ["query", "faq_id"], rows)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TUNEHUB_HOME", str(folder / "home"))
        result = tunehub.run_task(TASK, data=queries, model=str(tiny_model), overrides=tiny_overrides(
            **{"dataset.faq": str(faq), "generate.model": str(long_llama), "generate.epochs": "3",
               "generate.learning_rate": "5e-3", "generate.max_new_tokens": "24",
               "generate.max_length": "512"}))
        yield result, folder / "home"


def test_a_run_reports_answer_metrics_beside_every_baseline(grounded):
    result, home = grounded
    assert {"answer_token_f1", "answer_rouge_l", "cites_right_entry"} <= set(result.metrics)
    assert set(result.baselines) == {"retrieved-answer", "untuned-decoder", "untuned", "bm25"}
    for figures in result.baselines.values():
        assert 0 <= figures["answer_token_f1"] <= 1
    # the retriever's own figures are the same whichever way the answer is given
    assert result.metrics["recall@1"] == result.baselines["retrieved-answer"]["recall@1"]
    report = (home / "artifacts" / TASK / "v1" / "report.md").read_text()
    assert "cites one" in report and "loss on response tokens" in report
    model = home / "artifacts" / TASK / "v1" / "model"
    assert (model / answers.GENERATOR_DIR / "adapter_config.json").is_file()
    assert json.loads((model / "retrieval.json").read_text())["answer"] == "generated"


def test_evaluating_the_saved_version_gives_the_run_s_figures(grounded, monkeypatch):
    result, home = grounded
    monkeypatch.setenv("TUNEHUB_HOME", str(home))
    evaluated = runner.evaluate(TASK, write=False)
    assert evaluated.metrics == result.metrics


def test_replies_cite_the_entries_they_were_shown_and_stream_the_same_text(grounded, monkeypatch):
    result, home = grounded
    monkeypatch.setenv("TUNEHUB_HOME", str(home))
    model = home / "artifacts" / TASK / "v1" / "model"
    saved = (model / "retrieval.json").read_text()
    settings = json.loads(saved)
    settings["threshold"] = -2.0  # answer everything
    (model / "retrieval.json").write_text(json.dumps(settings))
    loaded = runner.load(TASK)
    questions = ["i lost my card", "forgot my pin"]
    out = loaded.predict(questions)
    for reply in out:
        assert reply["answer"] == "generated" and not reply["handoff"]
        assert reply["grounded_in"] == [a["id"] for a in reply["answers"]]
        assert set(reply["cites"]) <= set(reply["grounded_in"])
    assert [r["reply"] for r in loaded.predict(questions)] == [r["reply"] for r in out]  # greedy
    for question, reply in zip(questions, out):
        assert "".join(loaded.predictor.stream(question)) == reply["reply"]

    settings["threshold"] = 2.0  # hand everything off: nothing is generated
    (model / "retrieval.json").write_text(json.dumps(settings))
    handed = runner.load(TASK).predict(["i lost my card"])[0]
    assert handed["handoff"] and handed["reply"] == settings["handoff_message"]
    assert handed["cites"] == [] and handed["grounded_in"] == []
    (model / "retrieval.json").write_text(saved)


@pytest.mark.parametrize("setting, match", [
    ("head.answer=written", "head.answer must be one of retrieved, generated"),
    ("generate.model=", "head.answer = generated needs generate.model"),
    ("generate.entries=0", "generate.entries, generate.epochs and generate.max_new_tokens"),
    ("generate.max_steps=0", "generate.max_steps -1 (epochs decide) or 1 or more"),
    ("generate.eval_batch_size=0", "generate.eval_batch_size must be 1 or more"),
])
def test_bad_settings_are_refused_before_any_model_loads(setting, match):
    done = CliRunner().invoke(main, ["validate-data", TASK, "--set", setting])
    assert done.exit_code == 2 and match in done.output
    assert "Traceback" not in done.output
