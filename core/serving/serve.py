"""The HTTP server: FastAPI app, micro-batching, request limits.

Models are loaded once before the server starts. Concurrent requests for one task are
gathered into one forward pass: the batcher takes what is queued, waits up to
``max_wait_ms`` for more (up to ``max_batch`` inputs), predicts on a single worker thread
(so forward passes never compete for the CPU), and hands each request its own slice.
While one batch runs the next one fills, so throughput grows with load.

Every output carries a ``prediction_id``; predictions are stored (see `tunehub.core.operations.feedback`)
so that ``POST /v1/feedback`` can name one. A server that follows the ``@serving`` pointer
(``watch``) swaps in a newly promoted version without dropping requests: the new version
gets a new batcher, and the old one finishes what it has queued before it stops.

The routes' request and response models, and the Hugging Face shapes they accept and
answer in, are in `tunehub.core.serving.schemas`.
"""
from __future__ import annotations

import asyncio
import sys
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import TunehubError, did_you_mean
from .middleware import ApiKey, BodyLimit
from .schemas import (FEEDBACK_SHAPE, PREDICT_SHAPE, TAGS, FeedbackResponse, HealthResponse,
                      PredictRequest, PredictResponse, StreamEvent, StreamRequest, TasksResponse,
                      error_text, errors, feedback_request, hugging_face_output)

LOOPBACK = ("127.0.0.1", "localhost", "::1")


@dataclass(frozen=True)
class ServeSettings:
    host: str = "127.0.0.1"
    port: int = 8000
    batching: bool = True  # False: one request per forward pass
    max_batch: int = 64  # inputs per forward pass
    max_wait_ms: float = 5.0  # how long a batch waits for more requests
    max_inputs: int = 256  # per request (413 above)
    max_text_chars: int = 10_000  # per input string (422 above)
    max_body_bytes: int = 1_000_000  # request body (413 above)
    graceful_timeout_s: int = 30  # finish in-flight requests on shutdown
    log_predictions: bool = True  # store predictions so feedback can name a prediction_id
    reload_interval_s: float = 2.0  # how often a watched task's serving pointer is checked
    api_key: str = ""  # when set: needed for /v1/feedback; beyond loopback: for every route but /health
    ui: bool = False  # mount the dashboard under /ui (`tunehub.core.serving.ui`)

    @property
    def loopback(self) -> bool:
        return self.host in LOOPBACK


@dataclass
class _Pending:
    inputs: list[Any]
    future: asyncio.Future


class MicroBatcher:
    """Gathers concurrent requests for one model into batched ``predict`` calls."""

    def __init__(self, predict, executor: ThreadPoolExecutor, settings: ServeSettings) -> None:
        self.predict, self.executor, self.settings = predict, executor, settings
        self.queue: asyncio.Queue[_Pending] = asyncio.Queue()
        self.task: asyncio.Task | None = None
        self.batches = 0
        self.inputs = 0
        self.busy = False  # a batch is being gathered or predicted

    @property
    def idle(self) -> bool:
        return self.queue.empty() and not self.busy

    def start(self) -> None:
        self.task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        if self.task:
            self.task.cancel()
            try:
                await self.task
            except asyncio.CancelledError:
                pass

    async def submit(self, inputs: list[Any]) -> list[dict[str, Any]]:
        future = asyncio.get_running_loop().create_future()
        await self.queue.put(_Pending(inputs, future))
        return await future

    async def _gather(self) -> list[_Pending]:
        batch = [await self.queue.get()]
        self.busy = True  # from here until the batch is answered
        if not self.settings.batching:
            return batch
        size = len(batch[0].inputs)
        deadline = time.monotonic() + self.settings.max_wait_ms / 1000
        while size < self.settings.max_batch:
            try:
                item = self.queue.get_nowait()
            except asyncio.QueueEmpty:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                try:
                    item = await asyncio.wait_for(self.queue.get(), left)
                except asyncio.TimeoutError:
                    break
            batch.append(item)
            size += len(item.inputs)
        return batch

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            self.busy = False
            batch = await self._gather()
            flat = [x for item in batch for x in item.inputs]
            try:
                outputs = await loop.run_in_executor(self.executor, self.predict, flat)
                if len(outputs) != len(flat):
                    raise RuntimeError(f"model returned {len(outputs)} outputs for {len(flat)} inputs")
            except Exception:
                if len(batch) == 1:
                    await self._answer_alone(batch[0])
                else:  # isolate the failing request: answer each on its own
                    for item in batch:
                        await self._answer_alone(item)
                continue
            self.batches += 1
            self.inputs += len(flat)
            start = 0
            for item in batch:
                if not item.future.done():
                    item.future.set_result(outputs[start:start + len(item.inputs)])
                start += len(item.inputs)

    async def _answer_alone(self, item: _Pending) -> None:
        loop = asyncio.get_running_loop()
        try:
            result = await loop.run_in_executor(self.executor, self.predict, item.inputs)
            if not item.future.done():
                item.future.set_result(result)
        except Exception as exc:
            if not item.future.done():
                item.future.set_exception(exc)


