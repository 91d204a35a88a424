"""A scripted research agent for the evaluation tests: a planner, a ReAct-style agent calling
tools, and a validator, on a fake clock each node advances by known amounts."""

from __future__ import annotations

from typing import Any, TypedDict

from tether import END, START, Graph, RunContext, interrupt
from tether.core.messages import Message, ToolCall
from tether.evaluation import explain, record_plan
from tether.graph.types import Phase
from tether.llm.fakes import ScriptedModel, tool_call
from tether.llm.model import Model
from tether.llm.types import ModelResponse, Usage
from tether.testing import FakeClock
from tether.tools import ToolExecutor, tool

calls: dict[str, int] = {"search": 0, "fetch": 0}


@tool(scope="read")
def search(q: str) -> dict[str, Any]:
    """Search the web."""
    calls["search"] += 1
    return {"hits": [{"title": "Tether raises Series A", "amount_musd": 42}]}


@tool(scope="read")
def fetch(url: str) -> str:
    """Fetch a page."""
    calls["fetch"] += 1
    return "The page says nothing new about zeppelins."


class Research(TypedDict, total=False):
    question: str
    answer: str
    notes: list[str]


def said(
    text: str = "", *, call: ToolCall | None = None, tokens: tuple[int, int], cost: float = 0.001
) -> ModelResponse:
    """A scripted answer with the usage and cost the KPI arithmetic counts."""
    return ModelResponse(
        text=text,
        tool_calls=(call,) if call else (),
        finish_reason="tool_calls" if call else "stop",
        usage=Usage(input_tokens=tokens[0], output_tokens=tokens[1]),
        cost=cost,
    )


def thorough_model() -> ScriptedModel:
    """Plans search, fetch, summarize; searches (saying why), fetches, answers with the
    search's facts (42, Series A). 4 calls: 10+30+40+50 = 130 in, 20+5+5+15 = 45 out."""
    return ScriptedModel(
        [
            said("Plan: search the news, fetch the page, summarize.", tokens=(10, 20)),
            said("I need the funding news.", call=tool_call("search", {"q": "tether funding"}),
                 tokens=(30, 5)),
            said(call=tool_call("fetch", {"url": "https://example.com/t"}), tokens=(40, 5)),
            said("Tether raised 42 million dollars in its Series A.", tokens=(50, 15)),
        ]
    )  # fmt: skip


def quick_model() -> ScriptedModel:
    """Plans search, summarize; searches, answers with 42. 3 calls: 10+20+30 = 60 in,
    10+5+10 = 25 out."""
    return ScriptedModel(
        [
            said("Plan: search, then summarize.", tokens=(10, 10)),
            said(call=tool_call("search", {"q": "tether"}), tokens=(20, 5)),
            said("They raised 42 million.", tokens=(30, 10)),
        ]
    )


def build(model: Model, clock: FakeClock, *, name: str = "research", review: bool = False) -> Any:
    """plan (2 s, planner) -> agent (5 s, tool) -> check (1 s, validator; with ``review`` it
    asks a human, which escalates the run) -> END."""
    tools = ToolExecutor([search, fetch])

    async def plan(state: Research, ctx: RunContext) -> dict[str, Any]:
        clock.advance(2.0)
        answer = await model.chat(state["question"])
        steps = [s for s in ("search", "fetch", "summarize") if s in answer.text.lower()]
        record_plan(steps, text=answer.text)
        return {"notes": [answer.text]}

    async def agent(state: Research, ctx: RunContext) -> dict[str, Any]:
        clock.advance(5.0)
        messages = [Message.user(state["question"])]
        while True:
            answer = await model.chat(messages)
            if not answer.tool_calls:
                return {"answer": answer.text}
            messages.append(answer.message())
            for call in answer.tool_calls:
                if call.name == "fetch":
                    explain("the search hit needs its source page checked")
                res = await tools.call(call.name, call.arguments, ctx=ctx)
                messages.append(Message.tool(call.id, str(res.value)))

    async def check(state: Research, ctx: RunContext) -> dict[str, Any]:
        clock.advance(1.0)
        if review:
            interrupt({"check": state.get("answer")})
        return {}

    g = Graph(Research, name=name)
    g.add_node("plan", plan, phase=Phase.PLANNER)
    g.add_node("agent", agent, phase=Phase.TOOL)
    g.add_node("check", check, phase=Phase.VALIDATOR)
    g.add_edge(START, "plan")
    g.add_edge("plan", "agent")
    g.add_edge("agent", "check")
    g.add_edge("check", END)
    return g.compile()
