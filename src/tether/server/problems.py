"""RFC 9457 problem details: every error the API answers is ``application/problem+json``.

``{type, title, status, detail, instance, errors?}``: tether's typed errors map to a status
(not found 404, a state that forbids the operation 409, backpressure 429, bad input 422...),
FastAPI's request validation to 422 with one ``{loc, msg}`` per problem, an unknown route to
404, a store that cannot serve now (a full disk, a database restart outlasting the store's
retries) to a 503 with ``Retry-After``, and anything unexpected to a 500 that says nothing of
the internals (it is logged).
"""

from __future__ import annotations

import logging
import math
import sqlite3
import sys
import time
from collections.abc import Sequence
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from tether.core import serde
from tether.core.errors import (
    ApprovalNotFoundError,
    ApprovalSignatureError,
    ApprovalStateError,
    IdempotencyConflictError,
    IllegalTransitionError,
    LeaseLostError,
    QueueFullError,
    RunNotFoundError,
    RunStateError,
    StepNotFoundError,
    TetherError,
    UserError,
    WorkflowVersionError,
)
from tether.store.transient import first_line, unavailable

log = logging.getLogger("tether.server")

PROBLEM_JSON = "application/problem+json"
TYPE_BASE = "https://tether.dev/problems/"

_STATUS: tuple[tuple[type[BaseException], int, str], ...] = (
    (RunNotFoundError, 404, "run-not-found"),
    (StepNotFoundError, 404, "step-not-found"),
    (ApprovalNotFoundError, 404, "approval-not-found"),
    (ApprovalSignatureError, 403, "approval-signature"),
    (ApprovalStateError, 409, "approval-state"),
    (IdempotencyConflictError, 409, "idempotency-conflict"),
    (IllegalTransitionError, 409, "illegal-transition"),
    (WorkflowVersionError, 409, "workflow-version"),
    (RunStateError, 409, "run-state"),
    (LeaseLostError, 409, "lease-lost"),
    (QueueFullError, 429, "queue-full"),
    (UserError, 422, "invalid-input"),
)


class ApiProblem(Exception):
    """An error the API answers as it is: a status, a short type slug, and what went wrong."""

    def __init__(
        self,
        status: int,
        detail: str,
        *,
        kind: str | None = None,
        headers: dict[str, str] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.kind = kind or _slug(status)
        self.headers = headers or {}
        self.extra = extra or {}
        """RFC 9457 extension members (``step`` of a step not found)."""


_PROBLEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["type", "title", "status", "detail", "instance"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "instance": {"type": "string"},
        "step": {"type": "integer", "description": "a step not found: the step asked for"},
        "fields": {
            "type": "array",
            "items": {"type": "string"},
            "description": "an idempotency key sent again with other parameters: which differ",
        },
        "errors": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {"loc": {"type": "string"}, "msg": {"type": "string"}},
            },
        },
    },
}


