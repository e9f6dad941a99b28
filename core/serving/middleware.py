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


class ApiKey:
    """ASGI middleware: a request to a guarded path needs the key, as ``Authorization:
    Bearer KEY`` or ``X-API-Key: KEY``, compared in constant time; 401 otherwise.

    Guarded: ``/v1/feedback`` (it writes), and every path but ``/health`` when the server
    binds beyond loopback (where `app serve` refuses to start without a key)."""

    def __init__(self, app, key: str, everywhere: bool) -> None:
        self.app, self.key, self.everywhere = app, key.encode(), everywhere

    def guarded(self, path: str) -> bool:
        return path != "/health" if self.everywhere else path.startswith("/v1/feedback")

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or not self.guarded(scope.get("path", "")):
            return await self.app(scope, receive, send)
        import hmac

        headers = dict(scope.get("headers") or [])
        given = headers.get(b"x-api-key", b"")
        bearer = headers.get(b"authorization", b"")
        if bearer[:7].lower() == b"bearer ":
            given = bearer[7:].strip()
        if self.key and hmac.compare_digest(given, self.key):
            return await self.app(scope, receive, send)
        body = (b'{"detail": "this route needs the API key: send Authorization: Bearer KEY '
                b'(or X-API-Key: KEY), the key the server was started with."}')
        await send({"type": "http.response.start", "status": 401,
                    "headers": [(b"content-type", b"application/json"),
                                (b"www-authenticate", b"Bearer"),
                                (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})
