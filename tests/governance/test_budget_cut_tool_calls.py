"""A streamed answer cut after tool-call pieces only (no text yet) is charged what it spent.

Before, a stream that had delivered the name and part of the arguments of a tool call when the
connection closed was charged nothing: no text had arrived, so the call counted 0 tokens,
although the provider billed its prompt and the tool-call tokens it generated (a tokens budget
never stopped a tool call that kept being cut). Now it is charged as a cut text stream is: its
prompt and the pieces that arrived, counted (``estimated``), on the OpenAI-compatible and the
Anthropic providers alike; and a retry wrapper that tries again charges the cut attempt too."""

from __future__ import annotations

import asyncio
import json
from typing import Any, TypedDict

import pytest

from tests.llm.providers.rawhttp import raw_server, read_request, response_head
from tether import END, START, Graph, RunStatus, Runtime
from tether.core.messages import ToolSpec
from tether.governance import Budget, Governance
from tether.llm.providers.anthropic import AnthropicModel
from tether.llm.providers.openai_compat import OpenAICompatibleModel
from tether.llm.wrappers.fallback import FallbackModel
from tether.llm.wrappers.retry import ModelRetry, RetryingModel

SSE = {"content-type": "text/event-stream", "connection": "close"}
PROMPT = "write a long essay about refunds"  # 32 characters: 8 tokens
NAME = "refund_order"
ARGS = ['{"order_id": "', "A-1234567", '", "reason": "', "damaged in transit, customer asked"]
BILLED = (len(NAME + "".join(ARGS)) + 3) // 4  # the four-characters estimate: 20 tokens
TOOL = ToolSpec(name=NAME)


class S(TypedDict, total=False):
    done: bool


def _openai_call() -> bytes:
    def chunk(delta: dict[str, Any]) -> bytes:
        body = {"id": "c", "choices": [{"index": 0, "delta": delta}]}
        return f"data: {json.dumps(body)}\n\n".encode()

    head = {"index": 0, "id": "call_1", "type": "function", "function": {"name": NAME}}
    pieces = [{"index": 0, "function": {"arguments": a}} for a in ARGS]
    return chunk({"tool_calls": [head]}) + b"".join(chunk({"tool_calls": [p]}) for p in pieces)


def _anthropic_call() -> bytes:
    def event(kind: str, **data: Any) -> bytes:
        return f"event: {kind}\ndata: {json.dumps({'type': kind, **data})}\n\n".encode()

    block = {"type": "tool_use", "id": "tu_1", "name": NAME, "input": {}}
    deltas = [{"type": "input_json_delta", "partial_json": a} for a in ARGS]
    return (
        event("message_start", message={"id": "m1", "usage": {"input_tokens": 8}})
        + event("content_block_start", index=0, content_block=block)
        + b"".join(event("content_block_delta", index=0, delta=d) for d in deltas)
    )


def _openai_whole() -> bytes:
    body = {
        "id": "c2",
        "choices": [{"index": 0, "delta": {"content": "done"}, "finish_reason": "stop"}],
    }
    usage = {"id": "c2", "choices": [], "usage": {"prompt_tokens": 8, "completion_tokens": 1}}
    return f"data: {json.dumps(body)}\n\ndata: {json.dumps(usage)}\n\ndata: [DONE]\n\n".encode()


class CutServer:
    """Answers each request with the next body of ``bodies`` (the last one again when they
    run out), then closes the connection."""

    def __init__(self, *bodies: bytes) -> None:
        self.bodies = list(bodies)
        self.requests = 0

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        body = self.bodies[min(self.requests, len(self.bodies) - 1)]
        self.requests += 1
        writer.write(response_head(200, SSE) + body)
        await writer.drain()


def _model(kind: str, url: str) -> Any:
    if kind == "openai":
        return OpenAICompatibleModel("m", base_url=f"{url}/v1", timeout=30)
    return AnthropicModel("claude", api_key="k", base_url=url, timeout=30)


