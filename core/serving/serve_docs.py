"""API docs that work offline: Swagger UI and ReDoc served from this server.

FastAPI's default ``/docs`` and ``/redoc`` pages load their JavaScript and CSS from a CDN,
so they are blank on air-gapped machines. This is FastAPI's documented self-hosting
recipe, with the assets bundled by the ``fastapi-offline`` package: no page references an
external host (fonts and favicon included).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

STATIC = "/static-docs"


def assets_folder() -> Path:
    import fastapi_offline

    return Path(fastapi_offline.__file__).parent / "static"


def add_offline_docs(app: Any) -> None:
    """``/docs`` (Swagger UI) and ``/redoc`` from local assets; the app must be created with
    ``docs_url=None, redoc_url=None``."""
    from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
    from fastapi.staticfiles import StaticFiles

    app.mount(STATIC, StaticFiles(directory=assets_folder()), name="static-docs")

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui():
        return get_swagger_ui_html(
            openapi_url=app.openapi_url, title=f"{app.title} - API docs",
            swagger_js_url=f"{STATIC}/swagger-ui-bundle.js",
            swagger_css_url=f"{STATIC}/swagger-ui.css",
            swagger_favicon_url=f"{STATIC}/favicon.png")

    @app.get("/redoc", include_in_schema=False)
    async def redoc():
        return get_redoc_html(openapi_url=app.openapi_url, title=f"{app.title} - ReDoc",
                              redoc_js_url=f"{STATIC}/redoc.standalone.js",
                              redoc_favicon_url=f"{STATIC}/favicon.png", with_google_fonts=False)
