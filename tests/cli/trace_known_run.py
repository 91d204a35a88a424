"""A known run for ``tether trace``'s tests: every time in it comes from a fake clock, so its
timeline draws the same every time."""

from __future__ import annotations

from typing import Any, TypedDict

from tether import START, Graph, RunContext, Runtime, interrupt
from tether.core.messages import Message
from tether.graph.types import RetryPolicy
from tether.llm import ModelRequest, ModelResponse, ScriptedModel, Timing, Usage
from tether.store.protocol import RunStore
from tether.testing import FakeClock
from tether.tools import ToolExecutor, tool

RUN_ID = "run-known-1"


class S(TypedDict, total=False):
    plan: str
    found: str
    looked: str
    checked: bool
    approved: Any


async def known_run(store: RunStore, clock: FakeClock) -> str:
    """Plan (a model call), search and lookup in parallel (tool calls), a check that fails once
    and is retried, then a human approval the run waits for (ESCALATED)."""

    class ClockedModel(ScriptedModel):
        async def complete(self, request: ModelRequest) -> ModelResponse:
            clock.advance(0.8)  # the model's latency, on the fake clock
            return await super().complete(request)

    model = ClockedModel(
        [
            ModelResponse(
                text="search, then look up",
                model="openai:gpt-4o-mini",
                usage=Usage(input_tokens=1200, output_tokens=80),
                timing=Timing(latency=0.8, ttft=0.25),
            )
        ],
        name="gpt-4o-mini",
    )

    @tool()
    async def web_search(q: str) -> str:
        clock.advance(0.4)
        return f"results for {q}"

    @tool(scope="write")
    async def crm_lookup(customer: str) -> str:
        clock.advance(1.1)
        return "gold"

    tools = ToolExecutor([web_search, crm_lookup], clock=clock)

    async def plan(state: S) -> dict[str, Any]:
        clock.advance(0.1)
        reply = await model.chat([Message.user("plan it")])
        return {"plan": reply.text}

    async def search(state: S, ctx: RunContext) -> dict[str, Any]:
        got = await tools.call("web_search", {"q": "acme"}, ctx=ctx)
        return {"found": str(got.value)}

    async def lookup(state: S, ctx: RunContext) -> dict[str, Any]:
        got = await tools.call("crm_lookup", {"customer": "acme"}, ctx=ctx)
        return {"looked": str(got.value)}

    tries = {"n": 0}

    async def check(state: S) -> dict[str, Any]:
        tries["n"] += 1
        clock.advance(0.3)
        if tries["n"] == 1:
            raise ConnectionError("validator unreachable")
        return {"checked": True}

    async def approve(state: S) -> dict[str, Any]:
        clock.advance(0.05)
        return {"approved": interrupt({"question": "send the offer?"})}

    g = Graph(S, name="sales_assistant")
    g.add_node("plan", plan, phase="planner")
    g.add_node("search", search, phase="tool").add_node("lookup", lookup, phase="tool")
    g.add_node(
        "check",
        check,
        phase="validator",
        retry=RetryPolicy(max_attempts=2, initial_interval=0.001, jitter=False),
    )
    g.add_node("approve", approve)
    g.add_edge(START, "plan").add_edge("plan", "search").add_edge("plan", "lookup")
    g.add_edge(["search", "lookup"], "check").add_edge("check", "approve")
    async with Runtime(store, recover=False, clock=clock) as rt:
        res = await rt.run(g.compile(), {}, run_id=RUN_ID)
    return res.run_id