def _workflow(model: Any, budget: Budget) -> Any:
    async def agent(state: S) -> dict[str, Any]:
        await model.chat(PROMPT, tools=[TOOL], stream=True, max_tokens=1000)
        return {"done": True}

    g = Graph(S, name="cut_tool_calls")
    g.add_node("agent", agent).add_edge(START, "agent").add_edge("agent", END)
    return g.compile(governance=Governance(budget=budget))


async def _run(
    server: CutServer, kind: str, wrap: bool | str = False
) -> tuple[Any, Any, list[Any]]:
    async with raw_server(server.serve) as url:
        inner = _model(kind, url)
        retry = ModelRetry(max_attempts=2, initial_interval=0.0, jitter=False)
        model = RetryingModel(inner, retry) if wrap else inner
        if wrap == "fallback":  # the same server behind two models of a chain
            model = FallbackModel([inner, _model(kind, url)])
        async with Runtime("memory://") as rt:
            res = await rt.run(_workflow(model, Budget(tokens=100_000)), {}, max_attempts=1)
            ledger = await rt.store.get_ledger(f"run:{res.run_id}")  # type: ignore[attr-defined]
            events = [e.data async for e in rt.events(res.run_id, follow=False)]
        await inner.aclose()
    return res, ledger, [e for e in events if "input_tokens" in e and "model" in e]


@pytest.mark.parametrize(
    ("kind", "body"), [("openai", _openai_call), ("anthropic", _anthropic_call)]
)
async def test_a_stream_cut_after_tool_call_pieces_is_charged_its_prompt_and_pieces(
    kind: str, body: Any
) -> None:
    res, ledger, calls = await _run(CutServer(body()), kind)
    assert res.status is RunStatus.FAILED and "ended before its answer did" in str(res.error)
    assert ledger.used["input_tokens"] == 8  # before: 0
    assert ledger.used["output_tokens"] == BILLED  # before: 0
    assert ledger.used["model_calls"] == 1
    assert sum(ledger.reserved.values()) == 0
    (call,) = calls
    assert (call["input_tokens"], call["output_tokens"], call["estimated"]) == (8, BILLED, True)


async def test_a_retried_stream_charges_the_attempt_cut_after_tool_call_pieces() -> None:
    """The retry wrapper still tries again (no text had reached the caller), and the call is
    charged the cut attempt's prompt and pieces with the answer that came after."""
    server = CutServer(_openai_call(), _openai_whole())
    res, ledger, calls = await _run(server, "openai", wrap=True)
    assert res.status is RunStatus.COMPLETED, res.error
    assert server.requests == 2
    assert ledger.used["input_tokens"] == 8 + 8
    assert ledger.used["output_tokens"] == BILLED + 1
    assert ledger.used["model_calls"] == 1
    (call,) = calls
    assert (call["input_tokens"], call["output_tokens"]) == (16, BILLED + 1)


def _openai_text_cut() -> bytes:
    body = {"id": "c3", "choices": [{"index": 0, "delta": {"content": "done"}}]}
    return f"data: {json.dumps(body)}\n\n".encode()  # no finish, no [DONE]: cut


@pytest.mark.parametrize("wrap", [True, "fallback"])
async def test_a_retried_stream_cut_after_its_text_still_charges_the_earlier_cut_attempt(
    wrap: bool | str,
) -> None:
    """The retry's second attempt (or the fallback's second model) streams text and is then cut
    (too late to try again): the call is charged both attempts. Before, the first attempt's
    prompt and tool-call pieces were dropped with the error the second one raised."""
    server = CutServer(_openai_call(), _openai_text_cut())
    res, ledger, calls = await _run(server, "openai", wrap=wrap)
    assert res.status is RunStatus.FAILED and "ended before its answer did" in str(res.error)
    assert server.requests == 2
    assert ledger.used["input_tokens"] == 8 + 8  # before: 8
    assert ledger.used["output_tokens"] == BILLED + 1  # before: 1
    assert sum(ledger.reserved.values()) == 0
    (call,) = calls
    assert (call["input_tokens"], call["output_tokens"]) == (16, BILLED + 1)
