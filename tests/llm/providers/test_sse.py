"""SSE lines end where Server-Sent Events say they end (CRLF, LF, a lone CR), not where
``str.splitlines`` would: an answer holding U+2028, U+2029 or NEL (which JSON carries
unescaped in a string) was cut in two halves that are not JSON, failing every attempt."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import orjson
import pytest

from tests.llm.providers.rawhttp import raw_server, read_request, response_head
from tether.llm.providers.anthropic import AnthropicModel
from tether.llm.providers.openai_compat import OpenAICompatibleModel
from tether.llm.providers.sse import sse_lines
from tether.llm.request import build_request

ODD = "one\u2028two\u2029three\x85four\x0bfive\x1cend"
"""Characters ``str.splitlines`` ends a line at and JSON may carry raw (or escaped)."""


async def _chunks(*chunks: str) -> AsyncIterator[str]:
    for chunk in chunks:
        yield chunk


async def _lines(*chunks: str) -> list[str]:
    return [line async for line in sse_lines(_chunks(*chunks))]


async def test_lines_end_at_crlf_lf_and_lone_cr_wherever_the_chunks_are_cut() -> None:
    text = f"data: {ODD}\r\n\r\ndata: b\rdata: c\n\nid: 7\r"
    want = [f"data: {ODD}", "", "data: b", "data: c", "", "id: 7"]
    assert await _lines(text) == want
    for size in (1, 2, 3, 5):
        pieces = [text[i : i + size] for i in range(0, len(text), size)]
        assert await _lines(*pieces) == want, size
    assert await _lines("data: a\r", "\n", "\r", "") == ["data: a", ""]
    assert await _lines("data: no end") == ["data: no end"]
    assert await _lines("", "a", "b", "c\n") == ["abc"]


def _openai_stream(text: str) -> bytes:
    chunk = {"id": "c1", "choices": [{"index": 0, "delta": {"content": text}}]}
    end = {"id": "c1", "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}
    return b"".join(b"data: " + orjson.dumps(c) + b"\n\n" for c in (chunk, end)) + (
        b"data: [DONE]\n\n"
    )


def _anthropic_stream(text: str) -> bytes:
    def ev(kind: str, **data: object) -> bytes:
        return f"event: {kind}\ndata: ".encode() + orjson.dumps({"type": kind, **data}) + b"\n\n"

    return (
        ev("message_start", message={"id": "m1", "usage": {"input_tokens": 5}})
        + ev("content_block_start", index=0, content_block={"type": "text", "text": ""})
        + ev("content_block_delta", index=0, delta={"type": "text_delta", "text": text})
        + ev("content_block_stop", index=0)
        + ev("message_delta", delta={"stop_reason": "end_turn"}, usage={"output_tokens": 3})
        + ev("message_stop")
    )


@pytest.mark.parametrize("kind", ["openai", "anthropic"])
async def test_a_streamed_answer_holding_unicode_line_separators_arrives_whole(kind: str) -> None:
    text = "Line one\u2028line two\u2029para\x85next: naïve ☃ 😀"
    stream = _openai_stream(text) if kind == "openai" else _anthropic_stream(text)
    assert "\u2028".encode() in stream  # sent raw, as llama.cpp and others do

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(
            response_head(
                200, {"content-type": "text/event-stream", "content-length": str(len(stream))}
            )
        )
        for i in range(0, len(stream), 3):  # multi-byte characters cut between packets too
            writer.write(stream[i : i + 3])
            await writer.drain()

    async with raw_server(serve) as base:
        model = (
            OpenAICompatibleModel("m", base_url=base)
            if kind == "openai"
            else AnthropicModel("claude", api_key="k", base_url=base)
        )
        async with model:
            chunks = [c async for c in model.stream(build_request("hi"))]
    final = chunks[-1].response
    assert final is not None
    assert final.text == text
