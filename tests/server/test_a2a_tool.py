"""The A2A client tool: a tether run calls a tether A2A agent over real HTTP as a journaled
tool; a replay returns the journaled answer instead of calling the agent again."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypedDict

import pytest
from fastapi import FastAPI

from tests.server.apps import workflows
from tests.server.live import serve
from tether import END, START, Graph, RunStatus, Runtime, interrupt
from tether.core.errors import ConfigurationError
from tether.graph.context import RunContext
from tether.server.a2a import mount_a2a
from tether.tools import ToolError, ToolExecutor
from tether.tools.a2a_tool import a2a_tool


@dataclass
class Services:
    runtime: Runtime


@pytest.fixture
async def remote(tmp_path: Path) -> AsyncIterator[tuple[str, Runtime]]:
    rt = Runtime(f"sqlite:///{tmp_path / 'remote.db'}", workflows=workflows, recover=False)
    async with rt:
        app = FastAPI()
        mount_a2a(app, Services(rt))
        async with serve(app) as url:
            yield url, rt


class Caller(TypedDict, total=False):
    question: str
    reply: dict[str, Any]
    accepted: Any


async def consult(state: Caller, ctx: RunContext) -> dict[str, Any]:
    res = await ctx.deps["tools"].call("a2a_echo", {"message": state["question"]}, ctx=ctx)
    reply = res.unwrap()
    accepted = interrupt({"check": reply["text"]})  # parks; the resume re-runs this node
    return {"reply": reply, "accepted": accepted}


caller_graph = Graph(Caller, name="caller")
caller_graph.add_node("consult", consult).add_edge(START, "consult").add_edge("consult", END)
caller = caller_graph.compile()


async def test_a_run_calls_an_a2a_agent_once_and_replays_from_the_journal(
    remote: tuple[str, Runtime], tmp_path: Path
) -> None:
    url, remote_rt = remote
    tools = ToolExecutor([a2a_tool(f"{url}/a2a/echo")])
    local = Runtime(
        f"sqlite:///{tmp_path / 'local.db'}",
        workflows=[caller],
        recover=False,
        deps={"tools": tools},
    )
    async with local:
        first = await local.run(caller, {"question": "ping"})
        assert first.status is RunStatus.ESCALATED
        assert first.interrupts[0]["payload"] == {"check": "PING"}
        done = await local.resume(first.run_id, "yes")
        assert done.status is RunStatus.COMPLETED  # type: ignore[union-attr]
        reply = done.state["reply"]  # type: ignore[union-attr]
        effects = await local.store.list_effects(first.run_id)
    assert reply["state"] == "completed"
    assert reply["text"] == "PING"
    assert reply["agent"] == "echo"
    assert reply["data"][0]["answer"] == "PING"
    assert [e.status for e in effects if e.kind == "tool"] == ["done"]
    remote_runs = await remote_rt.list_runs(workflow="echo")
    assert len(remote_runs) == 1, "the replay after the resume did not call the agent again"
    assert remote_runs[0].run_id == reply["task_id"]


async def test_input_required_is_answered_with_the_task_ids(remote: tuple[str, Runtime]) -> None:
    url, remote_rt = remote
    tools = ToolExecutor([a2a_tool(f"{url}/a2a/ask", name="ask_agent")])
    asked = (await tools.call("ask_agent", {"message": "six times seven"})).unwrap()
    assert asked["state"] == "input-required"
    assert "six times seven" in asked["text"]
    answered = (
        await tools.call(
            "ask_agent",
            {"message": "42", "task_id": asked["task_id"], "context_id": asked["context_id"]},
        )
    ).unwrap()
    assert answered["state"] == "completed"
    assert answered["text"] == "the human said 42"
    run = await remote_rt.get_run(asked["task_id"])
    assert run.status is RunStatus.COMPLETED


async def test_unreachable_agent_and_bad_urls_are_typed_errors(
    remote: tuple[str, Runtime],
) -> None:
    url, _ = remote
    with pytest.raises(ConfigurationError, match="http"):
        a2a_tool("ftp://nowhere")
    tools = ToolExecutor([a2a_tool(f"{url}/a2a/nope", name="nope")])
    res = await tools.call("nope", {"message": "hi"})
    assert not res.ok and isinstance(res.error, ToolError)
    assert "404" in str(res.error)
