"""Plots draw Chinese text with an installed CJK font (no missing-glyph boxes), and say so
once when no font can."""
from __future__ import annotations

import warnings

import pytest

from tunehub.core.errors import ConfigError
from tunehub.core.running import report


@pytest.fixture(autouse=True)
def fresh_font_choice():
    report.cjk_font.cache_clear()
    yield
    report.cjk_font.cache_clear()


def test_a_confusion_matrix_with_chinese_labels_draws_every_glyph(tmp_path):
    if report.cjk_font() is None:
        pytest.skip("no CJK font installed (Debian: apt install fonts-wqy-microhei)")
    matrix = {"labels": ["负面", "中性", "正面"], "matrix": [[5, 1, 0], [1, 7, 1], [0, 2, 6]]}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert report._plot_confusion(matrix, tmp_path / "confusion.png")
    assert not [w for w in caught if "missing from" in str(w.message)]
    assert (tmp_path / "confusion.png").stat().st_size > 1000


def test_without_a_cjk_font_chinese_text_gets_one_warning(monkeypatch, capsys):
    monkeypatch.setattr(report, "CJK_FONTS", ("No Such Font",))
    report._pyplot(["华辰科技", "远航物流"])
    assert "fonts-noto-cjk" in capsys.readouterr().err
    report._pyplot(["Acme", "Northwind"])  # Latin text needs no CJK font: no warning
    assert "fonts-noto-cjk" not in capsys.readouterr().err


def test_a_font_file_that_is_not_there_is_refused(monkeypatch, tmp_path):
    monkeypatch.setenv("TUNEHUB_CJK_FONT", str(tmp_path / "missing.ttf"))
    with pytest.raises(ConfigError, match="TUNEHUB_CJK_FONT=.*no such font file"):
        report.cjk_font()
