"""The bad-input and fault corpus: every case is one clear line on stderr, exit code 2, no
traceback, nothing published and nothing left behind in TUNEHUB_HOME.

Each case builds its command line from a temporary folder (and, for predict/evaluate
cases, a tiny fine-tuned version shared by the session). Settings and data checks run
before any model loads, so the whole corpus takes seconds.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from tunehub.core.cli import main

from _trained import shared_artifact
from conftest import SENTENCES, write_csv

RUN = ["run-task", "financial-sentiment"]


def rows(n_per_label: int = 6) -> list[list[str]]:
    return [[text, label] for label, texts in SENTENCES.items() for text in texts[:n_per_label]]


def csv_file(tmp: Path, header=("text", "label"), body=None, name="d.csv") -> str:
    return str(write_csv(tmp / name, list(header), rows() if body is None else body))


def text_file(tmp: Path, name: str, content: str | bytes) -> str:
    path = tmp / name
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    return str(path)


def jsonl(tmp: Path, text_value) -> str:
    lines = [json.dumps({"text": t, "label": label}) for t, label in rows()]
    lines[3] = json.dumps({"text": text_value, "label": "negative"})
    return text_file(tmp, "d.jsonl", "\n".join(lines) + "\n")


def parquet(tmp: Path, text_value: float) -> str:
    """A Parquet file whose text column holds floats (as a numeric column or NaNs would)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = tmp / "d.parquet"
    pq.write_table(pa.table({"text": [text_value] * len(rows()),
                             "label": [label for _, label in rows()]}), path)
    return str(path)


def setting(key_value: str):
    return lambda tmp, ctx: [*RUN, "--data", csv_file(tmp), "--set", key_value]


def processes(count: str, *settings: str):
    """A run as one of ``count`` processes would start it (torchrun sets WORLD_SIZE)."""
    def build(tmp: Path, ctx) -> list[str]:
        ctx["env"] = {"WORLD_SIZE": count}
        return [*RUN, "--data", csv_file(tmp), *[a for s in settings for a in ("--set", s)]]
    return build


def tracker_missing(tmp: Path, ctx) -> list[str]:
    """train.report_to names a tracker whose package this environment lacks."""
    from tunehub.core.running import tracking

    ctx["patch"] = (tracking, "installed", lambda tracker: False)
    return [*RUN, "--data", csv_file(tmp), "--base-model", str(ctx["tiny_model"]),
            "--set", "train.report_to=tensorboard"]


def data(builder):
    return lambda tmp, ctx: [*RUN, "--data", builder(tmp)]


def remote_code_model(tmp: Path, ctx) -> list[str]:
    folder = tmp / "custom-model"
    folder.mkdir()
    marker = tmp / "code-ran"
    (folder / "config.json").write_text(json.dumps({
        "model_type": "custom", "auto_map": {"AutoConfig": "modeling.CustomConfig",
                                             "AutoModel": "modeling.CustomModel"}}))
    (folder / "modeling.py").write_text(f"open({str(marker)!r}, 'w').write('ran')\n")
    (folder / "model.safetensors").write_bytes(b"")
    ctx["marker"] = marker
    return [*RUN, "--data", csv_file(tmp), "--base-model", str(folder)]


def pickle_model(tmp: Path, ctx) -> list[str]:
    folder = tmp / "pickled"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    (folder / "pytorch_model.bin").write_bytes(b"never loaded")
    return [*RUN, "--data", csv_file(tmp), "--base-model", str(folder)]


def home_is_a_file(tmp: Path, ctx) -> list[str]:
    blocker = tmp / "home-file"
    blocker.write_text("not a folder")
    ctx["env"] = {"TUNEHUB_HOME": str(blocker / "home")}
    return [*RUN, "--data", csv_file(tmp), "--base-model", str(ctx["tiny_model"])]


def disk_full(tmp: Path, ctx) -> list[str]:
    import shutil
    from collections import namedtuple

    usage = namedtuple("usage", "total used free")
    ctx["patch"] = (shutil, "disk_usage", lambda path: usage(10**9, 10**9 - 1000, 1000))
    return [*RUN, "--data", csv_file(tmp), "--base-model", str(ctx["tiny_model"])]


