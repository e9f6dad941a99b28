"""The text-generation head on a tiny random Llama: metrics against rouge-score, the loss
only on answers, training lowers the loss, save -> load -> the same greedy answers,
streaming gives the non-streaming text, the server streams, feedback joins training."""
from __future__ import annotations

import json
import re

import httpx
import pytest
from click.testing import CliRunner

import tunehub
from tunehub.core.cli import main
from tunehub.core.running import runner
from tunehub.core.serving.serve import BackgroundServer, ServeSettings
from tunehub.plugins.text_generation import metrics
from tunehub.plugins.text_generation.head import Pairs, encode, prompt_ids

from conftest import tiny_overrides, write_csv

TASK = "support-answers"
COLOURS = ["red", "blue", "green", "black", "white", "grey", "pink", "gold"]
THINGS = ["car", "door", "cup", "hat", "box", "pen"]


def toy_pairs() -> list[list[str]]:
    return [[f"What colour is the {thing} {i}?", f"The {thing} is {COLOURS[i % 8]}."]
            for thing in THINGS for i in range(8)]


@pytest.fixture(scope="module")
def generated(tiny_llama, tmp_path_factory):
    """One tiny support-answers run on toy pairs, shared by this module."""
    folder = tmp_path_factory.mktemp("gen")
    data = write_csv(folder / "pairs.csv", ["question", "answer"], toy_pairs())
    from transformers import TrainerCallback

    losses: list[float] = []

    class Losses(TrainerCallback):
        def on_log(self, args, state, control, logs=None, **kwargs):
            if logs and "loss" in logs:
                losses.append(float(logs["loss"]))

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TUNEHUB_HOME", str(folder / "home"))
        result = tunehub.run_task(TASK, data=data, model=str(tiny_llama), callbacks=[Losses()],
                                  overrides=tiny_overrides(
            **{"train.max_steps": "40", "train.peft": "none", "train.learning_rate": "5e-3",
               "predict.max_new_tokens": "12",
               "train.max_length": "64"}))
        yield result, folder / "home", losses


def test_rouge_l_and_token_f1_match_the_libraries():
    from rouge_score import rouge_scorer

    scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=False)
    pairs = [("The card is blocked now.", "Your card is now blocked"),
             ("Open the app, go to Cards, tap Report lost.", "Tap report lost in Cards"),
             ("Fees are 2% abroad", "No fees at home; 2% abroad."), ("a b c", "x y")]
    for reference, generated in pairs:
        expected = scorer.score(reference, generated)["rougeL"].fmeasure
        assert metrics.rouge_l_pair(reference, generated) == pytest.approx(expected)
    assert metrics.token_f1_pair("the cat sat", "the cat sat down") == pytest.approx(2 * 0.75 / 1.75)
    assert metrics.exact_match({"y_true": ["Yes."], "y_pred": ["yes"]}) == 1.0
    # Chinese is scored by characters: 净利润 shares 2 of 3 characters with 利润
    assert metrics.words("净利润 up 5%") == ["净", "利", "润", "up", "5"]
    assert metrics.token_f1_pair("净利润", "利润") == pytest.approx(2 * 1 * (2 / 3) / (1 + 2 / 3))


def test_the_loss_counts_the_answer_only_and_uses_the_chat_template(tiny_llama):
    from tunehub.plugins.text_generation.head import load_tokenizer

    tokenizer = load_tokenizer(tiny_llama)
    row = encode(tokenizer, Pairs(["Is it red?"], ["It is red."]), "", 64)[0]
    asked = prompt_ids(tokenizer, "Is it red?")
    assert row["labels"][:len(asked)] == [-100] * len(asked)
    answer = tokenizer.decode([t for t in row["labels"] if t != -100])
    assert answer == "It is red." + tokenizer.eos_token
    tokenizer.chat_template = ("{% for m in messages %}<{{ m.role }}>{{ m.content }}\n{% endfor %}"
                               "{% if add_generation_prompt %}<assistant>{% endif %}")
    chat = tokenizer.decode(prompt_ids(tokenizer, "Is it red?", "Be brief."))
    assert chat == "<system>Be brief.\n<user>Is it red?\n<assistant>"


def test_training_lowers_the_loss_and_reports_against_baselines(generated):
    result, home, losses = generated
    assert len(losses) >= 3 and losses[-1] < 0.5 * losses[0]
    assert set(result.metrics) == {"token_f1", "rouge_l", "exact_match"}
    assert set(result.baselines) == {"untuned", "nearest-response"}
    report = (home / "artifacts" / TASK / "v1" / "report.md").read_text()
    assert "loss on response tokens" in report
    assert result.metrics["token_f1"] > result.baselines["untuned"]["token_f1"]


