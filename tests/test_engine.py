"""The engine's automatic choices: attention kernels by precision, and their restoration."""
from __future__ import annotations

import pytest

import tunehub
from tunehub.core.running.engine import resolve_attention, restore_attention, set_attention
from tunehub.core.errors import ConfigError

from conftest import tiny_overrides


def test_auto_attention_is_eager_only_for_bf16_on_cpu():
    assert resolve_attention("auto", "bf16") == "eager"
    assert resolve_attention("auto", "fp32") is None  # the model's own kernels
    assert resolve_attention("sdpa", "bf16") == "sdpa"
    with pytest.raises(ConfigError, match="train.attention must be auto, eager or sdpa"):
        resolve_attention("flash", "bf16")


def test_eager_and_fused_attention_agree_on_padded_batches(tiny_model):
    """The switch is a kernel choice only: same outputs with padding masked either way."""
    import torch
    from transformers import AutoModel, AutoTokenizer

    model = AutoModel.from_pretrained(tiny_model, attn_implementation="sdpa").eval()
    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    batch = tokenizer(["short", "a much longer sentence with padding for the short one"],
                      padding=True, return_tensors="pt")
    with torch.no_grad():
        fused = model(**batch).last_hidden_state
        before = set_attention(model, "eager")
        assert model.config._attn_implementation == "eager" and before
        eager = model(**batch).last_hidden_state
        restore_attention(before)
    assert model.config._attn_implementation == "sdpa"
    mask = batch["attention_mask"].bool()
    assert torch.allclose(fused[mask], eager[mask], atol=1e-5)


@pytest.mark.parametrize("precision, expected", [("bf16", "eager"), ("fp32", "model default")])
def test_training_notes_the_attention_it_used(tiny_model, labelled_csv, precision, expected):
    result = tunehub.run_task("financial-sentiment", data=labelled_csv, model=str(tiny_model),
                              overrides=tiny_overrides(**{"train.precision": precision}))
    assert result.notes["attention"] == expected


def test_head_parameters_learn_at_their_own_rate():
    import torch
    from transformers import Trainer, TrainingArguments

    from tunehub.core.running.engine import scale_head_learning_rate

    model = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.LayerNorm(4), torch.nn.Linear(4, 2))
    args = TrainingArguments("unused", learning_rate=1e-4, weight_decay=0.01, use_cpu=True,
                             report_to="none")
    trainer = Trainer(model=model, args=args)
    scale_head_learning_rate(trainer, list(model[2].parameters()), 20)
    head = {id(p) for p in model[2].parameters()}
    for group in trainer.optimizer.param_groups:
        in_head = {id(p) in head for p in group["params"]}
        assert len(in_head) == 1  # a group is all head or all encoder
        assert group["lr"] == pytest.approx(2e-3 if in_head.pop() else 1e-4)
    assert sum(len(g["params"]) for g in trainer.optimizer.param_groups) == 6  # none lost
    trainer.create_scheduler(10, trainer.optimizer)
    assert sorted(set(trainer.lr_scheduler.base_lrs)) == pytest.approx([1e-4, 2e-3])


def test_the_classifier_passes_its_new_layer_to_the_engine(tiny_model, labelled_csv):
    """Scaling the head's rate changes training (runs are otherwise deterministic)."""
    from tunehub.core.running import runner

    def probabilities(scale: str) -> list[float]:
        result = tunehub.run_task("financial-sentiment", data=labelled_csv, model=str(tiny_model),
                                  overrides=tiny_overrides(**{"train.head_lr_scale": scale, "train.epochs": "3",
                                                                "train.warmup_ratio": "0"}))
        [answer] = runner.predict("financial-sentiment", ["Profit rose."], model=result.artifact)
        return list(answer["probabilities"].values())

    assert probabilities("1") == probabilities("1")
    assert probabilities("1") != probabilities("50")


@pytest.mark.parametrize("rows, epochs", [(1626, 6), (3484, 3), (9000, 3), (40, 6)])
def test_auto_epochs_fit_the_data_size(rows, epochs):
    """About step_budget optimizer steps, within [min_epochs, max_epochs]."""
    from types import SimpleNamespace

    from tunehub.core.running.engine import TrainSettings
    from tunehub.core.running.training import auto_epochs

    args = SimpleNamespace(max_steps=-1, per_device_train_batch_size=32, world_size=1,
                           gradient_accumulation_steps=1, num_train_epochs=None,
                           accelerator_config=SimpleNamespace(split_batches=True))
    trainer = SimpleNamespace(args=args, train_dataset=range(rows))
    settings = TrainSettings(step_budget=300, max_epochs=6)
    said = auto_epochs(trainer, settings)
    assert args.num_train_epochs == epochs and said.startswith(f"{epochs} epochs (auto: {rows} rows")
    assert auto_epochs(trainer, TrainSettings(epochs=4)) == "4 epochs (train.epochs)"