def long_field(tmp: Path, ctx) -> list[str]:
    import tunehub.core.running.data as data_module

    ctx["patch"] = (data_module, "MAX_FIELD_CHARS", 1000)
    body = rows()
    body[4] = ["x" * 5000, "negative"]
    return [*RUN, "--data", csv_file(tmp, body=body)]


def predict(*extra: str):
    return lambda tmp, ctx: ["predict", "financial-sentiment", "--model", ctx["artifact"], *extra]


def predict_latin1(tmp: Path, ctx) -> list[str]:
    path = text_file(tmp, "news.csv", "text\nProfit rose.\nCaf\xe9 sales fell.\n".encode("latin-1"))
    return ["predict", "financial-sentiment", "--model", ctx["artifact"], "--input", path]


def predict_output_exists(tmp: Path, ctx) -> list[str]:
    source = csv_file(tmp, header=("text",), body=[["Profit rose."]], name="in.csv")
    existing = text_file(tmp, "out.csv", "keep me\n")
    ctx["unchanged"] = (Path(existing), "keep me\n")
    return ["predict", "financial-sentiment", "--model", ctx["artifact"], "--input", source,
            "--output", existing]


def env(**values: str):
    """A case that runs `app models` with environment variables set."""
    def build(tmp: Path, ctx) -> list[str]:
        ctx["env"] = values
        return ["models"]
    return build


def monitor_with(setting: str):
    def build(tmp: Path, ctx) -> list[str]:
        stream = text_file(tmp, "posts.jsonl", '{"time": 1700000000, "text": "Profit rose."}\n')
        return ["monitor", "financial-sentiment", "--input", stream, "--set", setting]
    return build


def corrupt_store(*command: str):
    def build(tmp: Path, ctx) -> list[str]:
        import os

        home = Path(os.environ["TUNEHUB_HOME"])
        home.mkdir(parents=True, exist_ok=True)
        (home / "feedback.sqlite3").write_bytes(b"this is not a database" * 100)
        return list(command)
    return build


def registry(content: str, *command: str):
    def build(tmp: Path, ctx) -> list[str]:
        return ["--registry", text_file(tmp, "registry.toml", content), *(command or ("models",))]
    return build


