"""The tokenizer coverage check: a base model that cannot read the data's script is named
before training (a warning; an error under --strict), and the report records the figures."""
from __future__ import annotations

import json

from click.testing import CliRunner

import tunehub
from tunehub.core.running import coverage
from tunehub.core.cli import main

from conftest import tiny_overrides, write_csv

CHINESE = ["公司净利润大幅下降。", "营收同比增长三成，股价大涨。", "董事会宣布提高分红。",
           "该行被下调评级。", "年度股东大会将于五月四日举行。", "公司总部位于上海。"]


def chinese_csv(tmp_path):
    rows = [[text, label] for text, label in zip(CHINESE * 6, ["negative", "positive", "neutral"] * 12)]
    return write_csv(tmp_path / "zh.csv", ["text", "label"], rows)


def test_unknown_tokens_and_byte_splitting_are_measured(tiny_model, tiny_llama):
    from transformers import AutoTokenizer

    wordpiece = AutoTokenizer.from_pretrained(tiny_model)
    english = coverage.measure(wordpiece, ["Profit rose sharply.", "The firm cut 500 jobs."])
    assert english.unknown_share == 0 and coverage.verdict(english, "m") is None
    chinese = coverage.measure(wordpiece, CHINESE)
    assert chinese.unknown_share > 0.3  # MiniLM knows a few hundred common characters
    assert "unknown to the tokenizer of 'm'" in coverage.verdict(chinese, "m")
    assert "gemma3-270m" in coverage.verdict(chinese, "m")
    byte_level = coverage.measure(AutoTokenizer.from_pretrained(tiny_llama), CHINESE)
    assert byte_level.unknown == 0 and byte_level.tokens_per_char > coverage.MAX_TOKENS_PER_CHAR
    assert "tokens per character" in coverage.verdict(byte_level, "m")


def test_validate_data_warns_and_strict_refuses(tiny_model, tmp_path):
    data = str(chinese_csv(tmp_path))
    args = ["validate-data", "financial-sentiment", "--data", data, "--set", f"model={tiny_model}"]
    warned = CliRunner().invoke(main, [*args, "--json"])
    assert warned.exit_code == 0, warned.output
    summary = json.loads(warned.stdout)
    assert "unknown" in summary["tokenizer coverage"] and "can hardly read" in summary["warnings"][-1]
    refused = CliRunner().invoke(main, ["--strict", *args])
    assert refused.exit_code == 2 and "--strict" in refused.stderr and "Traceback" not in refused.output


def test_a_run_records_the_coverage_in_its_report(tiny_model, tmp_path):
    result = tunehub.run_task("financial-sentiment", data=str(chinese_csv(tmp_path)), model=str(tiny_model),
                              overrides=tiny_overrides())
    report = (tmp_path / "home" / "artifacts" / "financial-sentiment" / "v1" / "report.md").read_text()
    assert "tokenizer coverage" in report and "can hardly read" in report
    assert result.metrics
