"""An approval answers one call, across the re-runs of its node: a rejection still refuses the
call when the node re-runs for a later approval; an approval whose call a later part (the
budget) refused is given back; an approved call whose process died during it is retried on
the same approval (an idempotent one by the recovery, a non-idempotent one once a human said
retry), never asked again."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any, TypedDict

import pytest

from tests.governance.approved_crash_app import build as crash_workflow
from tests.governance.approved_crash_app import wiped
from tether import END, START, Graph, RunContext, RunStatus, Runtime
from tether.governance import Budget, Governance, PolicySet
from tether.governance.approvals import generate_key, sign
from tether.graph.builder import Workflow
from tether.store.sqlite import SqliteStore
from tether.tools import ToolExecutor, tool

ROOT = Path(__file__).resolve().parents[2]


class S(TypedDict, total=False):
    out: list[Any]


def one_node(name: str, tools: ToolExecutor, disks: list[str], gov: Governance) -> Workflow:
    async def agent(state: S, ctx: RunContext) -> dict[str, Any]:
        out: list[Any] = []
        for disk in disks:
            res = await tools.call("look" if disk == "look" else "wipe", {"disk": disk}, ctx=ctx)
            out.append(res.value if res.ok else type(res.error).__name__)
        return {"out": out}

    g = Graph(S, name=name)
    g.add_node("agent", agent)
    g.add_edge(START, "agent").add_edge("agent", END)
    return g.compile(governance=gov)


def wipe_tools(ran: list[str]) -> ToolExecutor:
    @tool(scope="destructive", idempotent=True)
    def wipe(disk: str) -> str:
        """Wipe a disk."""
        ran.append(disk)
        return f"wiped {disk}"

    @tool(scope="read")
    def look(disk: str) -> str:
        """Look at a disk."""
        return "fine"

    return ToolExecutor([wipe, look])


async def test_a_rejection_still_refuses_its_call_when_the_node_re_runs(tmp_path: Path) -> None:
    ran: list[str] = []
    wf = one_node("two-wipes", wipe_tools(ran), ["A", "B"], Governance(policies=PolicySet()))
    async with Runtime(SqliteStore(tmp_path / "t.db"), workflows=[wf]) as rt:
        key = generate_key()
        await rt.approvals.register_approver("alice", "ops", key)
        first = await rt.run(wf, {})
        assert first.escalation is not None
        a = await rt.approvals.get(first.escalation["details"]["approval_id"])
        assert a.intent["args"] == {"disk": "A"}
        await rt.approvals.reject(a.approval_id, "alice", sign(key, a, "reject"), reason="no A")
        second = await rt.wait(first.run_id, timeout=60)
        assert second.escalation is not None  # A refused, B waits for its approval
        b = await rt.approvals.get(second.escalation["details"]["approval_id"])
        assert b.intent["args"] == {"disk": "B"}
        await rt.approvals.approve(b.approval_id, "alice", sign(key, b))
        # the node re-runs: A is refused again (no new request a second approver could pass)
        done = await rt.wait(first.run_id, timeout=60)
        requests = await rt.approvals.list(run_id=first.run_id)
    assert done.status is RunStatus.COMPLETED
    assert done.state["out"] == ["PolicyViolationError", "wiped B"]
    assert ran == ["B"]
    assert sorted((r.intent["args"]["disk"], r.status) for r in requests) == [
        ("A", "rejected"),
        ("B", "approved"),
    ]


async def test_an_approval_the_budget_refused_is_given_back(tmp_path: Path) -> None:
    ran: list[str] = []
    gov = Governance(policies=PolicySet(), budget=Budget(tool_calls=1))
    wf = one_node("approved-then-budget", wipe_tools(ran), ["look", "d1"], gov)
    async with Runtime(SqliteStore(tmp_path / "t.db"), workflows=[wf]) as rt:
        key = generate_key()
        await rt.approvals.register_approver("alice", "ops", key)
        parked = await rt.run(wf, {})
        assert parked.escalation is not None and parked.escalation["kind"] == "approval"
        aid = parked.escalation["details"]["approval_id"]
        await rt.approvals.approve(aid, "alice", sign(key, await rt.approvals.get(aid)))
        tripped = await rt.wait(parked.run_id, timeout=60)
        assert tripped.escalation is not None and tripped.escalation["kind"] == "budget"
        given_back = await rt.approvals.get(aid)
        assert given_back.status == "approved" and given_back.used_at is None
        assert [h["what"] for h in given_back.history][-2:] == ["used", "released"]
        # more budget, and the approved call runs: nobody is asked again
        await rt.resume(parked.run_id, {"raise_budget": {"tool_calls": 5}})
        done = await rt.wait(parked.run_id, timeout=60)
        requests = await rt.approvals.list(run_id=parked.run_id)
    assert done.status is RunStatus.COMPLETED, done.escalation
    assert done.state["out"] == ["fine", "wiped d1"] and ran == ["d1"]
    assert [(r.approval_id, r.used_at is not None) for r in requests] == [(aid, True)]


def crashed_child(db: Path, log: Path, mode: str) -> None:
    """The child process runs the workflow to its approved call, which kills it (SIGKILL)."""
    log.with_suffix(".crash").write_text("")
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
    }
    child = subprocess.run(
        [
            sys.executable,
            "-m",
            "tests.governance.approved_crash_app",
            str(db),
            str(log),
            "r-wipe",
            mode,
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert child.returncode == -signal.SIGKILL, child.stderr
    assert len(wiped(log)) == 1  # it wiped, and died before its result was journaled


@pytest.mark.parametrize("mode", ["idem", "nonidem"])
async def test_an_approved_call_cut_by_a_crash_is_retried_on_its_approval(
    tmp_path: Path, mode: str
) -> None:
    db, log = tmp_path / "runs.db", tmp_path / "wipes.log"
    crashed_child(db, log, mode)
    wf = crash_workflow(log, mode == "idem")
    async with Runtime(SqliteStore(db), workflows=[wf], lease_ttl=0.5) as rt:
        res = await rt.wait("r-wipe", timeout=60)  # recovered here: the child's lease is dead
        if mode == "nonidem":  # nobody knows whether it wiped: a human says retry
            assert res.escalation is not None, res.state
            assert res.escalation["kind"] == "unknown_effect_outcome"
            await rt.resume("r-wipe", {"retry": True})
            res = await rt.wait("r-wipe", timeout=60)
        requests = await rt.approvals.list(run_id="r-wipe")
    assert res.status is RunStatus.COMPLETED, res.escalation
    assert res.state["out"] == [True, "wiped d1"]
    keys = wiped(log)
    assert len(keys) == 2 and keys[0] == keys[1]  # made again with the same key
    assert [(r.status, r.used_at is not None) for r in requests] == [("approved", True)]
