"""A model server (or a proxy before it) that closes a streamed answer mid-way: the call fails
with a retryable ModelResponseError instead of returning the half answer as a whole one.

Before, an OpenAI-compatible or Anthropic stream that ended without its last event (a body
delimited by the connection's close, cut by a dying server or a proxy's timeout) returned
"The refund of order 12" with finish_reason "stop": journaled, cached and acted on as the
model's answer. A stream that ended as the protocol says it ends is still whole."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import pytest

from tests.llm.providers.rawhttp import raw_server, read_request, response_head
from tether.core.errors import ModelError, ModelResponseError
from tether.llm.providers.anthropic import AnthropicModel
from tether.llm.providers.openai_compat import OpenAICompatibleModel
from tether.llm.request import build_request
from tether.llm.types import ModelResponse

SSE = {"content-type": "text/event-stream", "connection": "close"}


def _openai(text: str | None = None, finish: str | None = None) -> bytes:
    chunk = {
        "id": "c1",
        "choices": [
            {"index": 0, "delta": {"content": text} if text else {}, "finish_reason": finish}
        ],
    }
    return f"data: {json.dumps(chunk)}\n\n".encode()


def _anthropic(kind: str, **data: Any) -> bytes:
    return f"event: {kind}\ndata: {json.dumps({'type': kind, **data})}\n\n".encode()


def _delta(text: str) -> bytes:
    return _anthropic("content_block_delta", index=0, delta={"type": "text_delta", "text": text})


ANTHROPIC_HEAD = (
    _anthropic("message_start", message={"id": "m1", "usage": {"input_tokens": 5}})
    + _anthropic("content_block_start", index=0, content_block={"type": "text", "text": ""})
    + _delta("The refund of order 12")
)
ANTHROPIC_END = (
    _delta("34 is approved.")
    + _anthropic("content_block_stop", index=0)
    + _anthropic("message_delta", delta={"stop_reason": "end_turn"}, usage={"output_tokens": 9})
    + _anthropic("message_stop")
)
OPENAI_HEAD = _openai("The refund of order 12")
OPENAI_END = _openai("34 is approved.") + _openai(None, "stop") + b"data: [DONE]\n\n"


def _model(kind: str, url: str) -> Any:
    if kind == "openai":
        return OpenAICompatibleModel("m", base_url=f"{url}/v1", timeout=30)
    return AnthropicModel("claude", api_key="k", base_url=url, timeout=30)


async def _stream(kind: str, body: bytes, head: dict[str, str] | None = None) -> ModelResponse:
    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(response_head(200, head or SSE) + body)
        await writer.drain()  # then the connection closes: the body ends here

    async with raw_server(serve) as url:
        model = _model(kind, url)
        try:
            request = build_request([{"role": "user", "content": "refund?"}], stream=True)
            chunks = [c async for c in model.stream(request)]
        finally:
            await model.aclose()
    response = chunks[-1].response
    assert response is not None
    return response


CUT: dict[str, Callable[[], bytes]] = {
    "openai": lambda: OPENAI_HEAD,
    "anthropic": lambda: ANTHROPIC_HEAD,
}
WHOLE: dict[str, Callable[[], bytes]] = {
    "openai": lambda: OPENAI_HEAD + OPENAI_END,
    "anthropic": lambda: ANTHROPIC_HEAD + ANTHROPIC_END,
}


@pytest.mark.parametrize("kind", ["openai", "anthropic"])
async def test_a_stream_closed_mid_answer_is_a_retryable_error(kind: str) -> None:
    with pytest.raises(ModelResponseError, match="ended before its answer did") as err:
        await _stream(kind, CUT[kind]())
    assert err.value.retryable
    assert "The refund of order 12" in str(err.value)  # what came, shown to whoever debugs


@pytest.mark.parametrize("kind", ["openai", "anthropic"])
async def test_a_stream_that_ends_as_its_protocol_says_is_whole(kind: str) -> None:
    whole = await _stream(kind, WHOLE[kind]())
    assert whole.text == "The refund of order 1234 is approved."
    assert whole.finish_reason == "stop"


async def test_an_openai_stream_ended_by_done_alone_is_whole() -> None:
    """Some servers send no finish_reason; their [DONE] still says the answer ended."""
    whole = await _stream("openai", OPENAI_HEAD + _openai("34.") + b"data: [DONE]\n\n")
    assert whole.text == "The refund of order 1234."


async def test_an_openai_stream_with_a_finish_reason_but_no_done_is_whole() -> None:
    whole = await _stream("openai", OPENAI_HEAD + _openai("34.", "length"))
    assert (whole.text, whole.finish_reason) == ("The refund of order 1234.", "length")


@pytest.mark.parametrize("kind", ["openai", "anthropic"])
async def test_a_chunked_stream_cut_without_its_last_chunk_is_retryable(kind: str) -> None:
    body = CUT[kind]()
    chunked = f"{len(body):x}\r\n".encode() + body + b"\r\n"  # no terminating 0-chunk
    head = {"content-type": "text/event-stream", "transfer-encoding": "chunked"}
    with pytest.raises(ModelError) as err:
        await _stream(kind, chunked, head)
    assert err.value.retryable
