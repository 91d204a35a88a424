"""A worker whose node calls a model, then dies by SIGKILL after the call was journaled but
before the node finished: on resume the node runs again and must get the journaled answer.

    python -m tests.llm.crash_model_app DB COUNTER RUN_ID

COUNTER is a file the model appends a line to on every real call; ``COUNTER.crash`` present
makes the node kill its own process once, right after the model answered.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path
from typing import Any, TypedDict

from tether import END, START, Graph, Runtime
from tether.llm import FunctionModel, ModelRequest
from tether.store.sqlite import SqliteStore

COUNTER = Path(os.environ.get("CRASH_COUNTER", "/nonexistent"))


def answer(request: ModelRequest) -> str:
    with COUNTER.open("a") as f:
        f.write(f"{request.last_user_text}\n")
    return f"answer to {request.last_user_text}"


model = FunctionModel(answer, name="paid-model")


class State(TypedDict, total=False):
    question: str
    answer: str
    summary: str


async def ask(state: State) -> dict[str, Any]:
    response = await model.chat(state["question"])
    crash = COUNTER.with_suffix(".crash")
    if crash.exists():
        crash.unlink()
        os.kill(os.getpid(), signal.SIGKILL)  # journaled, node unfinished
    return {"answer": response.text}


async def summarise(state: State) -> dict[str, Any]:
    response = await model.chat(f"summarise: {state['answer']}")
    return {"summary": response.text}


graph = Graph(State, name="crash_model")
graph.add_node("ask", ask)
graph.add_node("summarise", summarise)
graph.add_edge(START, "ask").add_edge("ask", "summarise").add_edge("summarise", END)
workflow = graph.compile()


async def main(db: str, run_id: str) -> None:
    async with Runtime(
        SqliteStore(db), workflows=[workflow], lease_ttl=0.5, poll_interval=0.05
    ) as rt:
        await rt.start(workflow, {"question": "why?"}, run_id=run_id, idempotency_key=run_id)
        res = await rt.wait(run_id, timeout=30)
        print(res.status.value, res.state.get("summary"), flush=True)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))
