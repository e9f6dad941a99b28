"""Data validation: every error names the file, the row and the fix; exit code 2."""
from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from tunehub.core.cli import main
from tunehub.core.running.data import read_table, stratified_split
from tunehub.core.errors import DataError
from tunehub.core.running.runner import validate_data

from conftest import write_csv


def validate(path, *overrides, eval_data=None):
    return validate_data("financial-sentiment", data=path, eval_data=eval_data, overrides=overrides)


def test_valid_csv_gives_a_summary(labelled_csv):
    data = validate(labelled_csv)
    assert data.info["labels"] == ["negative", "neutral", "positive"]
    assert data.summary["train rows"] + data.summary["eval rows"] == 18
    assert data.summary["eval labels"] == {"negative": 1, "neutral": 1, "positive": 1}


def test_missing_column_names_columns_and_fix(tmp_path):
    path = write_csv(tmp_path / "d.csv", ["sentence", "label"], [["Up.", "positive"]])
    with pytest.raises(DataError) as err:
        validate(path)
    message = str(err.value)
    assert "no column 'text'" in message and "sentence, label" in message
    assert "--set dataset.columns.text=<column>" in message


def test_column_mapping_fixes_it(tmp_path, labelled_csv):
    rows = [line.split(",", 1) for line in labelled_csv.read_text().splitlines()[1:]]
    path = write_csv(tmp_path / "m.csv", ["sentence", "sentiment"], rows)
    data = validate(path, "dataset.columns.text=sentence", "dataset.columns.label=sentiment")
    assert data.summary["train rows"] == 15


def test_unknown_label_names_row_and_expected(tmp_path):
    path = write_csv(tmp_path / "d.csv", ["text", "label"],
                     [["Up.", "positive"], ["Flat.", "meh"]])
    with pytest.raises(DataError, match=r"d\.csv, row 3: unknown label 'meh'\. Expected one of negative, neutral, positive"):
        validate(path)


def test_labels_are_read_from_data_when_not_declared(tmp_path):
    rows = [[f"text {i}", label] for i in range(6) for label in ("spam", "ham")]
    path = write_csv(tmp_path / "d.csv", ["text", "label"], rows)
    data = validate(path, "dataset.labels=")
    assert data.info["labels"] == ["ham", "spam"]


def test_empty_text_names_row(tmp_path):
    path = write_csv(tmp_path / "d.csv", ["text", "label"], [["Up.", "positive"], ["  ", "neutral"]])
    with pytest.raises(DataError, match=r"row 3: empty 'text'"):
        validate(path)


@pytest.mark.parametrize("content, expected", [
    (b"", "the file is empty"),
    (b"text,label\n", "no data rows"),
    (b"text,label\nfine,positive\ncaf\xe9 prices,neutral\n", r"line 3: bytes that are not valid UTF-8"),
    (b'text,label\n"a, b",positive,extra\n', "row 2: 3 fields, the header has 2"),
])
def test_malformed_files(tmp_path, content, expected):
    path = tmp_path / "bad.csv"
    path.write_bytes(content)
    with pytest.raises(DataError, match=expected):
        read_table(path)


def test_missing_file_and_unsupported_type(tmp_path):
    with pytest.raises(DataError, match="no such file"):
        read_table(tmp_path / "nope.csv")
    with pytest.raises(DataError, match="unsupported file type '.xlsx'"):
        read_table(tmp_path / "data.xlsx")


def test_jsonl_and_bad_json_line(tmp_path):
    path = tmp_path / "d.jsonl"
    path.write_text(json.dumps({"text": "Up.", "label": "positive"}) + "\n{oops\n")
    with pytest.raises(DataError, match=r"d\.jsonl, line 2: not valid JSON"):
        read_table(path)
    path.write_text("\n".join(json.dumps({"text": f"t{i}", "label": "neutral"}) for i in range(3)))
    assert len(read_table(path)) == 3


def test_parquet_is_read(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = tmp_path / "d.parquet"
    pq.write_table(pa.table({"text": ["a", "b"], "label": ["positive", "negative"]}), path)
    table = read_table(path)
    assert table.columns == ["text", "label"] and table.rows[1] == {"text": "b", "label": "negative"}


def test_eval_label_missing_from_training(tmp_path):
    train = write_csv(tmp_path / "train.csv", ["text", "label"],
                      [["Up.", "positive"], ["Down.", "negative"]])
    test = write_csv(tmp_path / "test.csv", ["text", "label"], [["Flat.", "neutral"]])
    with pytest.raises(DataError, match="label.s. neutral never occur in the training file"):
        validate(train, eval_data=test)


def test_stratified_split_is_seeded_and_keeps_every_label():
    labels = ["a"] * 10 + ["b"] * 5 + ["c"] * 2
    train, held = stratified_split(labels, 0.2, seed=1)
    assert (train, held) == stratified_split(labels, 0.2, seed=1)
    assert sorted(train + held) == list(range(17))
    assert {labels[i] for i in held} == {"a", "b", "c"}


def test_cli_data_error_exits_2_without_traceback(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_bytes(b"text,label\n\xff\xfe,positive\n")
    result = CliRunner().invoke(main, ["validate-data", "financial-sentiment", "--data", str(path)])
    assert result.exit_code == 2
    assert "not valid UTF-8" in result.stderr and "Traceback" not in result.output


def test_cli_validate_data_json(labelled_csv):
    result = CliRunner().invoke(main, ["validate-data", "financial-sentiment", "--data",
                                       str(labelled_csv), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["valid"] is True
