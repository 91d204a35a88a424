"""examples/finops_agent.py: a cost spike, a read-only diagnostic agent, the owner's approval
with a two-hour deadline escalating to the manager on a durable timer, the stop executed only
after an approval and only once. On the fake clock and a real SQLite store; every
``run_finops`` call opens the store afresh, as a new process of the example would."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tether import RunStatus
from tether.core.errors import (
    ApprovalSignatureError,
    ApprovalStateError,
    ModelError,
    RunStateError,
)
from tether.governance.approvals import APPROVAL_DEADLINE, load_private_key, sign
from tether.llm import FunctionModel
from tether.llm.types import ModelRequest
from tether.store.timers import TimerStore
from tether.testing.clock import FakeClock

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "examples"))

from finops.cloud import Cloud, spike_event  # noqa: E402
from finops.graph import MANAGER_DEADLINE, OWNER_DEADLINE, TENANT  # noqa: E402
from finops.model import make_model  # noqa: E402
from finops.session import Options, Outcome, open_runtime, run_finops  # noqa: E402

SCRIPT = ROOT / "examples" / "finops_agent.py"
T0 = 1_780_000_000.0
CLUSTER = "gpu-train-7"


async def finops(
    d: Path, clock: FakeClock, lines: list[str] | None = None, **kw: object
) -> Outcome:
    out = lines if lines is not None else []
    return await run_finops(Options(directory=d, model="scripted", **kw), out.append, clock)  # type: ignore[arg-type]


def stops(d: Path) -> list[tuple[str, int]]:
    return [(a.resource_id, a.requests) for a in Cloud(d / "cloud.db").actions()]


async def test_auto_approve_finds_the_idle_cluster_and_stops_it_once(tmp_path: Path) -> None:
    lines: list[str] = []
    out = await finops(tmp_path, FakeClock(T0), lines, auto_approve=True)
    assert out.status is RunStatus.COMPLETED
    assert out.state["spike"]["service"] == "gpu-training"
    assert CLUSTER in out.state["answer"]  # the diagnostic agent named it
    assert out.state["proposal"]["resource_id"] == CLUSTER
    assert out.state["proposal"]["confirmed"].startswith("named by the agent")
    assert out.state["model_calls"] == 3 and out.state["tool_calls"] == 2
    assert out.state["outcome"] == "stopped"
    assert out.approval is not None and out.approval.status == "approved"
    assert [d["approver"] for d in out.approval.decisions] == ["priya"]
    assert stops(tmp_path) == [(CLUSTER, 1)]
    assert {r["resource_id"]: r["state"] for r in Cloud(tmp_path / "cloud.db").resources()}[
        CLUSTER
    ] == "stopped"
    assert out.audit and all(v.ok for v in out.audit)
    assert any(v.tenant == "acme-cloud" and v.records >= 4 for v in out.audit)
    assert "savings      : $1,176.00 per day" in lines
    assert any(
        line.startswith("audit chain  : acme-cloud:") and "verified" in line for line in lines
    )


async def test_owner_silence_escalates_to_the_manager_after_two_hours_not_before(
    tmp_path: Path,
) -> None:
    clock = FakeClock(T0)
    first = await finops(tmp_path, clock)
    assert first.status is RunStatus.ESCALATED and stops(tmp_path) == []
    apr = first.approval
    assert apr is not None and apr.rule["roles"] == ["owner"] and apr.level == 0
    asked = float(apr.history[0]["at"])
    assert apr.deadline_at == asked + OWNER_DEADLINE

    lines: list[str] = []
    out = await finops(tmp_path, clock, lines, simulate_hours=1 + 59 / 60)  # 1h59m of silence
    assert out.approval is not None and out.approval.level == 0
    assert out.approval.rule["roles"] == ["owner"]
    assert any("WAITING for priya" in line for line in lines)
    with pytest.raises(ApprovalSignatureError, match="role 'owner'"):  # not the manager's yet
        await finops(tmp_path, clock, approve_as="sam")

    lines = []
    out = await finops(tmp_path, clock, lines, simulate_hours=2 / 60)  # past 2 h
    assert out.status is RunStatus.ESCALATED
    apr = out.approval
    assert apr is not None and apr.level == 1 and apr.rule["roles"] == ["manager"]
    (escalated,) = [h for h in apr.history if h["what"] == "escalated"]
    assert asked + OWNER_DEADLINE <= escalated["at"] <= asked + OWNER_DEADLINE + 60
    assert any("ESCALATED" in line for line in lines)
    assert any("WAITING for sam" in line for line in lines)
    assert stops(tmp_path) == []

    with pytest.raises(ApprovalSignatureError, match="may not decide"):
        await finops(tmp_path, clock, approve_as="priya")
    done = await finops(tmp_path, clock, approve_as="sam")
    assert done.status is RunStatus.COMPLETED and done.state["outcome"] == "stopped"
    assert done.approval is not None
    assert [d["approver"] for d in done.approval.decisions] == ["sam"]
    assert stops(tmp_path) == [(CLUSTER, 1)]


async def test_the_escalation_and_the_pending_request_survive_a_restart(tmp_path: Path) -> None:
    clock = FakeClock(T0)
    first = await finops(tmp_path, clock)
    assert first.approval is not None
    aid = first.approval.approval_id
    # nothing runs while the clock moves: the deadline's timer waits in the store
    clock.advance(OWNER_DEADLINE + 1)
    model, _ = make_model("scripted")
    async with open_runtime(tmp_path, clock, model) as (rt, _wf, _cloud):
        assert isinstance(rt.store, TimerStore)
        (timer,) = await rt.store.list_timers(first.run_id)
        assert timer.kind == APPROVAL_DEADLINE and timer.payload["level"] == 0
        assert (await rt.approvals.get(aid)).status == "pending"
        assert await rt.fire_timers() == 1  # a fresh runtime fires it
    async with open_runtime(tmp_path, clock, model) as (rt, _wf, _cloud):  # and another reads it
        rec = await rt.approvals.get(aid)
        assert (rec.status, rec.level, rec.rule["roles"]) == ("pending", 1, ["manager"])
        run = await rt.get_run(first.run_id)
        assert run.status is RunStatus.ESCALATED and run.escalation is not None
        assert run.escalation["details"]["approvers"] == "role 'manager'"
        assert isinstance(rt.store, TimerStore)
        (timer,) = await rt.store.list_timers(first.run_id)
        assert timer.payload["level"] == 1
        assert await rt.fire_timers() == 0
    assert stops(tmp_path) == []
    done = await finops(tmp_path, clock, auto_approve=True)  # the manager, who may decide now
    assert done.run_id == first.run_id and done.status is RunStatus.COMPLETED
    assert done.approval is not None and done.approval.decisions[0]["approver"] == "sam"
    assert stops(tmp_path) == [(CLUSTER, 1)]


async def test_the_stop_runs_once_however_often_it_is_approved_or_resumed(tmp_path: Path) -> None:
    clock = FakeClock(T0)
    first = await finops(tmp_path, clock)
    run_id = first.run_id
    model, _ = make_model("scripted")
    async with open_runtime(tmp_path, clock, model) as (rt, _wf, _cloud):
        for _ in range(2):  # resumed while the request is pending: it parks again, acts not
            res = await rt.resume(run_id)
            assert res.status is RunStatus.ESCALATED
        assert len(await rt.approvals.list(run_id=run_id)) == 1
    assert stops(tmp_path) == []

    done = await finops(tmp_path, clock, approve_as="priya")
    assert done.status is RunStatus.COMPLETED and stops(tmp_path) == [(CLUSTER, 1)]
    assert done.approval is not None
    aid = done.approval.approval_id
    async with open_runtime(tmp_path, clock, model) as (rt, _wf, _cloud):
        rec = await rt.approvals.get(aid)
        key = load_private_key((tmp_path / "priya.pem").read_bytes(), "priya.pem")
        token = sign(key, rec, now=clock.now())
        with pytest.raises(ApprovalStateError, match="approved already"):
            await rt.approvals.approve(aid, "priya", token)
        assert await rt.approvals.resume(aid) is False
        with pytest.raises(RunStateError):
            await rt.resume(run_id)
    again = await finops(tmp_path, clock, auto_approve=True)  # the same spike: the same run
    assert again.run_id == run_id and again.status is RunStatus.COMPLETED
    assert stops(tmp_path) == [(CLUSTER, 1)]
    # the tool got the contract's idempotency key: a repeat of the call is deduplicated
    event = spike_event()
    assert event is not None
    (action,) = Cloud(tmp_path / "cloud.db").actions()
    assert action.key == f"stop:{CLUSTER}:{event['event_id']}"


async def test_a_rejection_ends_the_run_without_acting(tmp_path: Path) -> None:
    clock = FakeClock(T0)
    await finops(tmp_path, clock)
    lines: list[str] = []
    out = await finops(tmp_path, clock, lines, reject_as="priya", reason="retraining tonight")
    assert out.status is RunStatus.COMPLETED
    assert out.state["outcome"] == "rejected" and "rejected" in out.state["refusal"]
    assert out.approval is not None and out.approval.status == "rejected"
    assert stops(tmp_path) == []
    states = {r["resource_id"]: r["state"] for r in Cloud(tmp_path / "cloud.db").resources()}
    assert states[CLUSTER] == "running"
    assert "action       : none; nothing was stopped" in lines
    assert all(v.ok for v in out.audit)


async def test_silence_from_both_ends_in_a_rejection_by_the_deadline(tmp_path: Path) -> None:
    clock = FakeClock(T0)
    await finops(tmp_path, clock)
    clock.advance(OWNER_DEADLINE + 1)
    escalated = await finops(tmp_path, clock)  # the process that opens the store fires it
    assert escalated.approval is not None and escalated.approval.level == 1
    clock.advance(MANAGER_DEADLINE + 1)
    out = await finops(tmp_path, clock)
    assert out.status is RunStatus.COMPLETED and out.state["outcome"] == "rejected"
    assert out.approval is not None and out.approval.status == "rejected"
    assert out.approval.decisions[-1]["approver"] == "(deadline)"
    assert stops(tmp_path) == []


def busy_pick(request: ModelRequest) -> str:
    return "Cause: gpu-infer-2 burns money; stop gpu-infer-2 now."  # wrong: it is 71 % busy


def broken(request: ModelRequest) -> str:
    raise ModelError("the model is down", model="broken")


def silent(request: ModelRequest) -> str:
    return ""  # an empty reply, also when asked again


@pytest.mark.parametrize("reply", [busy_pick, broken, silent])
async def test_a_poor_model_changes_no_safety_property(tmp_path: Path, reply: Any) -> None:
    """Whatever the diagnostic model says (a busy resource, or nothing at all), the graph
    proposes only a measured idle resource, and only an approval releases the stop."""
    clock = FakeClock(T0)
    async with open_runtime(tmp_path, clock, FunctionModel(reply, name="poor")) as (rt, wf, _c):
        res = await rt.run(wf, {"event": spike_event()}, tenant=TENANT)
        assert res.status is RunStatus.ESCALATED
        p = res.state["proposal"]
        assert p["resource_id"] == CLUSTER
        assert p["confirmed"].startswith("found by the graph's utilisation check")
        (apr,) = await rt.approvals.list(run_id=res.run_id)
        assert apr.intent["tool"] == "stop_resource"
        assert apr.intent["args"]["resource_id"] == CLUSTER
        if reply is broken:
            assert "the model is down" in res.state["diagnosis_problem"]
        if reply is silent:
            assert "kept answering nothing" in res.state["diagnosis_problem"]
    assert stops(tmp_path) == []


def example(d: Path, *args: str) -> str:
    return subprocess.run(
        [sys.executable, str(SCRIPT), "--dir", str(d), "--model", "scripted", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    ).stdout


def test_the_example_runs_as_processes(tmp_path: Path) -> None:
    out = example(tmp_path / "auto", "--auto-approve")
    assert "COMPLETED" in out and "savings      : $1,176.00 per day" in out

    d = tmp_path / "story"
    out = example(d)
    assert "WAITING for priya" in out and "--approve-as priya" in out and "--reject-as priya" in out
    assert "== FinOps run" not in out
    out = example(d, "--simulate-hours", "3")
    assert "ESCALATED: role 'owner' did not answer" in out and "WAITING for sam" in out
    out = example(d, "--approve-as", "sam")
    lines = out.splitlines()
    assert any(line.startswith("escalated    :") and "2h0" in line for line in lines)
    assert any(line.startswith("decided      : approve by sam (manager)") for line in lines)
    assert any(
        line.startswith("action       : stop gpu-train-7") and "1 request(s)" in line
        for line in lines
    )
    assert any(
        line.startswith("audit chain  : acme-cloud:") and "verified" in line for line in lines
    )