def test_saved_model_gives_the_same_greedy_answers_and_streams_them(generated, monkeypatch):
    result, home, _ = generated
    monkeypatch.setenv("TUNEHUB_HOME", str(home))
    loaded = runner.load(TASK)
    prompts = [p for p, _ in toy_pairs()[:4]]
    answers = [o["text"] for o in loaded.predict(prompts)]
    assert answers == [o["text"] for o in loaded.predict(prompts)]  # greedy: repeatable
    one = [loaded.predictor.impl.generate([p])[0] for p in prompts]
    assert one == answers  # batched (left padding) as one by one
    for prompt, answer in zip(prompts, answers):
        assert "".join(loaded.predictor.stream(prompt)) == answer


def test_a_lora_version_loads_onto_its_base_with_the_same_answers(tiny_llama, tmp_path):
    data = write_csv(tmp_path / "pairs.csv", ["question", "answer"], toy_pairs())
    result = tunehub.run_task(TASK, data=data, model=str(tiny_llama), overrides=tiny_overrides(
        **{"train.max_steps": "5", "predict.max_new_tokens": "8", "train.max_length": "64"}))
    model_dir = runner.hub.find_artifact(f"{TASK}@v1").model_dir
    assert (model_dir / "adapter_config.json").is_file()
    assert not (model_dir / "model.safetensors").exists()  # the adapter, not a copy of the base
    assert "LoRA" in result.notes["fine-tuning"]
    evaluated = runner.evaluate(TASK, write=False)
    assert evaluated.metrics == result.metrics  # fit-time answers == answers after loading


def test_the_server_streams_tokens_as_server_sent_events(generated, monkeypatch):
    _, home, _ = generated
    monkeypatch.setenv("TUNEHUB_HOME", str(home))
    loaded = runner.load(TASK)
    prompt = toy_pairs()[0][0]
    whole = loaded.predict([prompt])[0]["text"]
    with BackgroundServer([loaded], ServeSettings(port=0)) as server:
        with httpx.stream("POST", f"{server.url}/v1/stream", json={"input": prompt},
                          timeout=60) as answer:
            assert answer.status_code == 200
            assert answer.headers["content-type"].startswith("text/event-stream")
            events = [json.loads(line[len("data: "):]) for line in answer.iter_lines()
                      if line.startswith("data: ")]
        assert "".join(e["text"] for e in events if "done" not in e) == whole
        assert events[-1]["done"] and events[-1]["text"] == whole and events[-1]["prediction_id"]
        refused = httpx.post(f"{server.url}/v1/stream", json={"input": ""}, timeout=60)
        assert refused.status_code == 422


def test_streaming_is_refused_for_a_task_that_cannot_stream(tiny_model, tmp_path_factory):
    from _trained import shared_artifact

    loaded = runner.load("financial-sentiment", model=shared_artifact(tiny_model, tmp_path_factory))
    with BackgroundServer([loaded], ServeSettings(port=0)) as server:
        answer = httpx.post(f"{server.url}/v1/stream", json={"input": "Profit rose."}, timeout=60)
    assert answer.status_code == 422 and "does not stream" in answer.json()["detail"]


def test_a_corrected_answer_joins_training(generated, monkeypatch):
    from tunehub.core.operations.feedback import FeedbackStore

    _, home, _ = generated
    monkeypatch.setenv("TUNEHUB_HOME", str(home))
    store = FeedbackStore()
    store.add({"task": TASK, "input": "What colour is the sky?", "response": "The sky is blue."},
              f"{TASK}@v1", "response").result()
    store.close()
    out = CliRunner().invoke(main, ["run-task", TASK, "--with-feedback", "--json"])
    assert out.exit_code == 0, out.output
    assert json.loads(out.stdout)["feedback"]["added"] == 1
    v1, v2 = (runner.hub.find_artifact(f"{TASK}@{v}").manifest()["evaluation"] for v in ("v1", "v2"))
    assert v1["digest"] == v2["digest"] and v2["training rows"] == v1["training rows"] + 1


