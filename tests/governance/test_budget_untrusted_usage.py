"""A budget is never credited by a call. A model server (or a proxy before it) reporting
``"prompt_tokens": -4000`` took 4,000 tokens off the run's ledger with every call: 30 calls
under a 500-token budget ran to the end with -119,700 tokens "used". The report is now
distrusted (tether counts the tokens), and a negative or non-finite amount reaching the ledger
any other way is charged as what the call held."""

from __future__ import annotations

import asyncio
import json
import math
from typing import Any, TypedDict

import pytest

from tests.llm.providers.rawhttp import raw_server, read_request, response_head
from tether import END, START, Graph, RunStatus, Runtime
from tether.core.governor import CallOutcome, GovernedCall
from tether.governance import Budget, Governance
from tether.governance.budget_ledger import charged
from tether.llm.providers.openai_compat import OpenAICompatibleModel

CALLS = 30
ANSWER = "the refund of order 1234 is approved " * 3


class S(TypedDict, total=False):
    n: int


async def _serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await read_request(reader)
    body = json.dumps(
        {
            "id": "c1",
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": ANSWER},
                    "finish_reason": "stop",
                }
            ],
            "usage": {"prompt_tokens": -4000, "completion_tokens": 10},
        }
    ).encode()
    head = {"content-type": "application/json", "content-length": str(len(body))}
    writer.write(response_head(200, head) + body)
    await writer.drain()


async def test_a_server_reporting_negative_tokens_cannot_lift_the_budget() -> None:
    async with raw_server(_serve) as url:
        model = OpenAICompatibleModel("m", base_url=f"{url}/v1", timeout=30)

        async def agent(state: S) -> dict[str, Any]:
            await model.chat("is the refund of order 1234 approved?", max_tokens=30)
            return {"n": state.get("n", 0) + 1}

        g = Graph(S, name="untrusted_usage")
        g.add_node("agent", agent).add_edge(START, "agent")
        g.add_conditional_edges(
            "agent", lambda s: "agent" if s.get("n", 0) < CALLS else END, ["agent", END]
        )
        wf = g.compile(governance=Governance(budget=Budget(tokens=500)))
        try:
            async with Runtime("memory://") as rt:
                res = await rt.run(wf, {})
                ledger = await rt.store.get_ledger(f"run:{res.run_id}")  # type: ignore[attr-defined]
        finally:
            await model.aclose()
    assert res.status is RunStatus.ESCALATED  # the budget tripped before 30 calls
    assert res.escalation is not None and res.escalation["details"]["dimension"] == "tokens"
    assert 0 < res.state["n"] < CALLS
    # what tether counted was charged (the fake server ignores max_tokens, so the last call
    # may pass the limit a little: a budget stops the next call, not a running one)
    assert ledger.used["input_tokens"] > 0 and ledger.used["tokens"] > 400


@pytest.mark.parametrize("bad", [-4000.0, math.nan, math.inf, -math.inf])
def test_a_negative_or_non_finite_amount_is_charged_as_held(bad: float) -> None:
    hold = {"input_tokens": 40.0, "output_tokens": 30.0, "cost": 0.02}
    call = GovernedCall("model", "openai:m", projected=hold)
    got = charged(
        call, hold, CallOutcome(True, {"input_tokens": bad, "output_tokens": 5.0, "cost": bad})
    )
    assert got["input_tokens"] == 40.0 and got["cost"] == 0.02  # what it held
    assert got["output_tokens"] == 5.0 and got["tokens"] == 45.0  # a sound report is taken
    tool = GovernedCall("tool", "refund", projected={"cost": 1.5})
    assert charged(tool, {"cost": 1.5}, CallOutcome(True, {"cost": bad}))["cost"] == 1.5
