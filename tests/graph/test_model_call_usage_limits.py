"""Where the model-usage guarantee of a run continued after its runtime lost its memory
mid-step stops (docs/models.md, "Usage and cost"): the call the node journaled is counted
(its event is put again by the replay, tests/graph/test_model_call_usage.py), but a model
call nested in it (a model a FunctionModel consults, a wrapper's own attempts) and a failed
attempt of the journaled call, made before the runtime stopped, are not: their events were
held in memory with the step's and nothing journaled them. The budget ledger, written as each
call settles, is the record of what they spent. These tests pin that documented behaviour."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any, TypedDict

from tether import END, START, Graph, RetryPolicy, RunStatus, Runtime
from tether.llm import FunctionModel, ModelRequest, ModelResponse, ScriptedModel, Usage
from tether.store.sqlite import SqliteStore

INNER = ModelResponse(text="judged", usage=Usage(input_tokens=5, output_tokens=1), cost=0.1)
OUTER = ModelResponse(text="ok", usage=Usage(input_tokens=10, output_tokens=4), cost=0.5)


class S(TypedDict, total=False):
    said: str


async def test_nested_and_failed_attempts_before_a_mid_step_stop_are_not_counted(
    tmp_path: Path,
) -> None:
    db = tmp_path / "runs.db"
    judge = ScriptedModel([INNER] * 4, name="judge")

    async def consults(request: ModelRequest) -> ModelResponse:
        await judge.chat("is this fine?")  # a nested call: the outer call's record stands
        return OUTER

    outer = FunctionModel(consults, name="outer")
    flaky = ScriptedModel([RuntimeError("HTTP 500 from the provider"), OUTER] * 2, name="flaky")
    called, gate = asyncio.Event(), asyncio.Event()

    async def ask(state: S) -> dict[str, Any]:
        await outer.chat("draft")
        said = await flaky.chat("draft")  # its first attempt fails, the node retry succeeds
        called.set()
        await gate.wait()
        return {"said": said.text}

    g = Graph(S, name="limits")
    g.add_node("ask", ask, retry=RetryPolicy(max_attempts=2, initial_interval=0.0, jitter=False))
    g.add_edge(START, "ask").add_edge("ask", END)
    wf = g.compile()
    async with Runtime(SqliteStore(db), workflows=[wf]) as first:
        handle = await first.start(wf, {})
        await called.wait()
    gate.set()
    async with Runtime(SqliteStore(db), workflows=[wf], poll_interval=0.05) as rt:
        res = await rt.wait(handle.run_id)
        events = [e.data for e in await rt.store.list_events(handle.run_id)]
        usage = {
            u.model: (u.calls, u.input_tokens) for u in await rt.store.model_usage(handle.run_id)
        }
    assert res.status is RunStatus.COMPLETED and res.state == {"said": "ok"}
    calls = [d for d in events if "model" in d and "input_tokens" in d]
    # made before the stop: outer (with judge inside it), a failed flaky attempt, flaky
    assert (judge.calls, flaky.calls) == (1, 2)
    # counted: the two journaled answers, replayed; not the nested call nor the failed attempt
    assert sorted(d["model"] for d in calls) == ["function:outer", "scripted:flaky"], calls
    assert all(d.get("recovered") for d in calls)
    assert usage == {"function:outer": (1, 10), "scripted:flaky": (1, 10)}, usage
