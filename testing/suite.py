"""`TaskContract`: subclass it in a test module, set ``task``, get the contract tests."""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest

from .contract import Contract


class TaskContract:
    """The contract tests for ``task`` (lm-evaluation-harness style shared test class).

    Class attributes: ``task`` (required), ``registries`` (extra registry files),
    ``predict_inputs`` (else taken from the eval data), ``overrides`` (extra ``--set``).
    Each test runs with its own ``TUNEHUB_HOME`` in a temporary folder.
    """

    task: str = ""
    registries: Sequence[str | Path] = ()
    predict_inputs: Sequence[str] | None = None
    overrides: Sequence[str] = ()

    @pytest.fixture(autouse=True)
    def _tunehub_contract_home(self, tmp_path, monkeypatch):
        monkeypatch.setenv("TUNEHUB_HOME", str(tmp_path / "tunehub-home"))
        monkeypatch.setenv("HF_HUB_OFFLINE", "1")

    @pytest.fixture
    def contract(self) -> Contract:
        if not self.task:
            pytest.fail(f"{type(self).__name__}: set the class attribute 'task'.")
        return Contract(self.task, tuple(self.registries), inputs=self.predict_inputs,
                        overrides=tuple(self.overrides))

    def test_task_file_validates(self, contract: Contract) -> None:
        contract.task_file()

    def test_data_loads_and_matches_schema(self, contract: Contract) -> None:
        contract.data()

    def test_head_builds_with_tiny_model(self, contract: Contract) -> None:
        contract.head()

    def test_metrics_are_numbers_with_direction(self, contract: Contract) -> None:
        contract.metrics()

    def test_one_step_training_and_predict(self, contract: Contract) -> None:
        result, answers = contract.train_and_predict()
        assert result.metrics and answers

    def test_same_seed_gives_same_metrics(self, contract: Contract) -> None:
        second = contract.determinism()
        assert second.metrics

    def test_quantize_changes_the_model_or_is_refused(self, contract: Contract) -> None:
        assert contract.quantize() in ("quantised", "refused")
