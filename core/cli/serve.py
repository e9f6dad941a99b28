"""`app serve NAME [NAME...]`: an HTTP server for fine-tuned versions (FastAPI + uvicorn)."""
from __future__ import annotations

import click

from .output import catalog_from


def _assign_models(names: tuple[str, ...], models: tuple[str, ...]) -> dict[str, str | None]:
    """--model values to tasks: 'TASK@vN' goes to TASK; a bare value needs one task."""
    from ..errors import ConfigError

    chosen: dict[str, str | None] = dict.fromkeys(names)
    from ..artifacts.hub import parse_ref

    for ref in models:
        task = (parse_ref(ref) or (None, None))[0]
        if task in chosen:
            chosen[task] = ref
        elif len(names) == 1:
            chosen[names[0]] = ref
        else:
            raise ConfigError(f"--model {ref}: with several tasks, give TASK@VERSION for one "
                              f"of {', '.join(names)}.")
    return chosen


@click.command("serve")
@click.argument("names", nargs=-1, required=True)
@click.option("--model", "models", multiple=True,
              help="TASK@vN, TASK@latest or an artifact folder; repeat per task. Default: "
                   "TASK@serving (the promoted version, else the latest), followed as it moves.")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Interface to bind; the default answers this machine only.")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(0, 65535),
              help="TCP port (0: any free port).")
@click.option("--max-batch", default=64, show_default=True, type=click.IntRange(1, None),
              help="Inputs per forward pass.")
@click.option("--max-wait-ms", default=5.0, show_default=True, type=click.FloatRange(0, 60_000),
              help="How long a forward pass waits to gather concurrent requests.")
@click.option("--no-batching", is_flag=True, help="One request per forward pass.")
@click.option("--max-inputs", default=256, show_default=True, type=click.IntRange(1, None),
              help="Inputs per request (413 above).")
@click.option("--max-text-chars", default=10_000, show_default=True, type=click.IntRange(1, None),
              help="Characters per input text (422 above).")
@click.option("--max-body-bytes", default=1_000_000, show_default=True, type=click.IntRange(1, None),
              help="Request body size (413 above).")
@click.option("--quantize", type=click.Choice(["none", "int8"]), default="none", show_default=True,
              help="Dynamic int8 quantisation (measure it first with `app evaluate --quantize`).")
@click.option("--no-log-predictions", is_flag=True,
              help="Do not store predictions (feedback must then send the input, not a "
                   "prediction_id).")
@click.option("--access-log", is_flag=True, help="Log every request.")
@click.option("--ui", is_flag=True,
              help="Also serve the dashboard at /ui: monitoring, versions, feedback review "
                   "(the same API-key rule; `app ui` serves it without models).")
@click.option("--api-key", envvar="TUNEHUB_API_KEY", default="", show_default=False,
              help="Key clients send as 'Authorization: Bearer KEY' (or X-API-Key). Needed for "
                   "/v1/feedback; beyond loopback, for every route but /health, and required "
                   "to start. Also read from TUNEHUB_API_KEY.")
@click.pass_context
def serve(ctx: click.Context, names: tuple[str, ...], models: tuple[str, ...], host: str,
          port: int, max_batch: int, max_wait_ms: float, no_batching: bool, max_inputs: int,
          max_text_chars: int, max_body_bytes: int, quantize: str, no_log_predictions: bool,
          access_log: bool, ui: bool, api_key: str) -> None:
    """Serve tasks NAME... over HTTP: GET /health, GET /v1/tasks, POST /v1/predict, docs at /docs."""
    from ..running.progress import console
    from ..artifacts.promotion import follower
    from ..running.runner import load
    from ..serving.serve import LOOPBACK, ServeSettings, serve as run_server

    check_key(host, api_key)
    if not no_log_predictions:  # a damaged feedback store fails now, not after the models load
        from ..operations.feedback import check_store

        check_store()
    catalog = catalog_from(ctx)
    chosen = _assign_models(names, models)
    following = {name for name, ref in chosen.items() if ref is None}  # TASK@serving
    loaded = [load(name, model=ref or f"{name}@serving", quantize=quantize, catalog=catalog)
              for name, ref in chosen.items()]
    settings = ServeSettings(host=host, port=port, batching=not no_batching, max_batch=max_batch,
                             max_wait_ms=max_wait_ms, max_inputs=max_inputs,
                             max_text_chars=max_text_chars, max_body_bytes=max_body_bytes,
                             log_predictions=not no_log_predictions, api_key=api_key, ui=ui)
    from rich.markup import escape

    out = console()
    if host not in LOOPBACK:
        out.print(f"[yellow]warning:[/] listening on {escape(host)}: other machines can reach this "
                  "server; every route but /health needs the API key.")
    for item in loaded:
        follows = " (follows @serving)" if item.task in following else ""
        out.print(f"serving [bold]{escape(item.task)}[/] with {escape(item.artifact.ref)}{follows}")
    shown = f"[{host}]" if ":" in host else host
    out.print(f"http://{shown}:{port}/v1/predict  (docs: http://{shown}:{port}/docs; Ctrl+C stops)",
              markup=False)
    if ui:
        out.print(f"dashboard: http://{shown}:{port}/ui/", markup=False)
    run_server(loaded, settings, access_log=access_log,
               watch=follower(catalog, following, quantize) if following else None, catalog=catalog)


def check_key(host: str, api_key: str) -> None:
    """Beyond loopback a key is required; a key is at least 16 characters."""
    from ..errors import ConfigError
    from ..serving.serve import LOOPBACK

    if host not in LOOPBACK and not api_key:
        raise ConfigError(f"--host {host} lets other machines reach this server: give it a key "
                          "with --api-key KEY or TUNEHUB_API_KEY (clients send "
                          "'Authorization: Bearer KEY'), or keep --host 127.0.0.1.")
    if api_key and len(api_key) < 16:
        raise ConfigError("--api-key must be at least 16 characters; generate one with "
                          "`python -c \"import secrets; print(secrets.token_urlsafe(24))\"`.")


COMMANDS = [serve]