CASES = {
    # settings: ranges, finiteness, known names
    "epochs-zero": (setting("train.epochs=0"), "never be trained"),
    "epochs-negative": (setting("train.epochs=-1"), "never be trained"),
    "max-steps-zero": (setting("train.max_steps=0"), "train.max_steps"),
    "lr-inf": (setting("train.learning_rate=inf"), "finite number > 0"),
    "lr-nan": (setting("train.learning_rate=nan"), "finite number > 0"),
    "lr-negative": (setting("train.learning_rate=-1e-5"), "finite number > 0"),
    "head-lr-scale-zero": (setting("train.head_lr_scale=0"), "finite number > 0"),
    "attention-typo": (setting("train.attention=eagr"), "Did you mean 'eager'"),
    "batch-size-zero": (setting("train.batch_size=0"), "train.batch_size"),
    "eval-batch-size-zero": (setting("train.eval_batch_size=0"), "train.eval_batch_size"),
    "max-length-zero": (setting("train.max_length=0"), ">= 8"),
    "max-length-tiny": (setting("train.max_length=4"), ">= 8"),
    "dropout-one": (setting("head.dropout=1.0"), "head.dropout"),
    "dropout-negative": (setting("head.dropout=-0.1"), "head.dropout"),
    "warmup-too-big": (setting("train.warmup_ratio=1.5"), "train.warmup_ratio"),
    "seed-negative": (setting("train.seed=-1"), "train.seed"),
    "scheduler-typo": (setting("train.scheduler=cosin"), "Did you mean 'cosine'"),
    "optimizer-unknown": (setting("train.optim=adam_w"), "train.optim"),
    "pooling-unknown": (setting("head.pooling=max"), "head.pooling"),
    "precision-unknown": (setting("train.precision=fp16"), "train.precision"),
    "unknown-key": (setting("train.epoch=3"), "Did you mean 'train.epochs'"),
    "not-a-number": (setting("train.epochs=three"), "whole number"),
    "not-an-integer": (setting("train.batch_size=2.5"), "an integer"),
    "epochs-fraction": (setting("train.epochs=1.5"), "whole number"),
    "max-below-min-epochs": (setting("train.max_epochs=1"), "below 'train.min_epochs'"),
    "set-without-equals": (setting("train.epochs"), "key=value"),
    "eval-fraction-one": (setting("dataset.eval_fraction=1"), "dataset.eval_fraction"),
    "report-to-typo": (setting("train.report_to=tensorbord"), "Did you mean 'tensorboard'?"),
    "report-to-none-and-more": (setting("train.report_to=none,tensorboard"), "give 'none' alone"),
    "report-to-not-installed": (tracker_missing, "pip install 'tunehub[tensorboard]'"),
    "logging-steps-negative": (setting("train.logging_steps=-1"), "train.logging_steps"),
    "max-device-batch-negative": (setting("train.max_device_batch=-1"), "train.max_device_batch"),
    "batch-not-shared-by-processes": (processes("3"), "shared equally by this run's 3 processes: "
                                      "32 is not a multiple of 3. Use --set train.batch_size=30 "
                                      "or --set train.batch_size=33."),
    "batch-not-split-by-device-limit": (processes("2", "train.batch_size=34",
                                                  "train.max_device_batch=8"),
                                        "Use --set train.batch_size=32 or --set train.batch_size=36"),
    "world-size-not-a-number": (processes("two"), "WORLD_SIZE must be a whole number"),
    # data files
    "missing-file": (lambda tmp, ctx: [*RUN, "--data", str(tmp / "nope.csv")], "no such file"),
    "unsupported-type": (data(lambda tmp: text_file(tmp, "d.xlsx", "x")), "unsupported file type"),
    "empty-file": (data(lambda tmp: text_file(tmp, "d.csv", "")), "empty"),
    "header-only": (data(lambda tmp: text_file(tmp, "d.csv", "text,label\n")), "no data rows"),
    "duplicate-columns": (data(lambda tmp: csv_file(tmp, header=("text", "text", "label"),
                                                    body=[[t, t, lab] for t, lab in rows()])),
                          "more than once"),
    "missing-column": (data(lambda tmp: csv_file(tmp, header=("sentence", "label"))),
                       "dataset.columns.text"),
    "empty-text": (data(lambda tmp: csv_file(tmp, body=[*rows(), ["", "positive"]])), "empty 'text'"),
    "unknown-label": (data(lambda tmp: csv_file(tmp, body=[*rows(), ["Flat.", "mixed"]])),
                      "unknown label 'mixed'"),
    "not-utf8": (data(lambda tmp: text_file(tmp, "d.csv", "text,label\nCaf\xe9 up,positive\n"
                                            .encode("latin-1"))), "not valid UTF-8"),
    "ragged-row": (data(lambda tmp: text_file(tmp, "d.csv", "text,label\nUp,positive,extra\n")),
                   "fields"),
    "jsonl-number": (data(lambda tmp: jsonl(tmp, 42)), "a number"),
    "jsonl-list": (data(lambda tmp: jsonl(tmp, ["a", "b"])), "a list"),
    "jsonl-object": (data(lambda tmp: jsonl(tmp, {"a": 1})), "an object"),
    "jsonl-null": (data(lambda tmp: jsonl(tmp, None)), "empty 'text'"),
    "jsonl-broken": (data(lambda tmp: text_file(tmp, "d.jsonl", '{"text": "Up", "label": \n')),
                     "not valid JSON"),
    "parquet-nan": (data(lambda tmp: parquet(tmp, float("nan"))), "NaN"),
    "parquet-float": (data(lambda tmp: parquet(tmp, 1.0)), "a number"),
    "field-too-long": (long_field, "longer than 1,000 characters"),
    "too-little-data": (data(lambda tmp: csv_file(tmp, body=[["Up.", "positive"], ["Rose.", "positive"],
                                                             ["Down.", "negative"]])),
                        "too little data"),
    "one-label": (data(lambda tmp: csv_file(tmp, body=[[t, "positive"] for t, _ in rows()])),
                  "only one label"),
    "eval-label-unseen": (lambda tmp, ctx: [*RUN, "--data", csv_file(tmp, body=[r for r in rows() if r[1] != "neutral"]),
                                            "--eval-data", csv_file(tmp, name="e.csv")],
                          "never occur in the training"),
    # models, resume, home
    "remote-code-model": (remote_code_model, "never runs code from a model folder"),
    "pickle-only-model": (pickle_model, "never loads pickle"),
    "model-alias-typo": (lambda tmp, ctx: [*RUN, "--data", csv_file(tmp), "--base-model", "minilmm"],
                         "Did you mean 'minilm'"),
    "model-path-missing": (lambda tmp, ctx: [*RUN, "--data", csv_file(tmp), "--base-model", "./no/such"],
                           "not a registered alias"),
    "unknown-task": (lambda tmp, ctx: ["run-task", "financial-sentimen"], "Did you mean"),
    "resume-nothing": (lambda tmp, ctx: [*RUN, "--data", csv_file(tmp), "--base-model",
                                         str(ctx["tiny_model"]), "--resume"], "no interrupted run"),
    "resume-unknown-id": (lambda tmp, ctx: [*RUN, "--data", csv_file(tmp), "--base-model",
                                            str(ctx["tiny_model"]), "--resume", "20990101-000000-abcdef"],
                          "no interrupted run with that id"),
    "home-is-a-file": (home_is_a_file, "not a folder"),
    "disk-full": (disk_full, "free"),
    # predict, evaluate, serve
    "predict-empty-text": (predict(""), "input 1 is empty"),
    "predict-k-zero": (predict("--k", "0", "Up."), "--k"),
    "predict-k-negative": (predict("--k", "-3", "Up."), "--k"),
    "predict-output-exists": (predict_output_exists, "already exists"),
    "predict-latin1-input": (predict_latin1, "line 3: bytes that are not valid UTF-8 (byte offset 21)"),
    "predict-input-missing": (predict("--input", "/no/such/file.csv"), "no such file"),
    "predict-text-and-input": (predict("Up.", "--input", "x.csv"), "one of them"),
    "predict-unknown-version": (lambda tmp, ctx: ["predict", "financial-sentiment", "--model",
                                                  "financial-sentiment@v9", "Up."], "no fine-tuned"),
    "predict-batch-size-zero": (predict("--batch-size", "0", "--input", "x.csv"), "--batch-size"),
    "evaluate-unknown-label": (lambda tmp, ctx: ["evaluate", "financial-sentiment", "--model", ctx["artifact"],
                                                 "--data", csv_file(tmp, body=[["Flat.", "mixed"]])],
                               "unknown label 'mixed'"),
    "evaluate-bad-quantize": (lambda tmp, ctx: ["evaluate", "financial-sentiment", "--quantize", "int4"],
                              "--quantize"),
    "serve-port-too-big": (lambda tmp, ctx: ["serve", "financial-sentiment", "--port", "99999"], "--port"),
    "serve-port-negative": (lambda tmp, ctx: ["serve", "financial-sentiment", "--port", "-1"], "--port"),
    # names, paths and numbers that used to escape or crash
    "home-empty": (env(TUNEHUB_HOME=""), "TUNEHUB_HOME is set but empty"),
    "home-relative": (env(TUNEHUB_HOME="relative/home"), "must be an absolute path"),
    "rm-empty-task-name": (lambda tmp, ctx: ["models", "rm", "@v1", "--yes"], "names no task"),
    "show-empty-task-name": (lambda tmp, ctx: ["models", "show", "@latest"], "names no task"),
    "int-setting-overflow": (setting("train.batch_size=1e999"), "'train.batch_size' must be an integer"),
    "int-setting-infinite": (setting("train.seed=inf"), "'train.seed' must be an integer"),
    "registry-nested-too-deep": (registry("x = " + "[" * 5000 + "]" * 5000 + "\n"), "nests"),
    "registry-task-paths-number": (registry("[tasks]\npaths = 3\n"), "paths must be a list"),
    "registry-model-number": (registry("[models]\nx = 3\n"), "needs a 'source'"),
    "registry-models-not-table": (registry("models = 3\n"), "[models] must be a table"),
    "since-beyond-calendar": (lambda tmp, ctx: ["feedback", "list", "financial-sentiment",
                                                "--since", "99999999999w"], "outside the calendar"),
    "compare-bootstrap-negative": (lambda tmp, ctx: ["models", "compare", "a@v1", "a@v2",
                                                     "--bootstrap", "-5"], "--bootstrap"),
    "unknown-column-role": (setting("dataset.columns.txt=sentence"), "Did you mean 'text'?"),
    "duplicate-declared-labels": (setting("dataset.labels=negative,neutral,negative"),
                                  "dataset.labels"),
    "feedback-list-corrupt-store": (corrupt_store("feedback", "list", "financial-sentiment"),
                                    "database"),
    "serve-corrupt-store": (corrupt_store("serve", "financial-sentiment"), "feedback store"),
    "feedback-export-missing-folder": (lambda tmp, ctx: ["feedback", "export", "financial-sentiment",
                                                         "--output", str(tmp / "no" / "f.csv")],
                                       "check the path"),
    "predict-output-missing-folder": (lambda tmp, ctx: [
        "predict", "financial-sentiment", "--model", ctx["artifact"], "--input",
        csv_file(tmp, header=("text",), body=[["Profit rose."]], name="in.csv"),
        "--output", str(tmp / "no" / "out.csv")], "no"),
    "monitor-examples-negative": (monitor_with("monitor.examples=-1"), "monitor.examples"),
    "monitor-min-baseline-zero": (monitor_with("monitor.min_baseline_volume=0"),
                                  "monitor.min_baseline_volume"),
    "monitor-method-typo": (monitor_with("monitor.method=zscor"), "Did you mean 'zscore'?"),
    "monitor-threshold-nan": (monitor_with("monitor.threshold=nan"), "monitor.threshold"),
    "compare-bootstrap-zero": (lambda tmp, ctx: ["models", "compare", "a@v1", "a@v2",
                                                 "--bootstrap", "0", "--json"], "--bootstrap"),
}
NEEDS_ARTIFACT = {name for name in CASES if name.startswith(("predict", "evaluate"))}


