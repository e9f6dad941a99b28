"""The dashboard (`app serve --ui`, `app ui`): monitoring, versions and feedback review.

Pages and their JSON routes live under ``/ui`` on the server's own FastAPI app, behind the
server's API-key rule (`tunehub.core.serving.middleware.ApiKey`): on loopback every page
reads freely and the writes (promote, feedback) need the key once one is set; beyond
loopback every page needs it. A browser gives the key once in the login form, which sets
an HttpOnly, SameSite=Strict session cookie (an HMAC of an expiry under the key, never the
key itself). Every write must carry the ``X-Tunehub-Dashboard`` header, which a page of
another site cannot send, so no other site can make a browser write here.

Everything the pages load (HTML, JS, CSS) is a file of ``static/``: nothing comes from
another host. Charts are SVG drawn by ``static/dashboard.js``.
"""
from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode

from fastapi import Request  # imported only where the dashboard is mounted
from fastapi.responses import FileResponse, JSONResponse, RedirectResponse, Response

from ..errors import DataError, ModelError, TunehubError
from .middleware import DASHBOARD_HEADER, SESSION_COOKIE, SESSION_SECONDS, session_token, valid_session

PREFIX = "/ui"
STATIC = Path(__file__).parent / "static"
PAGES = {"monitor": "monitor.html", "versions": "versions.html", "feedback": "feedback.html",
         "login": "login.html"}
CSP = ("default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
       "connect-src 'self'; font-src 'self'; frame-ancestors 'none'; base-uri 'none'; "
       "form-action 'self'")


