"""The tunehub core, in rooms that say what lives there:

- ``extending``: the plugin system (hook specifications, the catalog of what plugins
  register, registry files, task files, the head wrapper);
- ``running``: runs (config, data, the training engine, scoring, reports, comparisons);
- ``artifacts``: the hub (fine-tuned versions, packaged base models, exports, @serving);
- ``models``: the model library heads share (LoRA, bi-encoders, vector search, inference);
- ``serving``: the HTTP app and batch prediction;
- ``operations``: monitoring, alert sinks, feedback and retraining;
- ``cli``: the ``app`` command; ``errors``: the error types every room raises.

Nothing here imports torch or transformers at import time; the functions that need
them import them. The modules' old flat paths (``tunehub.core.runner``, ...) still import,
with a deprecation warning, until the next release: they are the same module objects.
"""
from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys
import warnings

# old module name under tunehub.core -> where it lives now
MOVED = {
    "biencoder": "models.biencoder",
    "compare": "running.compare",
    "config": "running.config",
    "coverage": "running.coverage",
    "data": "running.data",
    "defaults": "extending.defaults",
    "engine": "running.engine",
    "evaluation": "running.evaluation",
    "export": "artifacts.export",
    "feedback": "operations.feedback",
    "heads": "extending.heads",
    "hookspecs": "extending.hookspecs",
    "hub": "artifacts.hub",
    "index": "models.index",
    "inference": "models.inference",
    "lora": "models.lora",
    "metrics": "running.metrics",
    "middleware": "serving.middleware",
    "monitor": "operations.monitor",
    "monitor_io": "operations.monitor_io",
    "monitor_report": "operations.monitor_report",
    "monitor_run": "operations.monitor_run",
    "packaged": "artifacts.packaged",
    "plugins": "extending.plugins",
    "predict_io": "serving.predict_io",
    "progress": "running.progress",
    "promotion": "artifacts.promotion",
    "ranking": "running.ranking",
    "registry": "extending.registry",
    "report": "running.report",
    "results": "running.results",
    "retrain": "operations.retrain",
    "rows": "artifacts.rows",
    "runner": "running.runner",
    "runs": "running.workdirs",
    "safety": "artifacts.safety",
    "serve": "serving.serve",
    "serve_docs": "serving.serve_docs",
    "sinks": "operations.sinks",
    "tasks": "extending.tasks",
    "training": "running.training",
}


class _MovedModules(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Finds ``tunehub.core.<old name>`` and answers with the module at its new path."""

    def find_spec(self, fullname, path=None, target=None):
        prefix, _, name = fullname.rpartition(".")
        if prefix != __name__ or name not in MOVED:
            return None
        return importlib.util.spec_from_loader(fullname, self)

    def create_module(self, spec):
        new = f"{__name__}.{MOVED[spec.name.rpartition('.')[2]]}"
        warnings.warn(f"{spec.name} moved to {new}; the old path goes in the next release.",
                      DeprecationWarning, stacklevel=2)
        return importlib.import_module(new)

    def exec_module(self, module):
        pass  # the module at the new path is already executed


if not any(isinstance(finder, _MovedModules) for finder in sys.meta_path):
    sys.meta_path.append(_MovedModules())