def snapshot(home: Path) -> set[str]:
    return {str(p.relative_to(home)) for p in home.rglob("*")} if home.exists() else set()


@pytest.mark.parametrize("name", sorted(CASES))
def test_bad_input_is_one_clear_line(name, tmp_path, tunehub_home, tiny_model, tmp_path_factory,
                                     monkeypatch, request):
    build, expected = CASES[name]
    ctx: dict = {"tiny_model": tiny_model}
    if name in NEEDS_ARTIFACT:
        ctx["artifact"] = shared_artifact(tiny_model, tmp_path_factory)
    work = tmp_path / "case"
    work.mkdir()
    args = build(work, ctx)
    for key, value in ctx.get("env", {}).items():
        monkeypatch.setenv(key, value)
    if "patch" in ctx:
        monkeypatch.setattr(*ctx["patch"])
    before = snapshot(tunehub_home)
    result = CliRunner().invoke(main, args)
    lines = result.stderr.strip().splitlines()
    assert result.exit_code == 2, (result.exit_code, result.output, result.exception)
    assert "Traceback" not in result.output
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
    assert expected in lines[0], lines[0]
    assert snapshot(tunehub_home) == before  # nothing published, nothing left behind
    if "marker" in ctx:
        assert not ctx["marker"].exists()  # the folder's code never ran
    if "unchanged" in ctx:
        path, content = ctx["unchanged"]
        assert path.read_text() == content


def test_corpus_is_large_enough():
    assert len(CASES) >= 40
