"""Config: task file + typed --set overrides, unknown keys and names with suggestions."""
from __future__ import annotations

import pytest

from tunehub.core.running.config import CORE_SCHEMA, resolve, to_toml
from tunehub.core.errors import ConfigError
from tunehub.core.extending.plugins import load_catalog
from tunehub.core.running.runner import resolve_config
from tunehub.core.extending.tasks import read_toml, task_from


@pytest.fixture(scope="module")
def catalog():
    return load_catalog()


def test_overrides_are_typed_by_the_schema(catalog):
    config = resolve_config(catalog, catalog.task("financial-sentiment"), [
        "train.epochs=4", "train.learning_rate=3e-5", "train.group_by_length=false",
        "dataset.labels=bad,good", "dataset.columns.text=sentence", "head.dropout=0.2",
    ])
    assert config["train"]["epochs"] == 4 and isinstance(config["train"]["epochs"], int)
    assert config["train"]["learning_rate"] == 3e-5
    assert config["train"]["group_by_length"] is False
    assert config["dataset"]["labels"] == ["bad", "good"]
    assert config["dataset"]["columns"] == {"text": "sentence", "label": "label"}
    assert config["head"]["dropout"] == 0.2


def test_unknown_key_suggests_near_miss(catalog):
    with pytest.raises(ConfigError, match=r"unknown key 'train.epoch'\. Did you mean 'train.epochs'\?"):
        resolve_config(catalog, catalog.task("financial-sentiment"), ["train.epoch=3"])


@pytest.mark.parametrize("override, expected", [
    ("train.epochs=three", "must be \"auto\" or a whole number"),
    ("train.epochs=2.5", "must be \"auto\" or a whole number"),
    ("train.batch_size=2.5", "must be an integer"),
    ("train.group_by_length=maybe", "must be true or false"),
    ("train.learning_rate=fast", "must be a number"),
    ("train.epochs", "expected key=value"),
])
def test_bad_override_values_are_clear(catalog, override, expected):
    with pytest.raises(ConfigError, match=expected):
        resolve_config(catalog, catalog.task("financial-sentiment"), [override])


@pytest.mark.parametrize("section, value, kind", [
    ("metrics", ["accuracy", "acuracy"], "metric 'acuracy'"),
    ("baselines", ["majority-clas"], "baseline 'majority-clas'"),
])
def test_unknown_registered_names_in_task_file(catalog, section, value, kind):
    values = {"name": "t", "head": {"name": "sequence-classification"}, "metrics": ["accuracy"],
              section: value}
    with pytest.raises(ConfigError, match=f"Unknown {kind}.*Did you mean"):
        resolve_config(catalog, task_from(values, "test"), [])


def test_unknown_head_suggests_near_miss(catalog):
    task = task_from({"name": "t", "head": {"name": "sequence-clasification"}}, "test")
    with pytest.raises(ConfigError, match="Unknown head 'sequence-clasification'. Did you mean"):
        resolve_config(catalog, task, [])


def test_primary_metric_must_be_a_listed_scalar(catalog):
    task = task_from({"name": "t", "head": {"name": "sequence-classification"},
                      "metrics": ["accuracy", "confusion_matrix"],
                      "primary_metric": "confusion_matrix"}, "test")
    with pytest.raises(ConfigError, match="primary_metric"):
        resolve_config(catalog, task, [])


def test_resolved_config_round_trips_through_toml(catalog, tmp_path):
    config = resolve_config(catalog, catalog.task("financial-sentiment"), ["train.epochs=2"])
    path = tmp_path / "config.toml"
    path.write_text(to_toml(config))
    assert read_toml(path) == config


def test_task_file_without_head_is_an_error(tmp_path):
    path = tmp_path / "t.toml"
    path.write_text('name = "t"\n')
    with pytest.raises(ConfigError, match=r"\[head\] table with 'name'"):
        task_from(path, "test")


def test_defaults_come_from_the_schema():
    config = resolve(CORE_SCHEMA, {"name": "x"})
    assert config["train"]["epochs"] == CORE_SCHEMA["train.epochs"]
    assert config["model"] == "minilm"


def test_a_heads_ranges_are_intervals_checked_with_the_core_settings():
    from tunehub.core.errors import PluginError
    from tunehub.core.extending.heads import RegisteredHead
    from tunehub.core.running.config import check_settings, interval

    ok, expected = interval("[0, 1)")
    assert ok(0) and ok(0.5) and not ok(1) and not ok(float("nan"))
    assert expected == "a finite number >= 0 and < 1"
    assert interval("(0, inf)")[0](1e9) and not interval("(0,)")[0](0)
    with pytest.raises(ValueError):
        interval("0..1")

    class Head:
        name, schema, ranges = "h", {"head.temperature": 1.0}, {"head.temperature": "(0, 5]"}

        def load_data(self, config, files): ...

        def fit(self, run): ...

        def predict(self, model_dir, inputs, config): ...

    head = RegisteredHead(Head(), "p")
    with pytest.raises(ConfigError, match=r"'head.temperature' must be a finite number > 0 and <= 5"):
        check_settings({"head": {"temperature": 0}}, "task 't'", head.rules)
    Head.ranges = {"head.other": "[0, 1]"}
    with pytest.raises(PluginError, match="which its schema does not declare"):
        RegisteredHead(Head(), "p")
    Head.ranges, Head.models = {}, ("generate.model",)  # a model setting must be declared too
    with pytest.raises(PluginError, match="models names generate.model, which its schema"):
        RegisteredHead(Head(), "p")
    Head.schema = {**Head.schema, "generate.model": ""}
    assert RegisteredHead(Head(), "p").models == ("generate.model",)
