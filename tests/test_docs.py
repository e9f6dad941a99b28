"""docs/heads.md is real: its worked example is extracted, registered and run end to end,
and every other code block on the page parses."""
from __future__ import annotations

import json
import re
import sys
import tomllib
from pathlib import Path

import pytest

from tunehub.core.running import runner
from tunehub.core.errors import DataError
from tunehub.core.extending.plugins import load_catalog
from tunehub.testing import Contract

ROOT = Path(__file__).resolve().parents[1]
HEADS = ROOT / "docs" / "heads.md"
BLOCK = re.compile(r"(?:<!-- file: (?P<path>\S+) -->\n)?```(?P<lang>\w*)\n(?P<code>.*?)```", re.S)


def code_blocks(text: str) -> list[tuple[str | None, str, str]]:
    """(file marker or None, language, code) of each fenced block, in page order."""
    return [(m["path"], m["lang"], m["code"]) for m in BLOCK.finditer(text)]


def example_files(text: str) -> dict[str, str]:
    """The worked example's files: blocks marked with the same path are joined in order."""
    files: dict[str, list[str]] = {}
    for path, _, code in code_blocks(text):
        if path:
            files.setdefault(path, []).append(code.strip("\n"))
    return {path: "\n\n\n".join(parts) + "\n" for path, parts in files.items()}


def test_blocks_are_found_with_their_markers():
    text = "<!-- file: a.py -->\n```python\nx = 1\n```\n\n```toml\nk = 2\n```\n"
    assert code_blocks(text) == [("a.py", "python", "x = 1\n"), (None, "toml", "k = 2\n")]
    assert example_files(text + "<!-- file: a.py -->\n```python\ny = 2\n```\n") == {
        "a.py": "x = 1\n\n\ny = 2\n"}


def test_every_code_block_on_the_page_parses():
    blocks = code_blocks(HEADS.read_text())
    assert len(blocks) >= 10
    for path, lang, code in blocks:
        where = f"docs/heads.md block {path or code.splitlines()[0]!r}"
        if lang == "python":
            compile(code, where, "exec")
        elif lang == "toml":
            tomllib.loads(code)
        elif lang == "jsonl":
            assert all(isinstance(json.loads(line), dict) for line in code.splitlines()), where
        else:
            pytest.fail(f"{where}: unchecked language {lang!r}; add a check here")


def test_plugins_page_links_the_heads_page():
    assert "(heads.md)" in (ROOT / "docs" / "plugins.md").read_text()


def test_example_imports_only_the_public_surface():
    source = example_files(HEADS.read_text())["acme_ner/__init__.py"]
    imported = re.findall(r"^\s*(?:from|import) (tunehub\S*)", source, re.M)
    assert imported == ["tunehub.plugin"]


@pytest.fixture
def acme_ner(tmp_path, monkeypatch) -> Path:
    """The example package written out of the page, loaded by a registry by module name."""
    package = tmp_path / "acme-ner"
    for relative, content in example_files(HEADS.read_text()).items():
        target = package / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(content)
    project = tomllib.loads((package / "pyproject.toml").read_text())
    assert project["project"]["entry-points"]["tunehub"] == {"acme_ner": "acme_ner"}
    monkeypatch.syspath_prepend(str(package))
    registry = tmp_path / "registry.toml"
    registry.write_text('[plugins]\nmodules = ["acme_ner"]\n')
    yield registry
    for name in [m for m in sys.modules if m == "acme_ner" or m.startswith("acme_ner.")]:
        del sys.modules[name]