def test_references_show_similar_answers_but_never_a_row_s_own():
    from tunehub.plugins.text_generation.head import Neighbours

    pairs = Pairs([p for p, _ in toy_pairs()], [r for _, r in toy_pairs()])
    neighbours = Neighbours(pairs)
    prompts = neighbours.prompts(pairs.prompts, 2, skip_self=True)
    for i, prompt in enumerate(prompts):
        assert f"] {pairs.prompts[i]}\n" not in prompt  # its own pair is not a reference
        assert re.findall(r"(?m)^\[(\d)\] ", prompt) == ["1", "2"]
        assert prompt.rstrip().endswith("use their words where they fit.")
    near = neighbours.nearest(["What colour is the car 3?"], 1)[0]
    assert pairs.prompts[near[0]] == "What colour is the car 3?"  # without skip_self: itself


def test_a_version_with_references_keeps_its_pairs_and_answers_the_same_after_loading(
        tiny_llama, tmp_path):
    data = write_csv(tmp_path / "pairs.csv", ["question", "answer"], toy_pairs())
    result = tunehub.run_task(TASK, data=data, model=str(tiny_llama), overrides=tiny_overrides(
        **{"train.max_steps": "5", "predict.max_new_tokens": "8", "train.max_length": "128",
           "head.references": "2"}))
    model_dir = runner.hub.find_artifact(f"{TASK}@v1").model_dir
    kept = (model_dir / "references.jsonl").read_text().splitlines()
    assert len(kept) == len(toy_pairs()) - round(0.2 * len(toy_pairs()))  # the training pairs
    assert "2 most similar training pairs" in result.notes["references"]
    assert runner.evaluate(TASK, write=False).metrics == result.metrics


def test_generation_runs_in_the_precision_the_run_resolves_and_keeps_prompt_order(
        tiny_llama, precision):
    """Weights are bf16 where the precision resolves to bf16 (train.precision wins over
    TUNEHUB_PRECISION), fp32 else; prompts are written longest first in batches and come
    back in the order given."""
    import torch

    from tunehub.plugin import generation

    prompts = ["Hi?", "What colour is the car 3 in the picture we sent you last week?",
               "Is the cup red?", "Where is the box that the pen came in?", "Hat?"]
    settings = {"max_new_tokens": 6, "batch_size": 1}
    one = generation.load_base(tiny_llama, settings)
    dtype = {"fp32": torch.float32, "bf16": torch.bfloat16}[precision]
    assert next(one.model.parameters()).dtype == dtype
    assert one.precision == precision and f"{precision} weights" in one.describe()
    alone = [one.generate([p])[0] for p in prompts]
    assert one.generate(prompts) == alone  # reordered for batching, returned in order
    fp32 = generation.load_base(tiny_llama, {**settings, "batch_size": 8}, precision="fp32")
    assert next(fp32.model.parameters()).dtype == torch.float32  # the setting wins
    assert fp32.generate(prompts) == [fp32.generate([p])[0] for p in prompts]


def test_response_batches_give_the_loss_of_every_position_from_the_response_logits(tiny_llama):
    """Left-padded batches with positions from each row's start and logits for the response
    positions only give the loss (and gradients) of right-padded batches over every
    position."""
    import torch
    from transformers import AutoModelForCausalLM, DataCollatorForSeq2Seq

    from tunehub.core.models import generation

    tokenizer = generation.load_tokenizer(tiny_llama)
    rows = generation.sft_rows(
        tokenizer, ["Is it red?", "What colour is the car in the picture we sent you?", "Hat?"],
        ["It is red.", "Blue.", "The hat is a grey one with a long brim and two feathers."], "", 64)
    model = AutoModelForCausalLM.from_pretrained(str(tiny_llama), dtype="float32")
    assert generation.keeps_logits(model)
    batch = generation.ResponseBatches(tokenizer.pad_token_id)(rows)
    longest_answer = max(sum(t != -100 for t in r["labels"]) for r in rows)
    assert batch["logits_to_keep"] == longest_answer + 1 < batch["input_ids"].shape[1]
    assert batch["labels"].shape[1] == batch["logits_to_keep"]
    plain = DataCollatorForSeq2Seq(tokenizer, padding=True)(rows)

    def loss_and_grad(inputs):
        model.zero_grad()
        out = model(**inputs)
        out.loss.backward()
        return out, model.model.layers[0].self_attn.q_proj.weight.grad.clone()

    (kept, kept_grad), (full, full_grad) = loss_and_grad(batch), loss_and_grad(plain)
    assert kept.logits.shape[1] == batch["logits_to_keep"]
    assert kept.loss.item() == pytest.approx(full.loss.item(), rel=1e-5)
    assert torch.allclose(kept_grad, full_grad, rtol=1e-4, atol=1e-6)
