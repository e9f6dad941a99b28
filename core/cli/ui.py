"""`app ui`: the dashboard (monitoring, versions, feedback review) without loading a model."""
from __future__ import annotations

import click

from .output import catalog_from


@click.command("ui")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Interface to bind; the default answers this machine only.")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(0, 65535),
              help="TCP port (0: any free port).")
@click.option("--api-key", envvar="TUNEHUB_API_KEY", default="", show_default=False,
              help="Key the login form asks for (at least 16 characters; also read from "
                   "TUNEHUB_API_KEY). Needed to promote and to store corrections; beyond "
                   "loopback, for every page, and required to start.")
@click.option("--access-log", is_flag=True, help="Log every request.")
@click.pass_context
def ui(ctx: click.Context, host: str, port: int, api_key: str, access_log: bool) -> None:
    """Serve the dashboard at http://HOST:PORT/ui/ without serving a model.

    It reads what is under TUNEHUB_HOME: the monitor's state (`app monitor`), the versions
    of the hub and the feedback store. `app serve TASK --ui` serves it beside the models.
    """
    from ..operations.feedback import check_store
    from ..running.progress import console
    from ..serving.serve import LOOPBACK, ServeSettings, serve as run_server
    from .serve import check_key

    check_key(host, api_key)
    check_store()  # a damaged feedback store fails now, in one line
    catalog = catalog_from(ctx)
    out = console()
    if host not in LOOPBACK:
        out.print(f"warning: listening on {host}: other machines can reach this dashboard; "
                  "every page needs the API key (the login form asks for it).", markup=False)
    shown = f"[{host}]" if ":" in host else host
    out.print(f"dashboard: http://{shown}:{port}/ui/  (Ctrl+C stops)", markup=False)
    run_server([], ServeSettings(host=host, port=port, api_key=api_key, ui=True),
               access_log=access_log, catalog=catalog)


COMMANDS = [ui]