class SecurityHeaders:
    """ASGI middleware: the dashboard's answers forbid other hosts' content (CSP), framing
    and content sniffing; its JSON is never cached."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send):
        path = scope.get("path", "") if scope["type"] == "http" else ""
        if not (path == PREFIX or path.startswith(f"{PREFIX}/")):
            return await self.app(scope, receive, send)
        api = path.startswith(f"{PREFIX}/api/")

        async def with_headers(message):
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers += [(b"content-security-policy", CSP.encode()),
                            (b"x-content-type-options", b"nosniff"),
                            (b"x-frame-options", b"DENY"), (b"referrer-policy", b"same-origin")]
                if api:
                    headers.append((b"cache-control", b"no-store"))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, with_headers)


def add_dashboard(app: Any, settings: Any) -> None:
    """Mount the dashboard's pages, static files and JSON routes on ``app`` (the app of
    `create_app`, whose ``state`` holds the served models and the feedback store)."""
    from fastapi import APIRouter, Depends, HTTPException
    from fastapi.staticfiles import StaticFiles

    from . import ui_versions

    app.add_middleware(SecurityHeaders)
    app.mount(f"{PREFIX}/static", StaticFiles(directory=STATIC), name="dashboard-static")
    router = APIRouter(prefix=PREFIX, include_in_schema=False)
    compared: dict[tuple[str, ...], dict[str, Any]] = {}

    def from_dashboard(request: Request) -> None:
        """Writes come from the dashboard's own pages (a header other sites cannot send)."""
        if request.headers.get(DASHBOARD_HEADER.decode()) != "1":
            raise HTTPException(403, "send the header X-Tunehub-Dashboard: 1 (the dashboard's "
                                     "pages do); for scripts there is POST /v1/feedback and "
                                     "`app models promote`.")

    def fail(exc: TunehubError) -> HTTPException:
        status = 404 if isinstance(exc, ModelError) else 422
        return HTTPException(status, " ".join(str(exc).split()))

    def page(name: str):
        async def show() -> FileResponse:
            return FileResponse(STATIC / PAGES[name], media_type="text/html; charset=utf-8")
        return show

    @router.get("")
    @router.get("/")
    async def home() -> RedirectResponse:
        return RedirectResponse(f"{PREFIX}/monitor", status_code=303)

    for name in PAGES:  # GET /ui/monitor, /ui/versions, /ui/feedback, /ui/login
        router.get(f"/{name}", name=f"{name}_page")(page(name))

    @router.post("/login")
    async def login(request: Request) -> Response:
        import hmac

        form = parse_qs((await request.body()).decode("utf-8", "replace"))
        key = (form.get("key") or [""])[0]
        target = _next((form.get("next") or [""])[0])
        if not settings.api_key:
            return RedirectResponse(target, status_code=303)
        if not hmac.compare_digest(key.encode(), settings.api_key.encode()):
            await asyncio.sleep(0.5)  # slows guessing; the key has at least 16 characters
            query = urlencode({"failed": "1", "next": target})
            return RedirectResponse(f"{PREFIX}/login?{query}", status_code=303)
        import time

        expires = int(time.time()) + SESSION_SECONDS
        answer = RedirectResponse(target, status_code=303)
        answer.set_cookie(SESSION_COOKIE, session_token(settings.api_key, expires),
                          max_age=SESSION_SECONDS, path=PREFIX, httponly=True, samesite="strict",
                          secure=request.url.scheme == "https")
        return answer

    @router.post("/logout")
    async def logout() -> Response:
        answer = RedirectResponse(f"{PREFIX}/login", status_code=303)
        answer.delete_cookie(SESSION_COOKIE, path=PREFIX)
        return answer

    @router.get("/api/session")
    async def session(request: Request) -> dict[str, Any]:
        """What this browser may do: whether a key is set and whether it is signed in."""
        signed_in = valid_session(settings.api_key, request.cookies.get(SESSION_COOKIE, ""))
        return {"key_set": bool(settings.api_key), "loopback": settings.loopback,
                "signed_in": signed_in, "can_write": not settings.api_key or signed_in,
                "served": sorted(request.app.state.models)}

    # -- monitoring ---------------------------------------------------------------------
    @router.get("/api/monitor")
    async def monitored() -> dict[str, Any]:
        from ..operations.monitor_state import monitored_tasks

        return {"tasks": monitored_tasks()}

    @router.get("/api/monitor/{task}")
    async def monitor_state(task: str, request: Request) -> Response:
        from ..operations.monitor_state import read_state, version

        _check_task(task)
        query = request.query_params
        if query.get("version") and query["version"] == await asyncio.to_thread(version, task):
            return JSONResponse({"unchanged": True, "version": query["version"]})
        try:
            options = {"window_s": _number(query, "window_s"), "since": _time(query, "since"),
                       "until": _time(query, "until"),
                       "entities": [e for e in query.getlist("entity") if e] or None}
        except TunehubError as exc:
            raise fail(exc) from None
        return JSONResponse(await asyncio.to_thread(read_state, task, **options))

    # -- versions -----------------------------------------------------------------------
    @router.get("/api/versions")
    async def versions() -> dict[str, Any]:
        return {"tasks": await asyncio.to_thread(ui_versions.versions_overview)}

    @router.get("/api/versions/{task}/{version}/report")
    async def report(task: str, version: str) -> dict[str, Any]:
        files = f"{PREFIX}/api/files/{task}/{version}"
        try:
            html = await asyncio.to_thread(ui_versions.report_html, task, version, files)
        except TunehubError as exc:
            raise fail(exc) from None
        return {"task": task, "version": version, "html": html}

    @router.get("/api/files/{task}/{version}/{relative:path}")
    async def artifact_file(task: str, version: str, relative: str) -> FileResponse:
        try:
            path, kind = ui_versions.artifact_file(task, version, relative)
        except TunehubError as exc:
            raise HTTPException(404, " ".join(str(exc).split())) from None
        return FileResponse(path, media_type=kind)

    @router.post("/api/compare", dependencies=[Depends(from_dashboard)])
    async def compare(body: dict[str, Any], request: Request) -> dict[str, Any]:
        """The figures of `app models compare TASK@A TASK@B` (on B's evaluation rows)."""
        from ..running.compare import compare_versions

        task, a, b = (str(body.get(k, "")) for k in ("task", "a", "b"))
        try:
            first, second = ui_versions.version_of(task, a), ui_versions.version_of(task, b)
            key = (task, a, b, str(first.path.stat().st_mtime), str(second.path.stat().st_mtime))
            if key not in compared:
                if len(compared) >= 32:  # versions do not change: keep the recent results
                    compared.pop(next(iter(compared)))
                compared[key] = await asyncio.to_thread(
                    compare_versions, task, first.ref, second.ref, catalog=_catalog(request.app))
        except TunehubError as exc:
            raise fail(exc) from None
        return compared[key]

    @router.post("/api/promote", dependencies=[Depends(from_dashboard)])
    async def promote(body: dict[str, Any]) -> dict[str, Any]:
        """Point ``@serving`` at TASK@vN; ``confirm`` must repeat the ref (TASK@vN)."""
        from ..artifacts import hub
        from ..artifacts.promotion import promote as move

        task, version = str(body.get("task", "")), str(body.get("version", ""))
        try:
            artifact = ui_versions.version_of(task, version)
        except TunehubError as exc:
            raise fail(exc) from None
        if body.get("confirm") != artifact.ref:
            raise HTTPException(422, f"confirm: promoting changes what the server answers with; "
                                     f"send \"confirm\": \"{artifact.ref}\" to promote it.")
        if not hub.in_hub(artifact.path):
            raise HTTPException(422, f"{artifact.ref} is not a version of the hub.")
        return await asyncio.to_thread(move, artifact, "promoted in the dashboard")

    # -- feedback review ----------------------------------------------------------------
    @router.get("/api/review")
    async def reviewable(request: Request) -> dict[str, Any]:
        from ..operations.review import stored_tasks

        tasks = {*await asyncio.to_thread(stored_tasks), *request.app.state.models}
        return {"tasks": sorted(tasks)}

    @router.get("/api/review/{task}")
    async def review(task: str, request: Request) -> dict[str, Any]:
        from ..operations.review import review_queue

        _check_task(task)
        query = request.query_params
        show = query.get("show", "review")
        if show not in ("review", "low", "flagged", "all"):
            raise HTTPException(422, "show: one of review, low, flagged, all.")
        try:
            threshold = _number(query, "threshold")
            limit = int(query.get("limit", "50"))
        except (TunehubError, ValueError):
            raise HTTPException(422, "threshold and limit must be numbers.") from None
        try:
            shape = await asyncio.to_thread(_shape, request.app, task)
        except TunehubError as exc:
            raise fail(exc) from None
        items = await asyncio.to_thread(
            review_queue, task, fields=shape["fields"],
            threshold=0.6 if threshold is None else threshold, show=show,
            reviewed=query.get("reviewed") == "1", limit=max(1, min(limit, 500)))
        return {"task": task, "corrections": shape["corrections"], "scores": bool(shape["fields"]),
                "retrain": shape["retrain"], "items": items}

    @router.post("/api/feedback", status_code=201, dependencies=[Depends(from_dashboard)])
    async def feedback(body: dict[str, Any], request: Request) -> dict[str, Any]:
        """A reviewer's right answer for a stored prediction: checked and stored exactly as
        POST /v1/feedback does, with ``"source": "dashboard"``."""
        from ..operations.feedback import UnknownPrediction, check_item

        task = body.get("task")
        if not isinstance(task, str):
            raise HTTPException(422, "task: missing; name the task the feedback is about.")
        _check_task(task)
        try:
            shape = await asyncio.to_thread(_shape, request.app, task)
            item = {k: v for k, v in body.items() if k != "source"}
            checked, field = check_item({**item, "source": "dashboard"}, shape["corrections"])
        except TunehubError as exc:
            raise fail(exc) from None
        if not checked.get("prediction_id"):
            raise HTTPException(422, "prediction_id: the dashboard corrects stored predictions; "
                                     "send feedback on other inputs to POST /v1/feedback.")
        try:
            stored = await asyncio.wrap_future(request.app.state.store.add(checked, None, field))
        except UnknownPrediction as exc:
            raise HTTPException(404, str(exc)) from None
        return {"stored": True, **stored}

    app.include_router(router)


