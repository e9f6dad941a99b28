"""Property-based tests (hypothesis): the `--set` parser, version references, task names and
the data readers take any input and answer with a value or one clear error, never a crash;
and schemathesis drives the server's own OpenAPI spec (loopback, in-process, bounded)."""
from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tunehub.core.running import config
from tunehub.core.artifacts import hub
from tunehub.core.errors import TunehubError
from tunehub.core.extending.tasks import TASK_NAME, check_task_name

SCHEMA = {"train.batch_size": 32, "train.learning_rate": 5e-5, "train.group_by_length": True,
          "metrics": ["accuracy"], "dataset.columns": {"text": "text"}, "name": "t"}
QUICK = settings(max_examples=200, deadline=None,
                 suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])


@QUICK
@given(key=st.sampled_from(sorted(SCHEMA) + ["train.nope", "dataset.columns.txt", ""]),
       value=st.text(max_size=40))
def test_any_override_is_a_typed_value_or_one_config_error(key, value):
    try:
        resolved = config.resolve(SCHEMA, {}, [f"{key}={value}"])
    except TunehubError as exc:
        assert str(exc)  # the CLI prints it as one line
        return
    flat = config.flatten(resolved)
    for name, default in SCHEMA.items():
        assert isinstance(flat[name], type(default))


@QUICK
@given(st.text(max_size=60))
def test_any_version_reference_resolves_or_fails_clearly(tunehub_home, ref):
    try:
        artifact = hub.artifact_for(ref)
    except TunehubError:
        return
    except (OSError, ValueError):  # a name the OS itself refuses (NUL bytes, too long)
        return
    assert hub.in_hub(artifact.path) or (artifact.path / "manifest.json").is_file()


@QUICK
@given(st.text(max_size=120))
def test_an_accepted_task_name_is_one_folder_inside_the_home(tmp_path_factory, name):
    try:
        check_task_name(name, "t")
    except TunehubError:
        assert not (TASK_NAME.match(name) and ".." not in name)
        return
    root = tmp_path_factory.getbasetemp() / "artifacts"
    assert (root / name).resolve().parent == root.resolve()
    assert "/" not in name and "\\" not in name and ".." not in name


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                  HealthCheck.too_slow])
@given(content=st.binary(max_size=400), suffix=st.sampled_from([".csv", ".tsv", ".jsonl"]))
def test_any_file_reads_as_a_table_or_one_data_error(tmp_path, content, suffix):
    from tunehub.core.running.data import read_table, text_cell

    path = tmp_path / f"data{suffix}"
    path.write_bytes(content)
    try:
        table = read_table(path)
    except TunehubError as exc:
        assert str(exc).startswith(str(path)) or str(path) in str(exc)
        return
    for index in range(len(table)):
        for column in table.columns:
            try:
                text_cell(table, index, column)
            except TunehubError:
                pass


@settings(max_examples=100, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(content=st.lists(st.fixed_dictionaries({}, optional={
    "tokens": st.one_of(st.none(), st.integers(), st.lists(st.one_of(st.text(max_size=5), st.none(),
                                                                     st.integers()), max_size=4)),
    "tags": st.lists(st.sampled_from(["O", "B-PER", "I-PER", "X"]), max_size=4),
    "text": st.text(max_size=12),
    "spans": st.lists(st.fixed_dictionaries({"start": st.one_of(st.integers(-2, 15), st.booleans()),
                                             "end": st.integers(-2, 15),
                                             "label": st.sampled_from(["PER", 3])}), max_size=2),
}), min_size=1, max_size=5))
def test_any_entity_file_loads_or_fails_clearly(tmp_path_factory, content):
    import json

    from tunehub.core.extending.plugins import load_catalog

    folder = tmp_path_factory.mktemp("ner")
    path = folder / "d.jsonl"
    path.write_text("\n".join(json.dumps(row) for row in content) + "\n")
    catalog = _catalog()
    spec = catalog.task("entity-extraction")
    from tunehub.core.running.runner import resolve_config

    cfg = resolve_config(catalog, spec, [], str(path), None, None)
    try:
        catalog.head_of(spec).load_data(cfg, {"train": path})
    except TunehubError as exc:
        assert str(exc)


_CATALOG = []


def _catalog():
    from tunehub.core.extending.plugins import load_catalog

    if not _CATALOG:
        _CATALOG.append(load_catalog())
    return _CATALOG[0]


# -- the HTTP API against its own OpenAPI spec ------------------------------------------
schemathesis = pytest.importorskip("schemathesis", reason="pip install schemathesis")


@pytest.fixture(scope="module")
def api_schema(tiny_model, tmp_path_factory):
    from tunehub.core.running import runner
    from tunehub.core.operations.feedback import FeedbackStore
    from tunehub.core.serving.serve import ServeSettings, create_app

    from _trained import shared_artifact

    loaded = runner.load("financial-sentiment", model=shared_artifact(tiny_model, tmp_path_factory))
    store = FeedbackStore(tmp_path_factory.mktemp("api-home") / "feedback.sqlite3")
    app = create_app([loaded], ServeSettings(max_inputs=8, max_text_chars=200), store=store)
    yield schemathesis.openapi.from_asgi("/openapi.json", app)
    store.close()


def test_the_api_never_answers_with_a_server_error(api_schema):
    """Every operation of /openapi.json, 60 generated requests each, in process."""
    from schemathesis.checks import not_a_server_error

    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert {op.path for op in operations} >= {"/v1/predict", "/v1/feedback", "/health"}
    for operation in operations:
        @settings(max_examples=60, deadline=None,
                  suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
        @given(case=operation.as_strategy())
        def check(case):
            case.call_and_validate(checks=[not_a_server_error])

        check()
