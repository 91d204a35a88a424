"""A governed call asks the journal whether it was made before it is gated (a replay is neither
charged nor audited). On SQLite a task reads its calls' keys once (``TaskEffects``) instead of
one ``get_effect`` per call: these tests check the reads it makes and that a replay is still
never charged or audited twice (a node retried after its calls, a key asked twice)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypedDict

import pytest

from tether import END, START, Graph, RetryPolicy, RunContext, RunStatus, Runtime
from tether.governance import Budget, Governance, PolicySet, StoreAuditLog
from tether.store.memory import MemoryStore
from tether.store.sqlite import SqliteStore
from tether.store.types import EffectRecord
from tether.tools import ToolExecutor, tool

CALLS = 3


class S(TypedDict, total=False):
    out: list[int]


@tool(scope="read", idempotent=True)
def echo(i: int) -> int:
    """Return ``i``."""
    made.append(i)
    return i


made: list[int] = []
tools = ToolExecutor([echo])


class CountingSqlite(SqliteStore):
    """Counts the journal reads a governed call makes."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.task_reads: list[str] = []
        self.key_reads: list[str] = []

    async def effect_keys(self, run_id: str, prefix: str) -> set[str]:
        self.task_reads.append(prefix)
        return await super().effect_keys(run_id, prefix)

    async def get_effect(self, run_id: str, key: str) -> EffectRecord | None:
        self.key_reads.append(key)
        return await super().get_effect(run_id, key)


def governed(node: Any, retry: RetryPolicy | None = None) -> Any:
    g = Graph(S, name="journal_read")
    g.add_node("n", node, retry=retry)
    g.add_edge(START, "n").add_edge("n", END)
    return g.compile(governance=Governance(policies=PolicySet([]), budget=Budget()))


async def used(rt: Runtime, run_id: str, dim: str) -> float:
    row = await rt.store.get_ledger(f"run:{run_id}")  # type: ignore[attr-defined]
    assert row is not None
    return float(row.used.get(dim, 0.0))


async def decisions(rt: Runtime, run_id: str) -> int:
    page = await StoreAuditLog(rt.store).records(run_id=run_id, limit=1000)
    return sum(1 for r in page.records if r.kind == "policy_decision")


@pytest.fixture(autouse=True)
def _clear() -> None:
    made.clear()


async def test_a_task_reads_its_keys_once_not_once_per_call(tmp_path: Path) -> None:
    async def node(state: S, ctx: RunContext) -> dict[str, Any]:
        return {"out": [(await tools.call("echo", {"i": i}, ctx=ctx)).unwrap() for i in range(3)]}

    store = CountingSqlite(tmp_path / "j.db")
    async with Runtime(store) as rt:
        res = await rt.run(governed(node), {})
        assert res.status is RunStatus.COMPLETED and res.state["out"] == [0, 1, 2]
        assert len(store.task_reads) == 1
        assert store.task_reads[0].startswith(f"{res.run_id}:")
        assert store.key_reads == []  # none of the task's keys was in the journal
        assert await used(rt, res.run_id, "tool_calls") == 3
        assert await decisions(rt, res.run_id) == 3


async def test_a_retried_node_replays_its_calls_uncharged(tmp_path: Path) -> None:
    attempts: list[int] = []

    async def node(state: S, ctx: RunContext) -> dict[str, Any]:
        attempts.append(ctx.attempt)
        out = [(await tools.call("echo", {"i": i}, ctx=ctx)).unwrap() for i in range(CALLS)]
        if ctx.attempt == 1:
            raise RuntimeError("fails after its calls")
        return {"out": out}

    store = CountingSqlite(tmp_path / "j.db")
    retry = RetryPolicy(max_attempts=2, initial_interval=0.0, jitter=False)
    async with Runtime(store) as rt:
        res = await rt.run(governed(node, retry), {})
        assert res.status is RunStatus.COMPLETED and res.state["out"] == [0, 1, 2]
        assert attempts == [1, 2]
        assert made == [0, 1, 2]  # the second attempt got the journal's results
        assert len(store.task_reads) == 1  # the task's context lives across its attempts
        assert len(store.key_reads) == CALLS  # the second attempt's, found in the journal
        assert await used(rt, res.run_id, "tool_calls") == CALLS
        assert await decisions(rt, res.run_id) == CALLS


@pytest.mark.parametrize("backend", ["sqlite", "memory"])
async def test_a_key_asked_twice_in_a_task_is_charged_once(tmp_path: Path, backend: str) -> None:
    async def node(state: S, ctx: RunContext) -> dict[str, Any]:
        key = ctx.call_key("tool:echo")
        first = await tools.call("echo", {"i": 7}, ctx=ctx, key=key)
        again = await tools.call("echo", {"i": 7}, ctx=ctx, key=key)
        return {"out": [first.unwrap(), again.unwrap(), again.attempts]}

    store = SqliteStore(tmp_path / "j.db") if backend == "sqlite" else MemoryStore()
    async with Runtime(store) as rt:
        res = await rt.run(governed(node), {})
        assert res.status is RunStatus.COMPLETED
        assert res.state["out"] == [7, 7, 0]  # the second call is the journal's (no attempt)
        assert made == [7]
        assert await used(rt, res.run_id, "tool_calls") == 1
        assert await decisions(rt, res.run_id) == 1
