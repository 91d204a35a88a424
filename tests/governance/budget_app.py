"""Budgeted workflows for the budget tests, in this process and in ``tether worker`` processes
(``--app tests.governance.budget_app:workflows``).

``agent`` loops: each step makes one model call (``max_tokens=8``; the model answers 10 input
and 5 output tokens, priced at $0.01 a token: $0.15 a call) and one tool call, until
``turns`` steps ran. Each live model call appends ``model RUN PID`` to ``$BUDGET_SINK/calls.log``
(when set): a journaled replay appends nothing. With ``gate`` the node waits, after its first
model call, until that file exists (a worker can be killed there). ``children`` > 0: the node
of a ``tree`` run first runs that many ``agent`` workflows as subgraph nodes, one per step.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any, TypedDict

from tether import END, START, Graph, RunContext
from tether.governance import Budget, Governance, GovernancePart
from tether.llm.fakes import FunctionModel
from tether.llm.pricing import PriceTable
from tether.llm.types import ModelRequest, ModelResponse, Usage
from tether.tools import ToolExecutor, tool

IN, OUT = 10, 5
PRICE = 0.01
CALL_COST = (IN + OUT) * PRICE


class S(TypedDict, total=False):
    n: int
    turns: int
    gate: str
    tick: float


class Tree(TypedDict, total=False):
    turns: int
    tick: float


def append(path: str, line: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, (line + "\n").encode())
    finally:
        os.close(fd)


def answer(request: ModelRequest) -> ModelResponse:
    sink = os.environ.get("BUDGET_SINK")
    if sink:
        append(
            os.path.join(sink, "calls.log"), f"model {request.messages[-1].content} {os.getpid()}"
        )
    return ModelResponse(text="ok", usage=Usage(input_tokens=IN, output_tokens=OUT))


model = FunctionModel(answer, name="budgeted")
model.prices = PriceTable(
    {"budgeted": (PRICE * 1e6, PRICE * 1e6), "function:budgeted": (PRICE * 1e6, PRICE * 1e6)}
)

clock_hook: list[Any] = []
"""Tests put a FakeClock here: the tool advances it by the step's ``tick`` seconds."""


@tool(scope="read", idempotent=True)
def work(i: int, tick: float = 0.0) -> str:
    """Do one piece of work."""
    if clock_hook and tick:
        clock_hook[0].advance(tick)
    return f"done {i}"


tools = ToolExecutor([work])


async def agent_node(state: S, ctx: RunContext) -> dict[str, Any]:
    n = state.get("n", 0)
    await model.chat(f"{ctx.run_id}:{n}", max_tokens=8)
    gate = state.get("gate")
    while gate and not os.path.exists(gate):
        await asyncio.sleep(0.02)
    await tools.call("work", {"i": n, "tick": state.get("tick", 0.0)}, ctx=ctx)
    return {"n": n + 1}


def again(state: S) -> str:
    return "agent" if state.get("n", 0) < state.get("turns", 1) else END


def build(budget: GovernancePart | None = None, *parts: GovernancePart, name: str = "agent") -> Any:
    g = Graph(S, name=name)
    g.add_node("agent", agent_node)
    g.add_edge(START, "agent")
    g.add_conditional_edges("agent", again, ["agent", END])
    return g.compile(governance=Governance(budget=budget, parts=parts))


def build_tree(
    child: Any, budget: GovernancePart, children: int, *, nested: Any = None, name: str = "tree"
) -> Any:
    """A root whose nodes ``c0..c{children-1}`` run ``child`` as subgraphs, one per step."""
    g = Graph(Tree, name=name)
    prev = START
    for i in range(children):
        g.add_node(f"c{i}", child if nested is None else nested)
        g.add_edge(prev, f"c{i}")
        prev = f"c{i}"
    g.add_edge(prev, END)
    return g.compile(governance=Governance(budget=budget))


SHARED = Budget(model_calls=40, tokens=450)
"""The envelope of the worker-process tests (each run wants far more)."""
workflows = [build(SHARED, name="shared_agent")]