def _catalog(app: Any) -> Any:
    """The catalog the server was started with (``app.state.catalog``), else the default."""
    catalog = getattr(app.state, "catalog", None)
    if catalog is None:
        from ..extending.plugins import load_catalog

        catalog = app.state.catalog = load_catalog()
    return catalog


def _shape(app: Any, task: str) -> dict[str, Any]:
    """What feedback on ``task`` looks like: its correction fields (JSON Schema), the
    head's score fields (``monitor_outputs``) and the retrain command with the count of
    feedback since the serving version was trained. A served task's corrections are those
    of the version answering (as POST /v1/feedback checks them); another's, those of its
    ``@serving`` version's settings."""
    from ..artifacts import hub
    from ..operations.review import count_since, store_time

    loaded = app.state.models.get(task)
    try:
        serving = hub.find_artifact(f"{task}@serving")
    except ModelError:
        serving = None
    if loaded is not None:
        head, corrections = loaded.head, loaded.head.corrections(loaded.config, loaded.predictor.labels)
    else:
        from ..running.runner import load_artifact_config, resolve_config

        catalog = _catalog(app)
        spec = catalog.task(task)
        head = catalog.head_of(spec)
        base = load_artifact_config(serving) if serving is not None else None
        corrections = head.corrections(resolve_config(catalog, spec, base=base), None)
    trained = serving.manifest().get("created") if serving is not None else None
    return {"fields": head.monitor_outputs, "corrections": corrections,
            "retrain": {"serving": serving.ref if serving is not None else None,
                        "trained": trained, "since": count_since(task, store_time(trained)),
                        "takes_feedback": bool(corrections),
                        "command": f"app run-task {task} --with-feedback"}}


def _check_task(task: str) -> None:
    from fastapi import HTTPException

    from ..extending.tasks import valid_task_name

    if not valid_task_name(task):
        raise HTTPException(404, f"'{task}' is not a task name.")


def _number(query: Any, name: str) -> float | None:
    value = query.get(name)
    if value in (None, ""):
        return None
    try:
        number = float(value)
    except ValueError:
        raise DataError(f"{name}: expected a number, got '{value}'.") from None
    if number != number or number in (float("inf"), float("-inf")):
        raise DataError(f"{name}: expected a finite number.")
    return number


def _time(query: Any, name: str) -> float | None:
    value = query.get(name)
    if value in (None, ""):
        return None
    from ..operations.monitor import parse_time

    try:
        return parse_time(value)
    except (ValueError, TypeError, OverflowError):
        raise DataError(f"{name}: '{value}' is not a time; give ISO 8601 (2024-03-01 or "
                        "2024-03-01T12:00) or Unix seconds.") from None


def _next(target: str) -> str:
    """Where to go after signing in: a dashboard page, never another site."""
    if target.startswith(f"{PREFIX}/") and not target.startswith("//") and "\\" not in target \
            and not target.startswith(f"{PREFIX}/login"):
        return target
    return f"{PREFIX}/monitor"
