"""An answer received and refused is charged. A server that ignores ``tool_choice="required"``
(llama.cpp with many chat formats does) answers in text; tether refuses that answer
(ModelResponseError) and a RetryingModel asks again, but the provider billed the refused
answer all the same. Before, a budget charged only the answer that was accepted (and nothing
when every attempt was refused); now the call is charged what each attempt consumed."""

from __future__ import annotations

import asyncio
import json
from typing import Any, TypedDict

import pytest

from tests.llm.providers.rawhttp import raw_server, read_request, response_head
from tether import END, START, Graph, RunStatus, Runtime
from tether.core.errors import ModelResponseError
from tether.governance import Budget, Governance
from tether.llm.providers.openai_compat import OpenAICompatibleModel
from tether.llm.wrappers import FallbackModel, ModelRetry, RetryingModel

NO_WAIT = ModelRetry(max_attempts=3, initial_interval=0.0, jitter=False)
TOOL = {"type": "function", "function": {"name": "refund", "parameters": {"type": "object"}}}


class S(TypedDict, total=False):
    done: bool


def _answer(calls: bool) -> bytes:
    message: dict[str, Any] = {"role": "assistant", "content": "I'd rather explain refunds."}
    if calls:
        message = {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {"id": "c1", "type": "function", "function": {"name": "refund", "arguments": "{}"}}
            ],
        }
    body = {
        "id": "x",
        "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 100, "completion_tokens": 50},
    }
    return json.dumps(body).encode()


def _server(refusals: int) -> Any:
    seen = [0]

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        seen[0] += 1
        body = _answer(calls=seen[0] > refusals)  # text first: tool_choice ignored
        writer.write(response_head(200, {"content-length": str(len(body))}) + body)
        await writer.drain()

    return raw_server(serve)


async def _run(model: Any) -> tuple[Any, Any]:
    async def agent(state: S) -> dict[str, Any]:
        await model.chat("refund order 1234", tools=[TOOL], tool_choice="required")
        return {"done": True}

    g = Graph(S, name="refused_answers")
    g.add_node("agent", agent).add_edge(START, "agent").add_edge("agent", END)
    wf = g.compile(governance=Governance(budget=Budget(tokens=10_000)))
    async with Runtime("memory://") as rt:
        res = await rt.run(wf, {}, max_attempts=1)
        ledger = await rt.store.get_ledger(f"run:{res.run_id}")  # type: ignore[attr-defined]
    return res, ledger


async def test_a_retried_call_is_charged_every_answer_it_received() -> None:
    async with _server(refusals=2) as url:
        provider = OpenAICompatibleModel("m", base_url=f"{url}/v1", timeout=30)
        res, ledger = await _run(RetryingModel(provider, NO_WAIT))
        await provider.aclose()
    assert res.status is RunStatus.COMPLETED
    assert ledger.used["input_tokens"] == 300 and ledger.used["output_tokens"] == 150


async def test_a_call_whose_every_answer_was_refused_is_charged_them() -> None:
    async with _server(refusals=99) as url:
        provider = OpenAICompatibleModel("m", base_url=f"{url}/v1", timeout=30)
        res, ledger = await _run(RetryingModel(provider, NO_WAIT))
        await provider.aclose()
    assert res.status is RunStatus.FAILED
    assert ledger.used["tokens"] == 450 and ledger.used["model_calls"] == 1


async def test_a_fallback_is_charged_the_answer_it_moved_past() -> None:
    async with _server(refusals=1) as url:
        first = OpenAICompatibleModel("m", base_url=f"{url}/v1", timeout=30)
        second = OpenAICompatibleModel("n", base_url=f"{url}/v1", timeout=30)
        res, ledger = await _run(FallbackModel([first, second]))
        await first.aclose()
        await second.aclose()
    assert res.status is RunStatus.COMPLETED
    assert ledger.used["tokens"] == 300


async def test_the_refusal_carries_what_the_answer_consumed() -> None:
    async with _server(refusals=1) as url:
        provider = OpenAICompatibleModel("m", base_url=f"{url}/v1", timeout=30)
        with pytest.raises(ModelResponseError) as err:
            await provider.chat("refund order 1234", tools=[TOOL], tool_choice="required")
        await provider.aclose()
    assert (err.value.usage.input_tokens, err.value.usage.output_tokens) == (100, 50)
