"""pytest plugin (auto-loaded through the ``pytest11`` entry point): tunehub fixtures.

``tunehub_tiny_model`` — a tiny random BERT folder (built once per session);
``tunehub_isolated_home`` — a temporary ``TUNEHUB_HOME`` for one test;
``tunehub_contract`` — ``tunehub_contract("task", registries=...)`` returns a `Contract`.
"""
from __future__ import annotations

from pathlib import Path

import pytest

from .contract import Contract
from .models import build_tiny_model


@pytest.fixture(scope="session")
def tunehub_tiny_model(tmp_path_factory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("tunehub-tiny-bert"))


@pytest.fixture
def tunehub_isolated_home(tmp_path, monkeypatch) -> Path:
    home = tmp_path / "tunehub-home"
    monkeypatch.setenv("TUNEHUB_HOME", str(home))
    return home


@pytest.fixture
def tunehub_contract(tunehub_tiny_model, tunehub_isolated_home):
    def make(task: str, registries=(), inputs=None, overrides=()) -> Contract:
        return Contract(task, tuple(registries), tunehub_tiny_model, inputs, tuple(overrides))

    return make
