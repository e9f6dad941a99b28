"""One tiny financial-sentiment artifact per test session, shared by the predict, serve and
hub tests (training is the slow part). Tests must not delete it."""
from __future__ import annotations

import os
from pathlib import Path


def shared_artifact(tiny_model: Path, tmp_path_factory) -> str:
    home = tmp_path_factory.getbasetemp() / "shared-sentiment-home"
    folder = home / "artifacts" / "financial-sentiment" / "v1"
    if not (folder / "manifest.json").is_file():
        import tunehub

        from conftest import tiny_overrides

        saved = os.environ.get("TUNEHUB_HOME")
        os.environ["TUNEHUB_HOME"] = str(home)
        try:
            tunehub.run_task("financial-sentiment", model=str(tiny_model), overrides=tiny_overrides())
        finally:
            if saved is None:
                os.environ.pop("TUNEHUB_HOME", None)
            else:
                os.environ["TUNEHUB_HOME"] = saved
    return str(folder)
