"""ASGI middleware of `app serve`: the request-body limit and the API key.

Both answer before FastAPI parses anything: a body over the limit gets 413 without being
held whole, and a request without the key to a guarded route gets 401.
"""
from __future__ import annotations


class BodyLimit:
    """ASGI middleware: 413 for a request body over ``limit`` bytes (declared or streamed).

    Before answering 413 it reads and drops the rest of the body, up to ``drain`` bytes:
    clients such as Python's urllib and requests send the whole body before reading, and a
    server that closes on them mid-send gives them "connection reset" instead of the 413.
    """

    def __init__(self, app, limit: int, drain: int = 64 * 1024 * 1024) -> None:
        self.app, self.limit, self.drain = app, limit, max(drain, limit)

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            return await self._refuse(receive, send, 0)
        chunks, seen = [], 0  # read the body here (bounded by the limit), then replay it
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client went away
            seen += len(message.get("body", b""))
            if seen > self.limit:
                return await self._refuse(receive, send, seen, message.get("more_body", False))
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        body, replayed = b"".join(chunks), False

        async def replay():
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()  # later: wait for a disconnect

        await self.app(scope, replay, send)

    async def _refuse(self, receive, send, seen: int, more: bool = True) -> None:
        while more and seen <= self.drain:  # let the client finish sending, then answer
            message = await receive()
            if message["type"] != "http.request":
                return
            seen += len(message.get("body", b""))
            more = message.get("more_body", False)
        await _send_json(send, 413, self._message())

    def _message(self) -> str:
        return (f"request body is larger than {self.limit} bytes; send fewer or shorter "
                "inputs per request (server option --max-body-bytes).")


async def _send_json(send, status: int, detail: str) -> None:
    import json

    body = json.dumps({"detail": detail}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


SAFE_METHODS = (b"GET", b"HEAD", b"OPTIONS")
SESSION_COOKIE = "tunehub_session"
SESSION_SECONDS = 12 * 3600
DASHBOARD_HEADER = b"x-tunehub-dashboard"  # the dashboard's own requests carry it


def session_token(key: str, expires: int) -> str:
    """The dashboard's session cookie: its expiry and an HMAC of it under the API key (the
    key itself never goes into a cookie; a new key ends every session)."""
    import hashlib
    import hmac

    mac = hmac.new(key.encode(), f"tunehub-dashboard:{expires}".encode(), hashlib.sha256)
    return f"{expires}.{mac.hexdigest()}"


def valid_session(key: str, token: str) -> bool:
    import hmac
    import time

    expires = token.partition(".")[0]
    if not key or not expires.isdigit() or int(expires) < time.time():
        return False
    return hmac.compare_digest(token.encode(), session_token(key, int(expires)).encode())


def _cookie(headers: dict, name: str) -> str:
    from http.cookies import CookieError, SimpleCookie

    jar = SimpleCookie()
    try:
        jar.load(headers.get(b"cookie", b"").decode("latin-1"))
    except CookieError:
        return ""
    return jar[name].value if name in jar else ""


class ApiKey:
    """ASGI middleware: a request to a guarded path needs the key, as ``Authorization:
    Bearer KEY`` or ``X-API-Key: KEY``, compared in constant time; 401 otherwise.

    Guarded: ``/v1/feedback`` (it writes), and every path but ``/health`` when the server
    binds beyond loopback (where `app serve` refuses to start without a key). With the
    dashboard mounted at ``dashboard`` (such as ``/ui``), its writes (POSTs under
    ``/ui/api/``) are guarded too, its login and logout and static files never are, and its pages
    also take the session cookie its login form sets; a page asked for without either is
    redirected to the login form."""

    def __init__(self, app, key: str, everywhere: bool, dashboard: str | None = None) -> None:
        self.app, self.key, self.everywhere = app, key.encode(), everywhere
        self.text_key, self.dashboard = key, dashboard

    def _open(self, path: str) -> bool:
        if path == "/health":
            return True
        d = self.dashboard
        return bool(d) and (path in (f"{d}/login", f"{d}/logout") or path.startswith(f"{d}/static/"))

    def guarded(self, path: str, method: bytes = b"GET") -> bool:
        if self.everywhere:
            return not self._open(path)
        if path.startswith("/v1/feedback"):
            return True
        d = self.dashboard
        return bool(d) and path.startswith(f"{d}/api/") and method not in SAFE_METHODS

    async def __call__(self, scope, receive, send):
        method = scope.get("method", "GET").encode()
        path = scope.get("path", "")
        if scope["type"] != "http" or not self.guarded(path, method):
            return await self.app(scope, receive, send)
        import hmac

        headers = dict(scope.get("headers") or [])
        given = headers.get(b"x-api-key", b"")
        bearer = headers.get(b"authorization", b"")
        if bearer[:7].lower() == b"bearer ":
            given = bearer[7:].strip()
        if self.key and hmac.compare_digest(given, self.key):
            return await self.app(scope, receive, send)
        page = bool(self.dashboard) and (path == self.dashboard or path.startswith(f"{self.dashboard}/"))
        if page and valid_session(self.text_key, _cookie(headers, SESSION_COOKIE)):
            if method in SAFE_METHODS or headers.get(DASHBOARD_HEADER) == b"1":
                return await self.app(scope, receive, send)
            return await _send_json(send, 403, "a write with the dashboard's session must come "
                                               "from the dashboard itself.")
        if page and method in SAFE_METHODS and not path.startswith(f"{self.dashboard}/api/"):
            return await _redirect(send, f"{self.dashboard}/login?next={_quote(path)}")
        body = (b'{"detail": "this route needs the API key: send Authorization: Bearer KEY '
                b'(or X-API-Key: KEY), the key the server was started with."}')
        await send({"type": "http.response.start", "status": 401,
                    "headers": [(b"content-type", b"application/json"),
                                (b"www-authenticate", b"Bearer"),
                                (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})


def _quote(path: str) -> str:
    from urllib.parse import quote

    return quote(path, safe="/")


async def _redirect(send, location: str) -> None:
    await send({"type": "http.response.start", "status": 303,
                "headers": [(b"location", location.encode()), (b"content-length", b"0")]})
    await send({"type": "http.response.body", "body": b""})