def _public_name(base: Any) -> Any:
    """A base model as clients may see it: an alias or hub id, never a local path."""
    if isinstance(base, str) and (base.startswith(("/", ".", "~")) or "\\" in base
                                  or base.count("/") > 1):
        return Path(base).name
    return base


def create_app(models: Sequence[Any], settings: ServeSettings | None = None,
               store: Any = None, watch: Callable[[str, str], Any] | None = None):
    """The FastAPI app serving already-loaded models (`runner.Loaded` objects).

    ``store`` is a `FeedbackStore` (default: the one under ``TUNEHUB_HOME``). ``watch(task,
    current_ref)``, when given, is polled every ``reload_interval_s`` for the tasks it
    follows and returns a newly loaded model to swap in, or None.
    """
    from fastapi import Body, FastAPI, HTTPException, Request

    from .serve_docs import add_offline_docs
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import JSONResponse, StreamingResponse

    from ..operations.feedback import FeedbackStore

    settings = settings or ServeSettings()
    by_task = {m.task: m for m in models}
    executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="tunehub-predict")
    batchers: dict[str, MicroBatcher] = {}
    own_store = store is None
    store = store if store is not None else FeedbackStore()

    @asynccontextmanager
    async def lifespan(app):
        for name, loaded in by_task.items():
            batchers[name] = MicroBatcher(loaded.predict, executor, settings)
            batchers[name].start()
        watcher = asyncio.get_running_loop().create_task(_follow()) if watch else None
        yield
        if watcher:
            watcher.cancel()
        for batcher in list(batchers.values()):  # in-flight requests have finished by now
            await batcher.stop()
        executor.shutdown(wait=True)
        if own_store:
            store.close()

    async def _follow() -> None:
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(settings.reload_interval_s)
            for name in list(by_task):
                try:
                    new = await loop.run_in_executor(None, watch, name, by_task[name].artifact.ref)
                except Exception as exc:  # keep serving the current version
                    print(f"warning: reloading {name} failed: {exc}", file=sys.stderr)
                    continue
                if new is not None:
                    await _swap(name, new)

    async def _swap(name: str, new: Any) -> None:
        old = batchers[name]
        fresh = MicroBatcher(new.predict, executor, settings)
        fresh.start()
        by_task[name], batchers[name] = new, fresh  # new requests go to the new version
        while not old.idle:  # queued requests finish on the old one
            await asyncio.sleep(0.01)
        await old.stop()

    app = FastAPI(title="tunehub", description="Predictions of fine-tuned tunehub models.",
                  openapi_tags=TAGS, lifespan=lifespan, docs_url=None, redoc_url=None)
    add_offline_docs(app)  # /docs and /redoc without a CDN
    app.add_middleware(BodyLimit, limit=settings.max_body_bytes)
    if settings.api_key or not settings.loopback:
        app.add_middleware(ApiKey, key=settings.api_key, everywhere=not settings.loopback,
                           dashboard="/ui" if settings.ui else None)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError):
        shape = FEEDBACK_SHAPE if request.url.path.endswith("/feedback") else PREDICT_SHAPE
        return JSONResponse({"detail": error_text(exc.errors(), shape)}, status_code=422)

    @app.get("/health", response_model=HealthResponse, tags=["service"])
    async def health() -> dict[str, Any]:
        """Up: the names of the tasks served (needs no API key)."""
        return {"status": "ok", "tasks": sorted(by_task)}

    @app.get("/v1/tasks", response_model=TasksResponse, tags=["service"], responses=errors(401))
    async def tasks() -> dict[str, Any]:
        """Each served task: its version, head, feedback corrections and primary metric."""
        out = []
        for name, loaded in by_task.items():
            manifest = loaded.artifact.manifest()
            out.append({"task": name, "model": loaded.artifact.ref,
                        "head": loaded.head.name, "corrections": corrections_of(loaded),
                        "base_model": _public_name(manifest.get("base_model")),
                        "primary_metric": manifest.get("primary_metric"),
                        "value": manifest.get("primary_value"), "created": manifest.get("created"),
                        "batches": batchers[name].batches if name in batchers else 0})
        return {"tasks": out}

    def not_served(name: str) -> HTTPException:
        return HTTPException(404, f"task '{name}' is not served here.{did_you_mean(name, by_task)} "
                                  f"Served: {', '.join(sorted(by_task))}.")

    def task_of(name: str | None) -> str:
        """The served task a request names (or the only one)."""
        if name is None:
            if len(by_task) != 1:
                raise HTTPException(422, f"name the task: one of {', '.join(sorted(by_task))}.")
            return next(iter(by_task))
        if name not in by_task:
            raise not_served(name)
        return name

    @app.post("/v1/predict", response_model=PredictResponse, tags=["predict"],
              responses=errors(401, 404, 413, 422))
    async def predict(body: PredictRequest):
        """Predict for a list of inputs (one output each, in order), or for one input
        (Hugging Face's `{"inputs": "one text"}`: `outputs` is then one object)."""
        name = task_of(body.task)
        single = not isinstance(body.inputs, list)
        inputs = [body.inputs] if single else list(body.inputs)
        if not inputs:
            raise HTTPException(422, "inputs is empty; send at least one input.")
        if len(inputs) > settings.max_inputs:
            raise HTTPException(413, f"{len(inputs)} inputs in one request; the limit is "
                                     f"{settings.max_inputs}. Split the request.")
        for i, item in enumerate(inputs):
            where = "inputs" if single else f"inputs.{i}"
            if isinstance(item, str) and len(item) > settings.max_text_chars:
                raise HTTPException(422, f"{where}: {len(item)} characters; the limit is "
                                         f"{settings.max_text_chars}. Shorten the text.")
            if isinstance(item, str) and not item.strip():
                raise HTTPException(422, f"{where}: empty text.")
        loaded, batcher = by_task[name], batchers[name]  # one version answers the request
        try:
            outputs = await batcher.submit(inputs)
        except Exception as exc:  # the model failed on this request
            message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise HTTPException(422 if _is_user_error(exc) else 500, message) from None
        ref = loaded.artifact.ref
        if settings.log_predictions:
            ids = store.record_predictions(name, ref, inputs, outputs)
        else:
            ids = [uuid.uuid4().hex for _ in outputs]
        outputs = [{**hugging_face_output(out), "prediction_id": pid} for out, pid in zip(outputs, ids)]
        return JSONResponse({"task": name, "model": ref, "outputs": outputs[0] if single else outputs})

    @app.post("/v1/stream", response_class=StreamingResponse, tags=["predict"], responses={
        200: {"content": {"text/event-stream": {"schema": StreamEvent.model_json_schema()}},
              "description": 'Server-sent events (`data: {...}`, each a StreamEvent): {"text": '
                             'piece} as the answer is written, then {"done": true, "text": '
                             'answer, "prediction_id": ..., "model": ...}.'},
        **errors(401, 404, 422)})
    async def stream(body: StreamRequest):
        """Stream the answer to one input as it is written (tasks whose head streams)."""
        name = task_of(body.task)
        if not body.input.strip():
            raise HTTPException(422, "input: empty text.")
        if len(body.input) > settings.max_text_chars:
            raise HTTPException(422, f"input: {len(body.input)} characters; the limit is "
                                     f"{settings.max_text_chars}. Shorten the text.")
        loaded = by_task[name]
        if not loaded.predictor.streams:
            raise HTTPException(422, f"task '{name}' does not stream its answers (head "
                                     f"'{loaded.head.name}'); use /v1/predict.")
        pieces, ref = loaded.predictor.stream(body.input), loaded.artifact.ref

        def events():
            text = ""
            try:
                for piece in pieces:
                    text += piece
                    yield _event({"text": piece})
            except Exception as exc:  # the model failed mid-answer: say so, end the stream
                yield _event({"error": str(exc).splitlines()[0] if str(exc) else type(exc).__name__})
                return
            if settings.log_predictions:
                pid = store.record_predictions(name, ref, [body.input], [{"text": text}])[0]
            else:
                pid = uuid.uuid4().hex
            yield _event({"done": True, "text": text, "prediction_id": pid, "model": ref})

        return StreamingResponse(events(), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache"})

    FeedbackBody = feedback_request({name: corrections_of(m) for name, m in by_task.items()})

    async def feedback(body: Any = Body(
            ..., examples=[{"task": "financial-sentiment", "prediction_id": "3f2c...",
                            "label": "negative"}])) -> dict[str, Any]:
        """Store the right answer for a prediction (by prediction_id) or an input."""
        from ..operations.feedback import UnknownPrediction, check_item

        item = {k: v for k, v in body.model_dump().items()
                if v is not None or k not in FeedbackBody.model_fields}
        name = item.get("task")
        if isinstance(name, str) and name not in by_task:
            raise not_served(name)
        try:
            checked, field = check_item(item, corrections_of(by_task[name]))
        except TunehubError as exc:
            raise HTTPException(422, str(exc)) from None
        try:
            stored = await asyncio.wrap_future(store.add(checked, by_task[name].artifact.ref, field))
        except UnknownPrediction as exc:
            raise HTTPException(404, str(exc)) from None
        return {"stored": True, **stored}

    # the body's model is built here, from the served heads' corrections
    feedback.__annotations__ = {"body": FeedbackBody, "return": dict[str, Any]}
    app.post("/v1/feedback", status_code=201, response_model=FeedbackResponse, tags=["feedback"],
             responses=errors(401, 404, 413, 422))(feedback)

    app.state.batchers = batchers
    app.state.models = by_task
    app.state.store = store
    if settings.ui:
        from .ui import add_dashboard

        add_dashboard(app, settings)
    return app


def _event(data: Mapping[str, Any]) -> str:
    """One server-sent event carrying ``data`` as JSON."""
    import json

    return f"data: {json.dumps(dict(data), ensure_ascii=False)}\n\n"


def corrections_of(loaded: Any) -> dict[str, Any]:
    """Correction field -> JSON Schema that feedback on a loaded version may send."""
    return loaded.head.corrections(loaded.config, loaded.predictor.labels)


def _is_user_error(exc: Exception) -> bool:
    return isinstance(exc, (TunehubError, ValueError, TypeError, KeyError))


def serve(models: Sequence[Any], settings: ServeSettings, log_level: str = "warning",
          access_log: bool = False, watch: Callable[[str, str], Any] | None = None,
          catalog: Any = None) -> None:
    """Run the server until SIGINT/SIGTERM; in-flight requests are finished first
    (``catalog``: the plugins' catalog, for the dashboard's tasks that are not served)."""
    import uvicorn

    app = create_app(models, settings, watch=watch)
    app.state.catalog = catalog
    config = uvicorn.Config(app, host=settings.host, port=settings.port,
                            log_level=log_level, access_log=access_log,
                            timeout_graceful_shutdown=settings.graceful_timeout_s)
    uvicorn.Server(config).run()


class BackgroundServer:
    """The server on a thread of this process (tests, notebooks): real HTTP on a real
    port; ``port=0`` picks a free one. Use as a context manager; ``url`` is set once up."""

    def __init__(self, models: Sequence[Any], settings: ServeSettings | None = None,
                 store: Any = None, watch: Callable[[str, str], Any] | None = None) -> None:
        import uvicorn

        self.settings = settings or ServeSettings(port=0)
        self.app = create_app(models, self.settings, store=store, watch=watch)
        self.server = uvicorn.Server(uvicorn.Config(
            self.app, host=self.settings.host, port=self.settings.port, log_level="warning",
            access_log=False, timeout_graceful_shutdown=self.settings.graceful_timeout_s))
        self.thread = None
        self.url = ""

    def __enter__(self) -> BackgroundServer:
        import threading

        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 60
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the server did not start")
            time.sleep(0.02)
        host, port = self.server.servers[0].sockets[0].getsockname()[:2]
        self.url = f"http://{host}:{port}"
        return self

    def stop(self) -> None:
        """Graceful: stop accepting, finish in-flight requests, then shut down."""
        self.server.should_exit = True
        if self.thread:
            self.thread.join(timeout=self.settings.graceful_timeout_s + 5)

    def __exit__(self, *exc: Any) -> None:
        self.stop()
