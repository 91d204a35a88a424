"""A streamed request answered with one whole JSON completion (``content-type:
application/json``, no events), as some OpenAI-compatible servers and gateways do when they
cannot stream, is that answer: delivered through the stream (one text delta, then the end) and
counted with the usage it reports.

Before, it was refused ("answered a streamed request with one JSON body ... call without
stream=True") although the provider had been paid for it, and a budget charged nothing."""

from __future__ import annotations

import asyncio
from typing import Any, TypedDict

import orjson
import pytest

from tests.llm.providers.rawhttp import raw_server, read_request, response_head
from tether import END, START, Graph, RunStatus, Runtime
from tether.core.messages import ToolSpec
from tether.governance import Budget, Governance
from tether.llm.providers.anthropic import AnthropicModel
from tether.llm.providers.openai_compat import OpenAICompatibleModel
from tether.llm.request import build_request

OPENAI = {
    "id": "c1",
    "object": "chat.completion",
    "choices": [
        {
            "index": 0,
            "message": {"role": "assistant", "content": "Order 1234 is refunded."},
            "finish_reason": "stop",
        }
    ],
    "usage": {"prompt_tokens": 12, "completion_tokens": 7},
}
ANTHROPIC = {
    "id": "msg_1",
    "type": "message",
    "role": "assistant",
    "model": "claude",
    "content": [{"type": "text", "text": "Order 1234 is refunded."}],
    "stop_reason": "end_turn",
    "usage": {"input_tokens": 12, "output_tokens": 7},
}


class S(TypedDict, total=False):
    text: str


class JsonServer:
    """Answers every request, streamed or not, with ``body`` as one JSON document."""

    def __init__(self, body: dict[str, Any]) -> None:
        self.body = orjson.dumps(body)
        self.streamed: list[bool] = []

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        _, raw = await read_request(reader)
        self.streamed.append(bool(orjson.loads(raw).get("stream")))
        head = {
            "content-type": "application/json",
            "content-length": str(len(self.body)),
            "connection": "close",
        }
        writer.write(response_head(200, head) + self.body)
        await writer.drain()


def _model(kind: str, url: str) -> Any:
    if kind == "openai":
        return OpenAICompatibleModel("m", base_url=f"{url}/v1", timeout=30)
    return AnthropicModel("claude", api_key="k", base_url=url, timeout=30)


@pytest.mark.parametrize(("kind", "body"), [("openai", OPENAI), ("anthropic", ANTHROPIC)])
async def test_a_whole_json_answer_to_a_stream_is_delivered_and_charged(
    kind: str, body: dict[str, Any]
) -> None:
    server = JsonServer(body)
    tokens: list[str] = []

    async def agent(state: S) -> dict[str, Any]:
        said = await model.chat("refund order 1234", stream=True, on_token=tokens.append)
        return {"text": said.text}

    g = Graph(S, name="whole_answer")
    g.add_node("agent", agent).add_edge(START, "agent").add_edge("agent", END)
    wf = g.compile(governance=Governance(budget=Budget(tokens=10_000)))
    async with raw_server(server.serve) as url:
        model = _model(kind, url)
        async with Runtime("memory://") as rt:
            res = await rt.run(wf, {})
            ledger = await rt.store.get_ledger(f"run:{res.run_id}")  # type: ignore[attr-defined]
            usage = await rt.store.model_usage(res.run_id)
        await model.aclose()
    assert res.status is RunStatus.COMPLETED, res.error  # before: FAILED, "call without stream"
    assert server.streamed == [True]
    assert res.state == {"text": "Order 1234 is refunded."}
    assert tokens == ["Order 1234 is refunded."]  # one delta, the whole text
    assert (ledger.used["input_tokens"], ledger.used["output_tokens"]) == (12, 7)
    assert [(u.calls, u.input_tokens, u.output_tokens) for u in usage] == [(1, 12, 7)]


async def test_a_whole_json_tool_call_answer_comes_as_the_stream_end() -> None:
    body = {
        "id": "c2",
        "choices": [
            {
                "index": 0,
                "message": {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [
                        {
                            "id": "call_1",
                            "type": "function",
                            "function": {"name": "refund", "arguments": '{"order": "1234"}'},
                        }
                    ],
                },
                "finish_reason": "tool_calls",
            }
        ],
    }
    server = JsonServer(body)
    async with raw_server(server.serve) as url:
        model = _model("openai", url)
        request = build_request("refund 1234", tools=[ToolSpec(name="refund")])
        chunks = [c async for c in model.stream(request)]
        await model.aclose()
    assert [c.delta for c in chunks] == [""]  # no text: the end alone
    response = chunks[-1].response
    assert response is not None and response.finish_reason == "tool_calls"
    assert [(c.name, c.arguments) for c in response.tool_calls] == [("refund", {"order": "1234"})]
