"""What the HTTP API reads and writes: typed request and response models, route tags, error
answers, and the Hugging Face shapes of inputs and outputs.

Every route declares its request and response models here, so ``/openapi.json`` (and
``/docs``) documents each one. Every 4xx answer is ``{"detail": "one message"}``.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, StrictStr

TAGS = [
    {"name": "predict", "description": "Predictions: one input or many per request "
                                       "(micro-batched), or one generated answer streamed."},
    {"name": "feedback", "description": "The right answer for a prediction or an input, stored "
                                        "for `app run-task --with-feedback`."},
    {"name": "service", "description": "Whether the server is up, and what it serves."},
]

Input = StrictStr | dict[str, Any]  # a text, or a record for tasks that take records


class PredictRequest(BaseModel):
    inputs: list[Input] | Input = Field(
        description="A list of texts (or records, for tasks that take them): one output each, "
                    "in order. Or one text (or record), Hugging Face's single-input form: the "
                    "answer's `outputs` is then one object, not a list.",
        examples=[["Operating profit rose 20%."], "Operating profit rose 20%."])
    task: str | None = Field(None, description="Task name; optional when one task is served.")


class PredictResponse(BaseModel):
    task: str = Field(description="The task that answered.")
    model: str = Field(description="The version that answered, such as `financial-sentiment@v2`.")
    outputs: list[dict[str, Any]] | dict[str, Any] = Field(
        description="One output per input, in input order, each with its `prediction_id` (name it "
                    "in POST /v1/feedback); one object when `inputs` was one text or record. An "
                    "output's keys are the task's (`GET /v1/tasks` names each task's head); "
                    "entities also carry Hugging Face's `entity_group` and `word`.")


class StreamRequest(BaseModel):
    input: StrictStr = Field(description="One input (a prompt); the answer streams back as "
                                         "server-sent events.", examples=["How do I reset my PIN?"])
    task: str | None = Field(None, description="Task name; optional when one task is served.")


class StreamEvent(BaseModel):
    """One server-sent event of POST /v1/stream (``data: {...}``)."""

    text: str | None = Field(None, description="The next piece of the answer; in the last event, "
                                               "the whole answer.")
    done: bool | None = Field(None, description="True in the last event.")
    prediction_id: str | None = Field(None, description="In the last event: name it in feedback.")
    model: str | None = Field(None, description="In the last event: the version that answered.")
    error: str | None = Field(None, description="Instead of the last event, when the model failed "
                                                "mid-answer: one message.")


class FeedbackRequest(BaseModel):
    """The right answer for one prediction (by ``prediction_id``) or one input. Exactly one
    of ``prediction_id`` / ``input``, and exactly one right answer, under a correction field
    the task's head takes (``label`` for a classifier, ``faq_id`` or ``handoff`` for FAQ
    answers, ``entities`` for a tagger, ``item`` for a recommender, ...; `GET /v1/tasks`
    lists each task's). Other keys are kept with the feedback (``extra``); ``id``, ``kind``,
    ``model``, ``predicted`` and ``created`` are the store's own and refused."""

    model_config = ConfigDict(extra="allow")
    task: StrictStr = Field(description="The task the feedback is about.")
    prediction_id: StrictStr | None = Field(None, description="From a /v1/predict output.")
    input: StrictStr | dict[str, Any] | None = Field(
        None, description="The input, when no prediction_id is given.")


def feedback_request(corrections: Mapping[str, Mapping[str, Mapping[str, Any]]]) -> type[BaseModel]:
    """`FeedbackRequest` with the correction fields of the served tasks (task -> field ->
    JSON Schema), so /docs shows each field's schema and the tasks that take it."""
    from pydantic import create_model

    fields: dict[str, Any] = {}
    for field in sorted({f for schemas in corrections.values() for f in schemas}):
        tasks = [t for t in sorted(corrections) if field in corrections[t]]
        shapes = [corrections[t][field] for t in tasks]
        schema = dict(shapes[0]) if all(s == shapes[0] for s in shapes) else {"anyOf": shapes}
        said = schema.pop("description", "The right answer.")
        fields[field] = (Any, Field(None, description=f"{said} Tasks: {', '.join(tasks)}.",
                                    json_schema_extra=schema))
    return create_model("FeedbackRequest", __base__=FeedbackRequest, **fields)


class FeedbackResponse(BaseModel):
    model_config = ConfigDict(extra="allow")
    stored: bool = Field(description="True: the feedback is committed to the store.")
    id: int = Field(description="The feedback item's id in the store.")
    task: str
    prediction_id: str | None = Field(description="The prediction it corrects, if it named one.")
    model: str | None = Field(description="The version that made that prediction, if known.")
    created: str = Field(description="When it was stored (ISO 8601, UTC).")


