"""The base of the HTTP providers: one ``httpx.AsyncClient`` per model, JSON posts and
Server-Sent Events streams, every failure raised as a ModelError (see :mod:`.http_errors`).

A streamed request answered with one JSON completion instead of events (some OpenAI-compatible
servers do, when they cannot stream) is handed to the provider whole (:class:`WholeBody`): the
provider was paid for it, so it is read as a complete answer, not refused."""

from __future__ import annotations

import asyncio
import codecs
from collections.abc import AsyncIterator, Mapping
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import orjson

from tether.core.errors import (
    ConfigurationError,
    ModelResponseError,
    ModelTimeoutError,
)
from tether.llm.model import Model
from tether.llm.providers.http_errors import (
    error_from_body,
    error_from_exception,
    error_from_response,
    parse_json,
)
from tether.llm.providers.sse import SseReader, sse_events, sse_lines


@dataclass(frozen=True, slots=True)
class WholeBody:
    """A streamed request's answer that came as one JSON body (``content-type:
    application/json``), not as events: the provider reads ``body`` as a complete answer."""

    body: Any


class HttpModel(Model):
    """A Model that talks HTTP through one ``httpx.AsyncClient``: its own unless one is given
    (then the caller closes it). Use ``async with`` or ``await model.aclose()``.

    A client's pooled connections belong to the event loop that opened them, so the model's own
    client is replaced when it is used from another loop (a second ``asyncio.run``); a given
    client must be used from the loop it was made in."""

    base_url: str = ""
    max_response_bytes: int = 64 * 2**20
    """The most of one answer (a JSON body, a whole stream, an error page) that is read: past
    it the call fails with ModelResponseError instead of holding without end what a broken or
    hostile server sends. 64 MiB is far beyond any answer a ``max_tokens`` asks for (a stream
    of 100k tokens with their log-probabilities is about 30 MB); set it on the model to
    change it."""

    @property
    def identity(self) -> str:
        return f"{self.name}@{self.base_url}"

    def __init__(self, *, timeout: float, client: httpx.AsyncClient | None) -> None:
        if not timeout > 0:
            raise ConfigurationError(f"timeout must be a positive number of seconds, got {timeout}")
        self.timeout = timeout
        self._client = client
        self._owns_client = client is None
        self._client_loop: asyncio.AbstractEventLoop | None = None

    @property
    def client(self) -> httpx.AsyncClient:
        if self._client is not None and not self._owns_client:
            return self._client
        loop = _running_loop()
        if self._client is None or self._client_loop is not loop:
            self._client = httpx.AsyncClient(timeout=self.timeout)
            self._client_loop = loop
        return self._client

    async def aclose(self) -> None:
        if self._owns_client and self._client is not None:
            client, self._client = self._client, None
            if self._client_loop is _running_loop():  # another loop's client cannot be closed
                await client.aclose()

    async def __aenter__(self) -> HttpModel:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def post_json(self, url: str, payload: Any, headers: Mapping[str, str]) -> Any:
        """POST ``payload`` as JSON and return the parsed JSON answer, or raise a ModelError.
        The whole exchange has ``timeout`` seconds, not each read of it: a server trickling
        its answer a byte at a time would otherwise hold the call for as long as it likes."""
        try:
            async with (
                self._deadline(url, "its answer"),
                self._post(url, payload, headers) as response,
            ):
                content = await self._read(response, url)
        except httpx.HTTPError as exc:
            raise error_from_exception(exc, model=self.name, url=url) from exc
        if response.status_code >= 300:
            raise error_from_response(response, model=self.name, content=content)
        return parse_json(content, model=self.name)

    def _post(
        self, url: str, payload: Any, headers: Mapping[str, str]
    ) -> AbstractAsyncContextManager[httpx.Response]:
        """The streamed POST of ``payload`` as JSON, read by ``post_json`` and ``post_sse``."""
        return self.client.stream(
            "POST", url, content=orjson.dumps(payload), headers=headers, timeout=self.timeout
        )

    @asynccontextmanager
    async def post_sse(
        self, url: str, payload: Any, headers: Mapping[str, str]
    ) -> AsyncIterator[SseReader | WholeBody]:
        """POST ``payload`` and read the answer as Server-Sent Events; transport failures while
        reading become ModelErrors too. The response's head (and an error's body) must come
        within ``timeout`` seconds; then each read of the stream has ``timeout`` seconds. An
        answer of one JSON body comes as :class:`WholeBody` (an error in it is raised), read
        within the same ``timeout``."""
        try:
            async with AsyncExitStack() as stack:
                async with self._deadline(url, "the head of its stream"):
                    response = await stack.enter_async_context(self._post(url, payload, headers))
                    if response.status_code >= 300:
                        content = await self._read(response, url)
                        raise error_from_response(response, model=self.name, content=content)
                    kind = response.headers.get("content-type", "")
                    whole: WholeBody | None = None
                    if kind.startswith("application/json"):
                        body = parse_json(await self._read(response, url), model=self.name)
                        if isinstance(body, Mapping) and "error" in body:
                            raise error_from_body(body, model=self.name)
                        whole = WholeBody(body)
                    elif kind.startswith("text/html"):
                        raise self._a_web_page(url, await self._read(response, url))
                yield (
                    whole if whole is not None else sse_events(sse_lines(self._text(response, url)))
                )
        except httpx.HTTPError as exc:
            raise error_from_exception(exc, model=self.name, url=url) from exc

    async def _read(self, response: httpx.Response, url: str) -> bytes:
        """The whole body of ``response``, or ModelResponseError past ``max_response_bytes``
        (refused before reading when its ``Content-Length`` says so)."""
        declared = response.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > self.max_response_bytes:
            raise self._too_large(url, f"declares {int(declared)} bytes (Content-Length)")
        parts: list[bytes] = []
        size = 0
        async for part in response.aiter_bytes():
            size += len(part)
            if size > self.max_response_bytes:
                raise self._too_large(url, f"sent more than {self.max_response_bytes} bytes")
            parts.append(part)
        return b"".join(parts)

    async def _text(self, response: httpx.Response, url: str) -> AsyncIterator[str]:
        """The text of a streamed body as it comes, or ModelResponseError once it has gone
        past ``max_response_bytes``."""
        decoder = codecs.getincrementaldecoder(response.encoding or "utf-8")(errors="replace")
        size = 0
        async for part in response.aiter_bytes():
            size += len(part)
            if size > self.max_response_bytes:
                raise self._too_large(url, f"sent more than {self.max_response_bytes} bytes")
            text = decoder.decode(part)
            if text:
                yield text
        text = decoder.decode(b"", final=True)
        if text:
            yield text

    def _too_large(self, url: str, what: str) -> ModelResponseError:
        return ModelResponseError(
            f"{self.name}'s answer ({url}) {what}, past its max_response_bytes "
            f"({self.max_response_bytes}): the server sent far more than an answer (a body or "
            "a stream without end); it was read no further. Set max_response_bytes on the model "
            "if answers that large are expected",
            model=self.name,
        )

    @asynccontextmanager
    async def _deadline(self, url: str, what: str) -> AsyncIterator[None]:
        """``timeout`` seconds for the block, as a ModelTimeoutError when they run out."""
        try:
            async with asyncio.timeout(self.timeout):
                yield
        except TimeoutError:
            raise ModelTimeoutError(
                f"{self.name} did not answer in time ({url}): {what} had not come after "
                f"{self.timeout:g} s (the model's timeout)",
                model=self.name,
            ) from None

    def _a_web_page(self, url: str, content: bytes) -> ModelResponseError:
        """A streamed request answered with an HTML page (a proxy's or a login page, a base
        URL that is not the API): read as events it looked like a stream cut before its first
        character."""
        return ModelResponseError(
            f"{self.name} answered a streamed request ({url}) with a web page (text/html), not "
            "Server-Sent Events: is the base URL the API's (often ending in /v1), or is a proxy "
            f"in the way? It began: {content[:200]!r}",
            model=self.name,
        )


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None
