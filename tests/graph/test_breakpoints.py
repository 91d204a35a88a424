"""Static breakpoints: compile(interrupt_before=[...], interrupt_after=[...])."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypedDict

import pytest

from tether import END, START, Graph, Runtime, append, interrupt
from tether.core.errors import GraphDefinitionError, InvalidInputError, RunStateError
from tether.core.lifecycle import RunStatus
from tether.store.protocol import RunStore

ROOT = Path(__file__).resolve().parents[2]


class S(TypedDict, total=False):
    log: Annotated[list[str], append]
    rounds: int
    answer: str


CALLS: list[str] = []


def plan(s: S) -> dict[str, Any]:
    CALLS.append("plan")
    return {"log": ["plan"], "rounds": s.get("rounds", 0) + 1}


def act(s: S) -> dict[str, Any]:
    CALLS.append("act")
    return {"log": [f"act{s.get('rounds', 0)}"]}


def ask(s: S) -> dict[str, Any]:
    CALLS.append("ask")
    return {"answer": interrupt({"question": "ok?"})}


def build(name: str, **bp: Any) -> Any:
    g = Graph(S, name=name)
    g.add_node("plan", plan).add_node("act", act).add_node("ask", ask)
    g.add_edge(START, "plan").add_edge("plan", "act")
    g.add_conditional_edges("act", lambda s: "plan" if s["rounds"] < 2 else "ask", ["plan", "ask"])
    g.add_edge("ask", END)
    return g.compile(**bp)


@pytest.fixture(autouse=True)
def _calls() -> None:
    CALLS.clear()


async def test_before_parks_without_running_the_node_and_resume_goes_on(rt: Runtime) -> None:
    wf = build("bp_before", interrupt_before=["act"])
    r = await rt.run(wf, {})
    assert r.status is RunStatus.ESCALATED
    assert CALLS == ["plan"]  # act has not run
    assert r.escalation is not None and r.escalation["kind"] == "breakpoint"
    assert r.escalation["when"] == "before" and r.escalation["nodes"] == ["act"]
    assert [i["payload"] for i in r.interrupts] == [
        {"breakpoint": "before", "node": "act", "step": 2}
    ]
    # act runs in a loop: each visit is its own breakpoint, a resume passes only the one
    r = await rt.resume(r.run_id)
    assert r.status is RunStatus.ESCALATED and r.escalation is not None
    assert r.escalation["step"] == 4 and CALLS == ["plan", "act", "plan"]
    r = await rt.resume(r.run_id)  # past the 2nd act; ask's own interrupt() parks it
    assert r.status is RunStatus.ESCALATED and r.escalation is not None
    assert r.escalation["kind"] == "interrupt"
    r = await rt.resume(r.run_id, "yes")
    assert r.status is RunStatus.COMPLETED
    assert r.state["log"] == ["plan", "act1", "plan", "act2"] and r.state["answer"] == "yes"


async def test_after_parks_once_the_step_is_committed(rt: Runtime) -> None:
    wf = build("bp_after", interrupt_after=["plan"])
    r = await rt.run(wf, {})
    assert r.status is RunStatus.ESCALATED and r.escalation is not None
    assert r.escalation["when"] == "after" and r.escalation["step"] == 1
    assert r.state["log"] == ["plan"] and CALLS == ["plan"]
    hist = await rt.history(r.run_id)
    assert [h.step for h in hist] == [0, 1]  # the step it follows is committed
    r = await rt.resume(r.run_id)
    assert r.status is RunStatus.ESCALATED and r.escalation is not None
    assert r.escalation["step"] == 3 and CALLS == ["plan", "act", "plan"]


async def test_after_the_last_node_parks_then_completes(rt: Runtime) -> None:
    g = Graph(S, name="bp_last")
    g.add_node("plan", plan).set_entry_point("plan").set_finish_point("plan")
    wf = g.compile(interrupt_after=["plan"])
    r = await rt.run(wf, {})
    assert r.status is RunStatus.ESCALATED and r.state["rounds"] == 1
    r = await rt.resume(r.run_id)
    assert r.status is RunStatus.COMPLETED and r.state["rounds"] == 1 and CALLS == ["plan"]


async def test_node_interrupt_inside_a_before_breakpoint_is_not_stopped_at_twice(
    rt: Runtime,
) -> None:
    wf = build("bp_both", interrupt_before=["ask"], interrupt_after=["ask"])
    r = await rt.run(wf, {})
    assert r.escalation is not None and r.escalation["kind"] == "breakpoint"
    assert r.escalation["when"] == "before" and "ask" not in CALLS
    r = await rt.resume(r.run_id)
    assert r.escalation is not None and r.escalation["kind"] == "interrupt"
    assert r.interrupts[0]["payload"] == {"question": "ok?"}
    r = await rt.resume(r.run_id, "fine")  # the node re-runs: no second "before" stop
    assert r.status is RunStatus.ESCALATED and r.escalation is not None
    assert r.escalation["kind"] == "breakpoint" and r.escalation["when"] == "after"
    assert r.state["answer"] == "fine"
    r = await rt.resume(r.run_id)
    assert r.status is RunStatus.COMPLETED and CALLS.count("ask") == 2


async def test_a_breakpoint_takes_no_answer(rt: Runtime) -> None:
    wf = build("bp_value", interrupt_before=["act"])
    r = await rt.run(wf, {})
    with pytest.raises(InvalidInputError, match="breakpoint"):
        await rt.resume(r.run_id, {"answer": 1})
    with pytest.raises(RunStateError, match="no longer waits"):
        await rt.resume(r.run_id, answers={"x": 1})
    assert (await rt.get_run(r.run_id)).status is RunStatus.ESCALATED
    r = await rt.resume(r.run_id, None)  # None is what LangGraph users pass
    assert r.escalation is not None and r.escalation["step"] == 4


@pytest.mark.parametrize(
    ("kw", "needle"),
    [
        ({"interrupt_before": ["nope"]}, "'nope', which is not a node"),
        ({"interrupt_after": [START]}, "START and END cannot"),
        ({"interrupt_before": "act"}, "not a string"),
        ({"interrupt_after": 3}, "list of node names"),
    ],
)
def test_breakpoint_names_are_checked_at_compile(kw: dict[str, Any], needle: str) -> None:
    with pytest.raises(GraphDefinitionError, match=needle):
        build("bp_bad", **kw)


async def test_breakpoints_hold_across_processes(shared_store: Callable[[], RunStore]) -> None:
    wf = build("bp_durable", interrupt_before=["ask"], interrupt_after=["plan"])
    async with Runtime(shared_store(), recover=False) as first:
        r = await first.run(wf, {})
        assert r.escalation is not None and r.escalation["when"] == "after"
    run_id = r.run_id
    seen: list[tuple[str, str | None]] = []
    for _ in range(3):  # every resume in a fresh "process" (runtime over its own connection)
        async with Runtime(shared_store(), workflows=[wf], recover=False) as nxt:
            r = await nxt.resume(run_id)
            assert r.escalation is not None
            seen.append((r.escalation["kind"], r.escalation.get("when")))
    assert seen == [
        ("breakpoint", "after"),  # plan again (round 2)
        ("breakpoint", "before"),  # ask
        ("interrupt", None),  # ask's interrupt(); the "before" pass is in the store
    ]
    async with Runtime(shared_store(), workflows=[wf], recover=False) as last:
        r = await last.resume(run_id, "done")
    assert r.status is RunStatus.COMPLETED and r.state["answer"] == "done"
    assert r.state["log"] == ["plan", "act1", "plan", "act2"]


async def test_a_fork_stops_at_a_breakpoint_its_parent_had_passed(rt: Runtime) -> None:
    wf = build("bp_fork", interrupt_before=["act"])
    r = await rt.run(wf, {})
    r = await rt.resume(r.run_id)  # past step 2's breakpoint, parked at step 4's
    fork = await rt.fork(r.run_id, 1)
    forked = await fork.wait()
    assert forked.status is RunStatus.ESCALATED and forked.escalation is not None
    assert forked.escalation["kind"] == "breakpoint" and forked.escalation["step"] == 2


cli_wf = build("bp_cli", interrupt_before=["act"])


def test_cli_shows_a_breakpoint_and_resumes_past_it(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'runs.db'}"

    async def park() -> str:
        async with Runtime(url, recover=False) as rt:
            return (await rt.run(cli_wf, {})).run_id

    run_id = asyncio.run(park())
    env = {k: v for k, v in os.environ.items() if not k.startswith("TETHER_")}

    app = f"{Path(__file__)}:cli_wf"

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "tether.cli.main", *args, "--store", url, "--app", app],
            capture_output=True,
            text=True,
            cwd=ROOT,
            env=env,
            timeout=120,
        )

    shown = cli("runs", "show", run_id)
    assert shown.returncode == 0, shown.stderr
    assert "breakpoint:before:2:act" in shown.stdout
    assert f"go on with: tether runs resume {run_id}\n" in shown.stdout
    assert "--value" not in shown.stdout
    resumed = cli("runs", "resume", run_id)
    assert resumed.returncode == 0, resumed.stderr

    async def escalation() -> Any:
        async with Runtime(url, recover=False) as rt:
            return (await rt.get_run(run_id)).escalation

    assert asyncio.run(escalation())["step"] == 4  # past step 2's breakpoint, at step 4's