class HealthResponse(BaseModel):
    status: str = Field(description='"ok" while the server answers.', examples=["ok"])
    tasks: list[str] = Field(description="The tasks served, by name.")


class TaskInfo(BaseModel):
    model_config = ConfigDict(extra="allow")
    task: str
    model: str = Field(description="The version that answers now, such as `financial-sentiment@v2`.")
    head: str = Field(description="The head of the task: it decides the outputs' keys.")
    corrections: dict[str, Any] = Field(
        description="Correction field -> JSON Schema: the right answers POST /v1/feedback takes.")
    base_model: str | None = Field(description="The base model, by alias or hub id (never a path).")
    primary_metric: str | None = None
    value: float | None = Field(None, description="The version's primary metric.")
    created: str | None = None
    batches: int = Field(description="Forward passes run since the server started.")


class TasksResponse(BaseModel):
    tasks: list[TaskInfo]


class ErrorResponse(BaseModel):
    detail: str = Field(description="What was wrong and how to fix it, in one message.")


ERRORS = {
    401: "The API key is missing or wrong: send `Authorization: Bearer KEY` (servers started "
         "with an API key; bound beyond loopback, every route but /health).",
    404: "The task is not served here (the message suggests a near miss), or the "
         "prediction_id is unknown.",
    413: "Too many inputs in one request (--max-inputs), or a body over --max-body-bytes.",
    422: "The body is not what the route takes: one message naming the field and the fix.",
}


def errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    """The ``responses`` of a route for the 4xx answers it may give."""
    return {code: {"model": ErrorResponse, "description": ERRORS[code]} for code in codes}


def hugging_face_output(output: Mapping[str, Any]) -> dict[str, Any]:
    """An output with Hugging Face's keys beside its own: each record of an ``entities`` list
    that has ``type`` and ``text`` also carries ``entity_group`` and ``word``, as the
    token-classification pipeline names them (``start``, ``end`` and ``score`` are the same
    already). Every other key is kept as the head wrote it."""
    entities = output.get("entities")
    if not isinstance(entities, list):
        return dict(output)
    return {**output, "entities": [
        {**e, "entity_group": e.get("entity_group", e["type"]), "word": e.get("word", e["text"])}
        if isinstance(e, Mapping) and "type" in e and "text" in e else e for e in entities]}


PREDICT_SHAPE = '{"inputs": ["text", ...], "task": "NAME"} (or "inputs": "one text")'
FEEDBACK_SHAPE = '{"task": "NAME", "prediction_id": "...", "label": "..."}'


def _branch(part: Any) -> bool:
    """A union branch in a pydantic error location, such as 'str' or 'list[...]'."""
    return isinstance(part, str) and (part == "str" or "[" in part)


def _sent(errors: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The errors of the branch the client meant: when a list's items failed, the value was a
    list, and "it is not a string" about the same value only confuses."""
    lists = {tuple(loc[:i]) for loc in (tuple(e.get("loc", ())) for e in errors)
             for i, part in enumerate(loc) if str(part).startswith("list[") and i + 1 < len(loc)}
    kept = []
    for error in errors:
        loc = tuple(error.get("loc", ()))
        first = next((i for i, part in enumerate(loc) if _branch(part)), None)
        if first is not None and loc[:first] in lists and not str(loc[first]).startswith("list["):
            continue
        kept.append(error)
    return kept


def error_text(errors: Sequence[dict[str, Any]], shape: str = PREDICT_SHAPE) -> str:
    """Pydantic errors -> one line: 'inputs.2: expected a string ...; task: ...'."""
    by_place: dict[str, list[str]] = {}
    for error in _sent(errors):
        if error.get("type") == "json_invalid":
            where = error.get("loc", ("", "?"))[-1]
            return f"the body is not valid JSON (near character {where})."
        if tuple(error.get("loc", ())) == ("body",) and error.get("type") != "missing":
            return (f"the body must be a JSON object such as {shape}, sent with "
                    "Content-Type: application/json.")
        # drop 'body' and union branch names such as 'str' / 'dict[str,any]' / 'list[...]'
        loc = [str(p) for p in error.get("loc", ()) if p != "body" and not _branch(p)]
        msg = error.get("msg", "invalid")
        if error.get("type") == "missing":
            msg = "missing"
        by_place.setdefault(".".join(loc) or "body", []).append(msg)
    parts = [f"{place}: " + (_expected(place) if len(msgs) > 1 else msgs[0])
             for place, msgs in list(by_place.items())[:5]]
    return "; ".join(parts) + f". Send {shape}."


def _expected(place: str) -> str:
    if place == "inputs":  # the value was neither a text, a record nor a list
        return "expected a text, a list of texts, or JSON objects for tasks that take records"
    return "expected a string (or a JSON object for tasks that take records)"
