"""The core's default plugin: common metrics, the default alert rule and the built-in
alert sinks (heads live in default plugins under `tunehub.plugins`, e.g.
`tunehub.plugins.classification`).

It registers through the same hooks as any other plugin; its hooks run last
(``trylast``), so a plugin can see them as fallbacks.
"""
from __future__ import annotations

from .hookspecs import PLUGIN_API_VERSION, hookimpl

TUNEHUB_PLUGIN_API = PLUGIN_API_VERSION


@hookimpl(trylast=True)
def register_metrics(register) -> None:
    from ..running import metrics

    register("accuracy", metrics.accuracy, description="share of rows predicted right")
    register("macro_f1", metrics.macro_f1, description="unweighted mean of per-label F1")
    register("classification_report", metrics.classification_report, scalar=False,
             description="per-label precision, recall, F1 and support")
    register("confusion_matrix", metrics.confusion_matrix, scalar=False,
             description="counts of true label (rows) by predicted label (columns)")
    from ..running import ranking

    for k in (1, 5, 10):
        register(f"recall@{k}", ranking.recall_at(k),
                 description=f"share of relevant items in the top {k}")
    register("hr@10", ranking.recall_at(10),
             description="hit rate: the held-out item is in the top 10")
    register("mrr@10", ranking.mrr_at(10), description="mean reciprocal rank of the first hit in the top 10")
    register("ndcg@10", ranking.ndcg_at(10), description="normalised DCG of the top 10 (binary relevance)")


@hookimpl(trylast=True)
def register_alert_rules(register) -> None:
    from ..operations.monitor import negative_share_rule

    register("negative-share", negative_share_rule,
             description="negative share of a window above the entity's trailing baseline")


@hookimpl(trylast=True)
def register_alert_sinks(register) -> None:
    from ..operations.sinks import FileSink, StdoutSink, WebhookSink

    register("stdout", StdoutSink, description="one JSON line per alert on stdout")
    register("file", FileSink, description="JSON lines appended to a file: file:PATH")
    register("webhook", WebhookSink,
             description="HTTP POST with timeout and retries: webhook:URL (or just the URL)")
