"""A server that sends far more than any answer (a body without end, one line of SSE that never
ends, a stream of tokens that never finishes, a 10 GB Content-Length, an error page without
end) is read no further than ``max_response_bytes``: the call fails with a ModelResponseError
saying so, instead of holding the whole body in memory.

Before, every byte was kept: a 400 MB body took the process to 0.9-1.7 GB of memory, and a
server streaming tokens without end (each chunk inside the idle timeout) held the call, and
its memory, for as long as it liked."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import pytest

from tests.llm.providers.rawhttp import raw_server, read_request, response_head
from tether.core.errors import ModelResponseError
from tether.llm.providers._http import HttpModel
from tether.llm.providers.anthropic import AnthropicModel
from tether.llm.providers.openai_compat import OpenAICompatibleModel

LIMIT = 256 * 1024
SENT = 16 * LIMIT  # what the server would send, were it let


def _openai_token(text: str) -> bytes:
    chunk = {"choices": [{"index": 0, "delta": {"content": text}, "finish_reason": None}]}
    return f"data: {json.dumps(chunk)}\n\n".encode()


def _anthropic_token(text: str) -> bytes:
    delta = {
        "type": "content_block_delta",
        "index": 0,
        "delta": {"type": "text_delta", "text": text},
    }
    return f"event: content_block_delta\ndata: {json.dumps(delta)}\n\n".encode()


ANTHROPIC_START = (
    b'event: message_start\ndata: {"type": "message_start", "message": {"id": "m"}}\n\n'
    b'event: content_block_start\ndata: {"type": "content_block_start", "index": 0, '
    b'"content_block": {"type": "text", "text": ""}}\n\n'
)

SSE = {"content-type": "text/event-stream", "connection": "close"}
JSON = {"content-type": "application/json", "connection": "close"}


def _endless(head: bytes, start: bytes, piece: bytes) -> Callable[..., Any]:
    """Writes ``head`` and ``start``, then ``piece`` over and over up to SENT bytes."""

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(head + start)
        for _ in range(SENT // len(piece)):
            writer.write(piece)
            await writer.drain()

    return serve


CASES = {
    "json body": (
        False,
        response_head(200, JSON),
        b'{"choices": [{"message": {"content": "',
        b"a" * 4096,
    ),
    "error body": (False, response_head(500, JSON), b'{"error": "', b"e" * 4096),
    "one sse line": (True, response_head(200, SSE), b'data: {"choices": "', b"x" * 4096),
    "openai tokens": (True, response_head(200, SSE), b"", _openai_token("y" * 500)),
    "anthropic tokens": (
        True,
        response_head(200, SSE),
        ANTHROPIC_START,
        _anthropic_token("z" * 500),
    ),
    "error before a stream": (True, response_head(503, JSON), b'{"error": "', b"e" * 4096),
}


def _model(kind: str, url: str) -> HttpModel:
    model: HttpModel
    if kind.startswith("anthropic"):
        model = AnthropicModel("claude", api_key="k", base_url=url, timeout=30)
    else:
        model = OpenAICompatibleModel("m", base_url=f"{url}/v1", timeout=30)
    model.max_response_bytes = LIMIT
    return model


@pytest.mark.parametrize("case", list(CASES))
async def test_an_answer_without_end_is_read_no_further_than_the_limit(case: str) -> None:
    stream, head, start, piece = CASES[case]
    async with raw_server(_endless(head, start, piece)) as url:
        model = _model(case, url)
        try:
            with pytest.raises(ModelResponseError, match="max_response_bytes") as caught:
                await model.chat("hi", stream=stream)
        finally:
            await model.aclose()
    assert f"more than {LIMIT} bytes" in str(caught.value)


async def test_a_declared_length_past_the_limit_is_refused_before_reading() -> None:
    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(
            response_head(
                200, {"content-type": "application/json", "content-length": str(10 * 2**30)}
            )
        )
        await writer.drain()
        await reader.read()  # sends nothing more: a reader waiting for 10 GB would hang

    async with raw_server(serve) as url:
        model = _model("openai", url)
        try:
            with pytest.raises(ModelResponseError, match="max_response_bytes"):
                await model.chat("hi")
        finally:
            await model.aclose()


async def test_answers_within_the_limit_are_read_whole() -> None:
    body = json.dumps(
        {"choices": [{"message": {"content": "k" * (LIMIT // 2)}, "finish_reason": "stop"}]}
    ).encode()
    stream = (
        _openai_token("s" * 1000) * 100
        + b'data: {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}\n\ndata: [DONE]\n\n'
    )

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        _, request = await read_request(reader)
        if json.loads(request).get("stream"):
            writer.write(response_head(200, SSE) + stream)
        else:
            writer.write(response_head(200, {**JSON, "content-length": str(len(body))}) + body)
        await writer.drain()

    async with raw_server(serve) as url:
        model = _model("openai", url)
        try:
            assert len((await model.chat("hi")).text) == LIMIT // 2
        finally:
            await model.aclose()
        model = _model("openai", url)
        try:
            assert len((await model.chat("hi", stream=True)).text) == 100_000
        finally:
            await model.aclose()
