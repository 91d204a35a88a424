"""Inside a run, a tool call acts for the run's tenant: the tool sees it, the tenant's kill
switches stop it, a per-tenant rate limit counts it in the tenant's bucket, and an executor
bound to another tenant is refused. One shared executor serves every tenant (as in a server)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, TypedDict

import pytest

from tether import END, START, Graph, RunContext, Runtime
from tether.core.errors import PolicyViolationError, ToolDisabledError, ToolRateLimitedError
from tether.graph.builder import Workflow
from tether.store.memory import MemoryStore
from tether.tools import KillSwitch, RateLimit, ToolContext, ToolExecutor, tool

CALLS: list[tuple[str, str | None]] = []


@tool(scope="destructive", idempotent=True)
def close_account(account_id: str, ctx: ToolContext) -> str:
    """Close a customer account."""
    CALLS.append((account_id, ctx.tenant))
    return f"closed {account_id} for {ctx.tenant}"


@tool(rate_limit=RateLimit(0.001, burst=1, per_tenant=True, max_wait=0))
def export(account_id: str, ctx: ToolContext) -> str:
    """Export an account (one per tenant, then rate limited)."""
    return f"exported {account_id} for {ctx.tenant}"


class S(TypedDict, total=False):
    tool: str
    bound: str
    out: str
    error: str


class Accounts:
    """A runtime with the ``accounts`` workflow, and the control store of its executors."""

    def __init__(self, rt: Runtime, workflow: Workflow, control: MemoryStore) -> None:
        self.rt, self.workflow, self.control = rt, workflow, control

    async def run(self, tenant: str | None, **state: Any) -> dict[str, Any]:
        done = await self.rt.run(self.workflow, {"tool": "close_account", **state}, tenant=tenant)
        assert done.status.value == "COMPLETED", done.error
        return dict(done.state)


@pytest.fixture(params=["memory", "sqlite"])
async def rt(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Accounts]:
    CALLS.clear()
    control = MemoryStore()  # the control store every executor below shares
    executors = {
        None: ToolExecutor([close_account, export], control, kill_refresh=0),
        "globex": ToolExecutor([close_account, export], control, tenant="globex", kill_refresh=0),
    }

    async def act(state: S, ctx: RunContext) -> dict[str, Any]:
        res = await executors[state.get("bound")].call(
            state["tool"], {"account_id": "A-1"}, ctx=ctx
        )
        if res.ok:
            return {"out": res.value}
        return {"error": f"{type(res.error).__name__}: {res.error}"}

    graph = Graph(S, name="accounts")
    graph.add_node("act", act, phase="tool")
    graph.add_edge(START, "act").add_edge("act", END)
    store = "memory://" if request.param == "memory" else f"sqlite:///{tmp_path / 'runs.db'}"
    workflow = graph.compile()
    async with Runtime(store, workflows=[workflow]) as runtime:
        yield Accounts(runtime, workflow, control)


async def test_the_tool_sees_the_runs_tenant(rt: Accounts) -> None:
    assert (await rt.run("acme"))["out"] == "closed A-1 for acme"
    assert (await rt.run(None))["out"] == "closed A-1 for None"
    assert CALLS == [("A-1", "acme"), ("A-1", None)]


async def test_a_tenants_kill_switch_stops_that_tenants_runs_only(rt: Accounts) -> None:
    await KillSwitch(rt.control).disable(tenant="acme", reason="acme is under review")
    refused = await rt.run("acme")
    assert refused["error"].startswith("ToolDisabledError") and "under review" in refused["error"]
    assert (await rt.run("initech"))["out"] == "closed A-1 for initech"
    assert CALLS == [("A-1", "initech")]  # acme's call never reached the tool
    # a tool switched off for one tenant only
    await KillSwitch(rt.control).disable(tool="close_account", tenant="initech")
    assert "ToolDisabledError" in (await rt.run("initech"))["error"]
    assert ToolDisabledError.__name__ in (await rt.run("acme"))["error"]


async def test_a_per_tenant_rate_limit_counts_each_tenant_apart(rt: Accounts) -> None:
    assert (await rt.run("acme", tool="export"))["out"] == "exported A-1 for acme"
    assert (await rt.run("initech", tool="export"))["out"] == "exported A-1 for initech"
    again = await rt.run("acme", tool="export")
    assert again["error"].startswith(ToolRateLimitedError.__name__)


async def test_an_executor_bound_to_another_tenant_is_refused_in_a_run(rt: Accounts) -> None:
    refused = await rt.run("acme", bound="globex")
    assert refused["error"].startswith(PolicyViolationError.__name__)
    assert "bound to tenant 'globex'" in refused["error"] and "'acme'" in refused["error"]
    assert CALLS == []
    # its own tenant's runs, and untenanted ones, use it as before
    assert (await rt.run("globex", bound="globex"))["out"] == "closed A-1 for globex"
    assert (await rt.run(None, bound="globex"))["out"] == "closed A-1 for globex"


async def test_a_call_outside_a_run_keeps_its_own_tenant() -> None:
    executor = ToolExecutor([close_account], MemoryStore(), tenant="globex")
    assert (
        await executor.call("close_account", {"account_id": "B"})
    ).value == "closed B for globex"
    res = await executor.call("close_account", {"account_id": "B"}, tenant="acme")
    assert res.value == "closed B for acme"
