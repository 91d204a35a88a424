"""ReWOO against ReAct on one research task: the same tools, the same answer, and what each
spent. ReWOO plans every tool call up front with placeholders (#E1...), runs the independent
ones together and solves once; ReAct asks the model again after every observation, re-sending
the whole history each time.

    python examples/rewoo_research.py            # offline, scripted models (deterministic)
    python examples/rewoo_research.py --live     # the bundled model (or TETHER_MODEL) plans

Both runs are durable tether runs on an in-memory store; the table counts model calls and
tokens as each run's state recorded them.
"""

from __future__ import annotations

import argparse
import asyncio

from tether.agents import ReactOptions, RewooOptions, react_agent, rewoo_agent, savings
from tether.core.errors import RunFailedError
from tether.llm import Model, ScriptedModel, model_from_spec, tool_call
from tether.tools import ToolExecutor, tool

PAPERS = {"raft": 2014, "paxos": 1998, "spanner": 2012}
"""Topic -> the year its founding paper came out."""
TASK = "How many years separate the Paxos paper from the Raft paper, and which came first?"


@tool(scope="read", idempotent=True)
def paper_year(topic: str) -> int:
    """The year the founding paper of a distributed-systems topic was published."""
    found = PAPERS.get(topic.strip().lower())
    if found is None:
        raise ValueError(f"no paper on {topic!r}; known topics: {sorted(PAPERS)}")
    return found


@tool(scope="read", idempotent=True)
def years_between(first: int, second: int) -> int:
    """How many years separate two years."""
    return abs(second - first)


def tools() -> ToolExecutor:
    return ToolExecutor([paper_year, years_between])


ANSWER = "Paxos (1998) came first; Raft followed 16 years later (2014)."
PLAN = {
    "steps": [
        {"id": "#E1", "tool": "paper_year", "args": {"topic": "paxos"}},
        {"id": "#E2", "tool": "paper_year", "args": {"topic": "raft"}},
        {"id": "#E3", "tool": "years_between", "args": {"first": "#E1", "second": "#E2"}},
    ]
}


def scripted() -> tuple[Model, Model, Model]:
    """(planner, solver, react model), deterministic."""
    react = ScriptedModel(
        [
            tool_call("paper_year", {"topic": "paxos"}),
            tool_call("paper_year", {"topic": "raft"}),
            tool_call("years_between", {"first": 1998, "second": 2014}),
            ANSWER,
        ],
        name="react",
    )
    return ScriptedModel([PLAN], name="planner"), ScriptedModel([ANSWER], name="solver"), react


async def compare(planner: Model, solver: Model, react_model: Model) -> str:
    try:
        rewoo = await rewoo_agent(
            RewooOptions(planner=planner, solver=solver, tools=tools())
        ).ainvoke({"task": TASK})
        react = await react_agent(
            ReactOptions(model=react_model, tools=tools(), max_iterations=6)
        ).ainvoke({"task": TASK})
    except RunFailedError as exc:  # a small live model may give no usable plan
        return f"task: {TASK}\nthe run failed: {exc}"
    saved = savings(rewoo, react)
    return "\n".join(
        [
            f"task: {TASK}",
            f"rewoo answer: {rewoo['answer']}",
            f"react answer: {react['answer']} ({react['stopped']})",
            f"rewoo tool calls: {rewoo['tool_calls']} in {rewoo['waves']} wave(s); "
            f"react tool calls: {react['tool_calls']}",
            "",
            saved.table(),
        ]
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--live", action="store_true", help="plan with the bundled model")
    args = parser.parse_args(argv)
    if args.live:
        model = model_from_spec()
        print(asyncio.run(compare(model, model, model)))
    else:
        print(asyncio.run(compare(*scripted())))


if __name__ == "__main__":
    main()
