"""A traced four-step run in a worker process: ``first`` blocks inside step 2 (the test
SIGKILLs it there), ``second`` joins the same run, recovers it once the dead owner's lease
expires, and finishes it. Each process writes its finished spans to its own file."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any, TypedDict

from tests.observability.span_files import FileSpanExporter
from tether import START, Graph, RunContext, Runtime
from tether.llm import ScriptedModel
from tether.observability import configure_tracing, shutdown_tracing
from tether.store.sqlite import SqliteStore
from tether.tools import ToolExecutor, tool


class State(TypedDict, total=False):
    one: str
    two: str
    three: str


@tool()
async def lookup(q: str) -> str:
    return f"found {q}"


MODEL = ScriptedModel(["a", "b", "c"])
TOOLS = ToolExecutor([lookup])
READY: Path | None = None


async def one(state: State, ctx: RunContext) -> dict[str, Any]:
    text = (await MODEL.chat("first")).text
    got = await TOOLS.call("lookup", {"q": "one"}, ctx=ctx)
    return {"one": f"{text}:{got.value}"}


async def two(state: State) -> dict[str, Any]:
    if READY is not None:  # the first process stops here until it is killed
        READY.write_text("ready")
        await asyncio.sleep(3600)
    return {"two": (await MODEL.chat("second")).text}


async def three(state: State, ctx: RunContext) -> dict[str, Any]:
    got = await TOOLS.call("lookup", {"q": "three"}, ctx=ctx)
    return {"three": str(got.value)}


graph = Graph(State, name="traced_crash")
graph.add_node("one", one).add_node("two", two).add_node("three", three)
graph.add_edge(START, "one").add_edge("one", "two").add_edge("two", "three")
workflow = graph.compile()


async def main(db: str, spans: str, run_id: str, mode: str) -> None:
    global READY
    if mode == "first":
        READY = Path(spans + ".ready")
    configure_tracing(FileSpanExporter(Path(spans)))
    try:
        async with Runtime(
            SqliteStore(db), workflows=[workflow], lease_ttl=0.6, poll_interval=0.05
        ) as rt:
            handle = await rt.start(workflow, {}, run_id=run_id, idempotency_key=run_id)
            print("STARTED" if handle.created else "JOINED", flush=True)
            res = await handle.wait()
            print(res.status.value, flush=True)
    finally:
        shutdown_tracing()


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:5]))
