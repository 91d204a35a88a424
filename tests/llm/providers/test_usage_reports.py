"""Token counts a server reports are read only when they can be counts. A server (or a proxy)
reporting ``"prompt_tokens": -4000`` credited the run's token budget with every call, so a
500-token budget never tripped; a fractional or textual count was read as a number, or failed
the call. Such a report now counts as none: tether counts the call's tokens itself
(``estimated``), both sides, as it does for a server that reports nothing."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from tests.llm.providers.rawhttp import raw_server, read_request, response_head
from tether.llm.providers.anthropic import AnthropicModel
from tether.llm.providers.openai_compat import OpenAICompatibleModel
from tether.llm.request import build_request
from tether.llm.types import ModelResponse

BAD = [-4000, 12.5, "12", True, [5]]


def _openai_body(prompt: Any, stream: bool) -> bytes:
    used = {"prompt_tokens": prompt, "completion_tokens": 3}
    if not stream:
        body = {
            "id": "c1",
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": "fine"},
                    "finish_reason": "stop",
                }
            ],
            "usage": used,
        }
        return json.dumps(body).encode()
    chunks = [
        {
            "id": "c1",
            "choices": [{"index": 0, "delta": {"content": "fine"}, "finish_reason": "stop"}],
        },
        {"id": "c1", "choices": [], "usage": used},
    ]
    return b"".join(f"data: {json.dumps(c)}\n\n".encode() for c in chunks) + b"data: [DONE]\n\n"


def _anthropic_body(prompt: Any, stream: bool) -> bytes:
    if not stream:
        body = {
            "id": "m1",
            "type": "message",
            "role": "assistant",
            "content": [{"type": "text", "text": "fine"}],
            "stop_reason": "end_turn",
            "usage": {"input_tokens": prompt, "output_tokens": 3},
        }
        return json.dumps(body).encode()
    events = [
        ("message_start", {"message": {"id": "m1", "usage": {"input_tokens": prompt}}}),
        ("content_block_start", {"index": 0, "content_block": {"type": "text", "text": ""}}),
        ("content_block_delta", {"index": 0, "delta": {"type": "text_delta", "text": "fine"}}),
        ("message_delta", {"delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": 3}}),
        ("message_stop", {}),
    ]
    return b"".join(
        f"event: {k}\ndata: {json.dumps({'type': k, **d})}\n\n".encode() for k, d in events
    )


async def _call(kind: str, prompt: Any, stream: bool) -> ModelResponse:
    body = (_openai_body if kind == "openai" else _anthropic_body)(prompt, stream)
    kind_of = "text/event-stream" if stream else "application/json"

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        head = {"content-type": kind_of, "content-length": str(len(body))}
        writer.write(response_head(200, head) + body)
        await writer.drain()

    async with raw_server(serve) as url:
        model: Any = (
            OpenAICompatibleModel("m", base_url=f"{url}/v1", timeout=30)
            if kind == "openai"
            else AnthropicModel("claude", api_key="k", base_url=url, timeout=30)
        )
        try:
            messages = [{"role": "user", "content": "is the refund of order 1234 fine?"}]
            if not stream:
                return await model.chat(messages)  # type: ignore[no-any-return]
            chunks = [c async for c in model.stream(build_request(messages))]
            response = chunks[-1].response
            assert response is not None
            return model.finalize(build_request(messages), response, 0.01)  # type: ignore[no-any-return]
        finally:
            await model.aclose()


@pytest.mark.parametrize("stream", [False, True], ids=["complete", "stream"])
@pytest.mark.parametrize("kind", ["openai", "anthropic"])
@pytest.mark.parametrize("prompt", BAD, ids=repr)
async def test_an_unusable_token_count_is_counted_by_tether(
    kind: str, stream: bool, prompt: Any
) -> None:
    got = await _call(kind, prompt, stream)
    assert got.text == "fine"
    assert got.usage.estimated  # counted by tether, both sides, not taken from the report
    assert got.usage.input_tokens > 0 and got.usage.output_tokens > 0


@pytest.mark.parametrize("stream", [False, True], ids=["complete", "stream"])
@pytest.mark.parametrize("kind", ["openai", "anthropic"])
async def test_a_usable_report_is_taken_as_is(kind: str, stream: bool) -> None:
    got = await _call(kind, 17, stream)
    assert (got.usage.input_tokens, got.usage.output_tokens, got.usage.estimated) == (17, 3, False)