def problem_responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` documenting problem+json answers with these status codes."""
    return {
        code: {
            "description": HTTPStatus(code).phrase + " (RFC 9457 problem details)",
            "content": {PROBLEM_JSON: {"schema": _PROBLEM_SCHEMA}},
        }
        for code in codes
    }


API_PROBLEMS = problem_responses(400, 401, 403, 404, 409, 413, 422, 429, 503, 504)
"""What any API route may answer besides its success."""


def _slug(status: int) -> str:
    try:
        return HTTPStatus(status).phrase.lower().replace(" ", "-").replace("'", "")
    except ValueError:
        return "error"


def problem(
    status: int,
    detail: str,
    *,
    kind: str | None = None,
    instance: str = "",
    errors: Sequence[dict[str, Any]] | None = None,
    headers: dict[str, str] | None = None,
    extra: dict[str, Any] | None = None,
) -> JSONResponse:
    """A problem+json response (``extra``: extension members, beside the standard ones)."""
    try:
        title = HTTPStatus(status).phrase
    except ValueError:
        title = "Error"
    body: dict[str, Any] = {
        "type": TYPE_BASE + (kind or _slug(status)),
        "title": title,
        "status": status,
        "detail": detail,
        "instance": instance,
    }
    if errors is not None:
        body["errors"] = list(errors)
    for name, value in (extra or {}).items():
        body.setdefault(name, value)
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def status_of(exc: BaseException) -> tuple[int, str]:
    """The HTTP status and problem type of a tether error."""
    for cls, status, kind in _STATUS:
        if isinstance(exc, cls):
            return status, kind
    return 500, "internal"


def _loc(loc: Sequence[Any]) -> str:
    return ".".join(str(part) for part in loc)


async def _validation(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = [{"loc": _loc(e.get("loc", ())), "msg": str(e.get("msg", ""))} for e in exc.errors()]
    if any(e.get("type") == "json_invalid" for e in exc.errors()):  # not JSON at all: a 400
        where = errors[0]["msg"] if errors else "JSON decode error"
        return problem(
            400,
            f"the body is not JSON ({where}); send a JSON object with "
            "content-type: application/json",
            kind="bad-request",
            instance=request.url.path,
        )
    detail = "; ".join(f"{e['loc']}: {e['msg']}" for e in errors[:5]) or "invalid request"
    return problem(
        422,
        f"the request is invalid: {detail}",
        kind="validation",
        instance=request.url.path,
        errors=errors,
    )


def _unparsed(exc: BaseException) -> str | None:
    """Why FastAPI could not parse a JSON body, said with what to send instead (its own 400
    says only "There was an error parsing the body"); None when the cause is none of these."""
    cause = exc.__cause__
    if isinstance(cause, RecursionError):  # json.loads gives up near 1,000 levels
        return (
            f"the body nests lists and objects too deep to read; tether keeps at most "
            f"{serde.MAX_DEPTH} levels: flatten it, or send the deep part as a JSON string"
        )
    if isinstance(cause, UnicodeDecodeError):
        return (
            f"the body is not UTF-8 text (byte {cause.start}: {cause.reason}); send JSON "
            "encoded as UTF-8 with content-type: application/json"
        )
    if isinstance(cause, ValueError) and "integer string conversion" in str(cause):
        return "the body holds an integer too long to read (over 4,300 digits); send it as a string"
    return None


async def _http(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    detail = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
    why = _unparsed(exc) if exc.status_code == 400 else None
    if why is not None:
        return problem(400, why, kind="bad-request", instance=request.url.path)
    if exc.status_code == 404 and detail == "Not Found":
        detail = f"no route {request.method} {request.url.path}; see /docs for the API"
    elif exc.status_code == 405:
        detail = f"{request.method} is not allowed on {request.url.path}; see /docs for the API"
    return problem(
        exc.status_code, detail, instance=request.url.path, headers=dict(exc.headers or {})
    )


async def _api(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiProblem)
    return problem(
        exc.status,
        exc.detail,
        kind=exc.kind,
        instance=request.url.path,
        headers=exc.headers,
        extra=exc.extra,
    )


async def _tether(request: Request, exc: Exception) -> JSONResponse:
    status, kind = status_of(exc)
    if status == 500:
        return await _unexpected(request, exc)
    headers = {"Retry-After": "1"} if status == 429 else None
    extra: dict[str, Any] | None = None
    if isinstance(exc, StepNotFoundError):
        extra = {"step": exc.step}
    elif isinstance(exc, IdempotencyConflictError) and getattr(exc, "fields", None):
        extra = {"fields": list(exc.fields)}  # type: ignore[attr-defined]
    return problem(
        status, str(exc), kind=kind, instance=request.url.path, headers=headers, extra=extra
    )


STORE_RETRY_AFTER = 5
"""Seconds a client is asked to wait before sending again a request the store could not serve."""
WARN_EVERY = 10.0
"""Seconds between two WARNINGs of one store error (the requests between them log DEBUG)."""
_WARNED: dict[str, float] = {}


def _store_unavailable(request: Request, exc: Exception) -> JSONResponse:
    """The store cannot serve now (a full disk, a database restart outlasting the store's
    retries): a 503 naming its error, no traceback; nothing was done, the same request may
    be sent again."""
    why = first_line(exc)
    now = time.monotonic()
    loud = now - _WARNED.get(why, -math.inf) >= WARN_EVERY  # not one line per request
    if loud:
        _WARNED.clear()
        _WARNED[why] = now
    log.log(
        logging.WARNING if loud else logging.DEBUG,
        "%s %s: the store is unavailable (%s)",
        request.method,
        request.url.path,
        why,
    )
    return problem(
        503,
        f"the run store is unavailable ({why}); nothing was done, send the request again in a "
        "moment",
        kind="store-unavailable",
        instance=request.url.path,
        headers={"Retry-After": str(STORE_RETRY_AFTER)},
    )


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    if unavailable(exc):
        return _store_unavailable(request, exc)
    log.exception("%s %s failed", request.method, request.url.path, exc_info=exc)
    return problem(
        500,
        f"the server failed on this request ({type(exc).__name__}); it is logged",
        kind="internal",
        instance=request.url.path,
    )


def install_problem_handlers(app: FastAPI) -> None:
    app.add_exception_handler(RequestValidationError, _validation)
    app.add_exception_handler(StarletteHTTPException, _http)
    app.add_exception_handler(ApiProblem, _api)
    app.add_exception_handler(TetherError, _tether)
    # the drivers' errors have handlers of their own (not only the catch-all, whose errors
    # Starlette raises again after answering): a store outage is answered, not a crash
    app.add_exception_handler(sqlite3.OperationalError, _unexpected)
    psycopg = sys.modules.get("psycopg")  # imported by the time a PostgreSQL store exists
    if psycopg is not None:
        app.add_exception_handler(psycopg.OperationalError, _unexpected)
    app.add_exception_handler(Exception, _unexpected)
