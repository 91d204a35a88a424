"""HTTP failures mapped onto the ModelError tree; the retry and breaker wrappers act on the
class, never on a status code:

- 429 → ``ModelRateLimitedError`` with ``Retry-After`` (seconds or HTTP-date) as ``retry_after``;
- 408, 409 and 5xx (Anthropic's 529 "overloaded" included) → ``ModelTransientError``, with the
  ``Retry-After`` a 503 may carry as ``retry_after`` (the retry wrapper waits it out);
- 3xx (a redirect not followed) and any other 4xx → ``ModelRequestError`` carrying the
  provider's own error message and what to check;
- ``httpx.TimeoutException`` → ``ModelTimeoutError``; dropped connections and protocol errors
  → ``ModelTransientError``; a body that is not the JSON expected → ``ModelResponseError``.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import httpx
import orjson

from tether.core.errors import (
    ModelError,
    ModelRateLimitedError,
    ModelRequestError,
    ModelResponseError,
    ModelTimeoutError,
    ModelTransientError,
    TetherError,
)
from tether.core.retry_after import retry_after_seconds

_HINTS = {
    400: "the provider rejected the request body",
    401: "check the API key",
    403: "the API key is not allowed to use this model or endpoint",
    404: "check the base URL and the model name",
    413: "the request is too large; shorten the conversation",
    422: "the provider rejected the request body",
}

_SHAPE_ERRORS = (LookupError, TypeError, ValueError, AttributeError)
"""What reading JSON of an unexpected shape raises: ``body["x"]`` on a list, ``int("abc")``,
a pydantic ValidationError..."""


def error_message(body: Any) -> str | None:
    """The provider's own words from an error body: OpenAI ``{"error": {"message"}}``,
    Anthropic ``{"type": "error", "error": {"type", "message"}}``, FastAPI ``{"detail"}``."""
    if not isinstance(body, Mapping):
        return None
    error = body.get("error")
    if isinstance(error, Mapping):
        message = error.get("message")
        kind = error.get("type")
        if isinstance(message, str) and message:
            return f"{kind}: {message}" if isinstance(kind, str) and kind else message
    if isinstance(error, str) and error:
        return error
    for key in ("message", "detail"):
        value = body.get(key)
        if isinstance(value, str) and value:
            return value
        if value:
            return orjson.dumps(value).decode()
    return None


def error_from_response(
    response: httpx.Response, *, model: str, content: bytes | None = None
) -> ModelError:
    """The ModelError for an HTTP error answer: its body is ``content`` when given, else the
    response's (which must have been read)."""
    status = response.status_code
    body = response.content if content is None else content
    try:
        said = error_message(orjson.loads(body))
    except orjson.JSONDecodeError:
        said = None
    text = body.decode(response.encoding or "utf-8", errors="replace")
    said = said or text.strip()[:500] or response.reason_phrase
    where = f"{response.request.method} {response.request.url}"
    if status == 429:
        return ModelRateLimitedError(
            f"{model} is rate limited (HTTP 429 from {where}): {said}",
            model=model,
            retry_after=_retry_after(response),
        )
    if status in (408, 409) or status >= 500:
        retry = _retry_after(response)
        when = "it may work if retried" if retry is None else f"retry after {retry:g} s"
        return ModelTransientError(
            f"{model} failed with HTTP {status} from {where}: {said}; {when}",
            model=model,
            status=status,
            retry_after=retry,
        )
    if status < 400:
        location = response.headers.get("location") or "elsewhere"
        hint = f"the endpoint moved to {location}; set the base URL to where it points"
    else:
        hint = _HINTS.get(status, "the provider refused the request")
    return ModelRequestError(
        f"{model} refused the request (HTTP {status} from {where}: {said}); {hint}",
        model=model,
        status=status,
    )


def _retry_after(response: httpx.Response) -> float | None:
    """The seconds ``Retry-After`` (seconds or an HTTP-date) or OpenAI's ``retry-after-ms``
    asks to wait; None when absent or unreadable."""
    retry = retry_after_seconds(response.headers.get("retry-after"))
    if retry is None and "retry-after-ms" in response.headers:
        ms = retry_after_seconds(response.headers["retry-after-ms"])
        retry = None if ms is None else ms / 1000
    return retry


def error_from_exception(exc: Exception, *, model: str, url: str = "") -> ModelError:
    """The ModelError for a failure below HTTP (timeout, refused connection, bad URL...)."""
    where = f" ({url})" if url else ""
    detail = str(exc) or type(exc).__name__
    if isinstance(exc, httpx.TimeoutException):
        return ModelTimeoutError(f"{model} did not answer in time{where}: {detail}", model=model)
    if isinstance(exc, httpx.UnsupportedProtocol | httpx.InvalidURL):
        return ModelRequestError(
            f"{model} has an unusable base URL{where}: {detail}; use http:// or https://",
            model=model,
        )
    if isinstance(exc, httpx.DecodingError):
        return ModelResponseError(f"{model} sent an undecodable body{where}: {detail}", model=model)
    return ModelTransientError(
        f"{model} could not be reached{where}: {type(exc).__name__}: {detail}", model=model
    )


_REFUSALS = {
    "invalid_request_error",
    "authentication_error",
    "permission_error",
    "not_found_error",
    "request_too_large",
}


def error_from_body(body: Any, *, model: str) -> ModelError:
    """The ModelError for an error sent inside a stream (no HTTP status to go by)."""
    said = error_message(body) or _shown(body)
    error = body.get("error") if isinstance(body, Mapping) else None
    kind = ""
    if isinstance(error, Mapping):
        kind = str(error.get("type") or error.get("code") or "")
    message = f"{model} failed mid-stream: {said}"
    if "rate_limit" in kind:
        return ModelRateLimitedError(message, model=model)
    if kind in _REFUSALS:
        return ModelRequestError(message, model=model)
    return ModelTransientError(message, model=model)


def parse_json(content: bytes | str, *, model: str, what: str = "response") -> Any:
    try:
        return orjson.loads(content)
    except orjson.JSONDecodeError as exc:
        raise ModelResponseError(
            f"{model} sent a {what} that is not JSON ({exc}): {content[:200]!r}", model=model
        ) from None


def missing(model: str, what: str, body: Any) -> ModelResponseError:
    shown = _shown(body) if body is not None else "nothing"
    return ModelResponseError(f"{model} sent a response without {what}: {shown}", model=model)


@contextmanager
def reading(model: str, body: Any) -> Iterator[None]:
    """Around code that reads a provider's JSON answer: a field of an unexpected type or shape
    becomes a ModelResponseError showing the body, instead of a bare TypeError or KeyError."""
    try:
        yield
    except TetherError:
        raise
    except _SHAPE_ERRORS as exc:
        raise ModelResponseError(
            f"{model} sent a response of an unexpected shape ({type(exc).__name__}: {exc}): "
            f"{_shown(body)}",
            model=model,
        ) from exc


def _shown(body: Any) -> str:
    try:
        return orjson.dumps(body).decode()[:300]
    except TypeError:
        return repr(body)[:300]