def test_worked_example_trains_predicts_and_evaluates(acme_ner, tiny_model):
    contract = Contract("acme-ner", [acme_ner], model=tiny_model)
    assert contract.catalog.owners["heads"]["acme-bio-tagger"] == "acme_ner"
    result, answers = contract.run_all()  # includes the determinism and --quantize checks
    assert set(result.metrics) == {"span_f1", "tag_accuracy"}
    assert set(result.baselines["most-frequent-tag"]) == {"span_f1", "tag_accuracy"}
    assert result.baselines["most-frequent-tag"]["tag_accuracy"] > 0.5  # it learns the lexicon
    assert set(result.details["span_report"]) <= {"PER", "ORG", "LOC"}
    report = (Path(result.artifact) / "report.md").read_text()
    assert "## Span report" in report and "| LOC |" in report
    assert (Path(result.artifact) / "model" / "model.safetensors").is_file()
    assert len(answers) == 3 and all(isinstance(a["entities"], list) for a in answers)

    again = runner.evaluate("acme-ner", model=result.artifact, catalog=contract.catalog)
    assert again.metrics == result.metrics  # the saved model scores as the trained one did
    quantised = runner.evaluate("acme-ner", model=result.artifact, quantize="int8",
                                catalog=contract.catalog)
    assert "span_f1 int8 vs fp32" in quantised.notes

    text = "Ann Lee joined Globex in Oslo ."
    for entity in runner.predict("acme-ner", [text], model=result.artifact,
                                 catalog=contract.catalog)[0]["entities"]:
        assert text[entity["start"]:entity["end"]] == entity["text"]
        assert entity["type"] in {"PER", "ORG", "LOC"} and 0 <= entity["score"] <= 1


@pytest.mark.parametrize("row, message", [
    ({"tokens": ["Ann", "left"], "tags": ["B-PER"]}, "2 words but 1 tags; give exactly one tag per word"),
    ({"tokens": ["Ann"], "tags": ["PER"]}, "tag 'PER' is not a BIO tag; use O, B-TYPE or I-TYPE"),
    ({"tokens": "Ann left", "tags": ["B-PER", "O"]}, "must be non-empty lists of strings"),
])
def test_worked_example_names_file_row_and_fix(acme_ner, tmp_path, row, message):
    good = {"tokens": ["Acme", "hired", "Ann"], "tags": ["B-ORG", "O", "B-PER"]}
    data = tmp_path / "bad.jsonl"
    data.write_text("\n".join(json.dumps(r) for r in (good, row, good)) + "\n")
    catalog = load_catalog(registries=[acme_ner])
    with pytest.raises(DataError, match=re.escape(f"{data}, row 2: ") + ".*" + re.escape(message)):
        runner.validate_data("acme-ner", data=data, catalog=catalog)


REFERENCE = ROOT / "docs" / "reference.md"
PUBLIC_MODULES = ["tunehub.plugin", "tunehub.plugin.lora", "tunehub.plugin.biencoder",
                  "tunehub.plugin.index", "tunehub.plugin.ranking",
                  "tunehub.plugin.generation", "tunehub.plugin.onnx_backend"]


def test_every_public_name_has_its_reference_entry():
    """A plugin author finds every public name's signature, return value and errors in
    docs/reference.md, under its module's section."""
    import importlib

    text = REFERENCE.read_text()
    sections = dict(re.findall(r"(?ms)^## (tunehub\.plugin[\w.]*)\n(.*?)(?=^## |\Z)", text))
    assert sorted(sections) == sorted(PUBLIC_MODULES)
    for module in PUBLIC_MODULES:
        documented = re.findall(r"(?m)^### `(\w+)`", sections[module])
        names = importlib.import_module(module).__all__
        assert sorted(documented) == sorted(names), module
    for code in re.findall(r"```python\n(.*?)```", text, re.S):
        compile(code, "docs/reference.md", "exec")


def test_every_hook_is_documented():
    from tunehub.core.extending import hookspecs

    hooks = [name for name in dir(hookspecs) if name.startswith("register_")]
    text = (ROOT / "docs" / "plugins.md").read_text()
    assert hooks and [h for h in hooks if f"### {h}(register)" not in text] == []


def test_relative_links_in_the_docs_resolve():
    pages = [*(ROOT / "docs").rglob("*.md"), ROOT / "README.md"]
    broken = [(page.name, target) for page in pages
              for target in re.findall(r"\]\(([^)\s#]+)(?:#[^)]*)?\)", page.read_text())
              if not re.match(r"[a-z]+://", target) and not (page.parent / target).exists()]
    assert broken == []
