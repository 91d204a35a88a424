"""What the HTTP providers share: one client per model, errors mapped onto the ModelError
tree, and a Server-Sent Events reader for streamed answers.

Mapping (the retry and breaker wrappers act on the class, never on a status code):

- 429 → ``ModelRateLimitedError`` with ``Retry-After`` (seconds or HTTP-date) as ``retry_after``;
- 408, 409 and 5xx (Anthropic's 529 "overloaded" included) → ``ModelTransientError``;
- any other 4xx → ``ModelRequestError`` carrying the provider's own error message;
- ``httpx.TimeoutException`` → ``ModelTimeoutError``; dropped connections and protocol errors
  → ``ModelTransientError``; a body that is not the JSON expected → ``ModelResponseError``.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterable, AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
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
)
from tether.llm.model import Model

_HINTS = {
    400: "the provider rejected the request body",
    401: "check the API key",
    403: "the API key is not allowed to use this model or endpoint",
    404: "check the base URL and the model name",
    413: "the request is too large; shorten the conversation",
    422: "the provider rejected the request body",
}


def retry_after_seconds(value: str | None, *, now: float | None = None) -> float | None:
    """``Retry-After`` as seconds from now: a number of seconds or an HTTP-date; None when
    absent or unreadable, never negative."""
    if value is None or not value.strip():
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


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


def error_from_response(response: httpx.Response, *, model: str) -> ModelError:
    """The ModelError for an HTTP error answer (its body must have been read)."""
    status = response.status_code
    try:
        said = error_message(orjson.loads(response.content))
    except orjson.JSONDecodeError:
        said = None
    said = said or response.text.strip()[:500] or response.reason_phrase
    where = f"{response.request.method} {response.request.url}"
    if status == 429:
        retry = retry_after_seconds(response.headers.get("retry-after"))
        if retry is None and "retry-after-ms" in response.headers:
            ms = retry_after_seconds(response.headers["retry-after-ms"])
            retry = None if ms is None else ms / 1000
        return ModelRateLimitedError(
            f"{model} is rate limited (HTTP 429 from {where}): {said}",
            model=model,
            retry_after=retry,
        )
    if status in (408, 409) or status >= 500:
        return ModelTransientError(
            f"{model} failed with HTTP {status} from {where}: {said}; it may work if retried",
            model=model,
            status=status,
        )
    hint = _HINTS.get(status, "the provider refused the request")
    return ModelRequestError(
        f"{model} refused the request (HTTP {status} from {where}: {said}); {hint}",
        model=model,
        status=status,
    )


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
    said = error_message(body) or orjson.dumps(body).decode()[:300]
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
    shown = orjson.dumps(body).decode()[:300] if body is not None else "nothing"
    return ModelResponseError(f"{model} sent a response without {what}: {shown}", model=model)


@dataclass(frozen=True)
class SseEvent:
    event: str
    data: str
    id: str | None = None


async def sse_events(lines: AsyncIterable[str]) -> AsyncIterator[SseEvent]:
    """Server-Sent Events from a stream of lines: ``event:``/``data:``/``id:`` fields, ``:``
    comments, multi-line data joined by newlines, one event per blank line. Ends at the
    OpenAI-style ``data: [DONE]`` sentinel or at the end of the stream."""
    event = ""
    last_id: str | None = None
    data: list[str] = []
    async for raw in lines:
        line = raw.rstrip("\r\n")
        if not line:
            if data:
                joined = "\n".join(data)
                if joined == "[DONE]":
                    return
                yield SseEvent(event or "message", joined, last_id)
            event, data = "", []
            continue
        if line.startswith(":"):
            continue
        field, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if field == "data":
            data.append(value)
        elif field == "event":
            event = value
        elif field == "id" and "\0" not in value:
            last_id = value
    if data and (joined := "\n".join(data)) != "[DONE]":
        yield SseEvent(event or "message", joined, last_id)


class HttpModel(Model):
    """A Model that talks HTTP through one ``httpx.AsyncClient``: its own unless one is given
    (then the caller closes it). Use ``async with`` or ``await model.aclose()``."""

    def __init__(self, *, timeout: float, client: httpx.AsyncClient | None) -> None:
        self.timeout = timeout
        self._client = client
        self._owns_client = client is None

    @property
    def client(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=self.timeout)
        return self._client

    async def aclose(self) -> None:
        if self._owns_client and self._client is not None:
            client, self._client = self._client, None
            await client.aclose()

    async def __aenter__(self) -> HttpModel:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def post_json(self, url: str, payload: Any, headers: Mapping[str, str]) -> Any:
        """POST ``payload`` as JSON and return the parsed JSON answer, or raise a ModelError."""
        try:
            response = await self.client.post(
                url, content=orjson.dumps(payload), headers=headers, timeout=self.timeout
            )
        except httpx.HTTPError as exc:
            raise error_from_exception(exc, model=self.name, url=url) from exc
        if response.status_code >= 400:
            raise error_from_response(response, model=self.name)
        return parse_json(response.content, model=self.name)

    @asynccontextmanager
    async def post_sse(
        self, url: str, payload: Any, headers: Mapping[str, str]
    ) -> AsyncIterator[AsyncIterator[SseEvent]]:
        """POST ``payload`` and read the answer as Server-Sent Events; transport failures while
        reading become ModelErrors too."""
        try:
            async with self.client.stream(
                "POST", url, content=orjson.dumps(payload), headers=headers, timeout=self.timeout
            ) as response:
                if response.status_code >= 400:
                    await response.aread()
                    raise error_from_response(response, model=self.name)
                yield sse_events(response.aiter_lines())
        except httpx.HTTPError as exc:
            raise error_from_exception(exc, model=self.name, url=url) from exc
