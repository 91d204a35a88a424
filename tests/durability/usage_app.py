"""A worker whose first node makes a paid model call and then holds its run until a gate file
appears: the usage crash test SIGKILLs it after the call was journaled, before the step
committed, and continues the run in another runtime.

``python -m tests.durability.usage_app URL RUN_ID GATE``: starts the run, prints ``CALLED``
once the model call returned (the node then waits for GATE), and the final status.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any, TypedDict

from tether import END, START, Graph, RunContext, Runtime
from tether.governance import Budget, Governance
from tether.llm import Model, ModelResponse, ScriptedModel, Usage

PROMPT = "x" * 400
"""What ``ask`` sends: about 100 tokens, as a budget estimates them (four characters a token)."""
ASKED = ModelResponse(text="the answer", usage=Usage(input_tokens=100, output_tokens=30), cost=0.25)
WRAPPED = ModelResponse(text="wrapped", usage=Usage(input_tokens=7, output_tokens=3), cost=0.5)
LIMIT = 100_000.0
"""The run's token budget: far above what it spends, so it never trips."""


class State(TypedDict, total=False):
    gate: str
    answer: str
    summary: str


async def ask(state: State, ctx: RunContext) -> dict[str, Any]:
    model: Model = ctx.deps["model"]
    said = await model.chat(PROMPT, max_tokens=50)
    gate = Path(state["gate"])
    if not gate.exists():
        print("CALLED", flush=True)
        while not gate.exists():  # the test kills this process here
            await asyncio.sleep(0.02)
    return {"answer": said.text}


async def wrap(state: State, ctx: RunContext) -> dict[str, Any]:
    model: Model = ctx.deps["model"]
    said = await model.chat(f"wrap up: {state['answer']}", max_tokens=10)
    return {"summary": said.text}


graph = Graph(State, name="usage_crash")
graph.add_node("ask", ask)
graph.add_node("wrap", wrap)
graph.add_edge(START, "ask").add_edge("ask", "wrap").add_edge("wrap", END)
workflow = graph.compile(governance=Governance(budget=Budget(tokens=LIMIT)))


async def main(url: str, run_id: str, gate: str) -> None:
    model = ScriptedModel([ASKED], name="paid")
    async with Runtime(url, workflows=[workflow], deps={"model": model}, lease_ttl=120.0) as rt:
        await rt.start(workflow, {"gate": gate}, run_id=run_id)
        res = await rt.wait(run_id)
        print(res.status.value, flush=True)


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:4]))
