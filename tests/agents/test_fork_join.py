"""Fork-join of child runs: linked durable children, joins on all / quorum / timeout, a shared
budget envelope, and a SIGKILLed parent whose children finish in the next process."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, TypedDict

import pytest

from tether import END, START, Graph, RunContext, Runtime, Workflow, interrupt
from tether.agents import ForkJoinOptions, fork_join, fork_join_node
from tether.core.errors import ConfigurationError, InvalidInputError, RunFailedError
from tether.governance import Budget, Governance
from tether.llm import ScriptedModel
from tether.store.memory import MemoryStore
from tether.store.sqlite import SqliteStore

ROOT = Path(__file__).resolve().parents[2]


class Branch(TypedDict, total=False):
    x: int
    block: bool
    fail: bool
    y: int


async def compute(state: Branch) -> dict[str, Any]:
    if state.get("fail"):
        raise ValueError(f"branch {state['x']} fails")
    if state.get("block"):
        await asyncio.Event().wait()  # never set: waits until the branch is cancelled
    return {"y": state["x"] * 10}


def branch_wf(name: str) -> Any:
    g = Graph(Branch, name=name)
    g.add_node("compute", compute)
    g.add_edge(START, "compute").add_edge("compute", END)
    return g.compile()


async def test_all_children_are_linked_runs_joined_in_order() -> None:
    branch = branch_wf("fj_all_branch")
    wf = fork_join(ForkJoinOptions(branch=branch), name="fj_all")
    async with Runtime(MemoryStore(), recover=False) as rt:
        res = await rt.run(wf, {"branches": [{"x": 1}, {"x": 2}, {"x": 3}]})
        children = await rt.store.list_runs(parent_run_id=res.run_id)
    assert res.state["joined"] == "all"
    assert [r["state"]["y"] for r in res.state["results"]] == [10, 20, 30]
    assert sorted(c.run_id for c in children) == [r["run_id"] for r in res.state["results"]]
    assert all(c.workflow == "fj_all_branch" and c.status.value == "COMPLETED" for c in children)


async def test_quorum_joins_early_and_cancels_the_rest() -> None:
    branch = branch_wf("fj_quorum_branch")
    wf = fork_join(ForkJoinOptions(branch=branch, join="quorum", quorum=2), name="fj_quorum")
    async with Runtime(MemoryStore(), recover=False) as rt:
        res = await rt.run(wf, {"branches": [{"x": 1}, {"x": 2, "block": True}, {"x": 3}]})
    assert res.state["joined"] == "quorum"
    statuses = [r["status"] for r in res.state["results"]]
    assert statuses == ["COMPLETED", "CANCELLED", "COMPLETED"]


async def test_failures_that_make_the_quorum_unreachable_join_at_once() -> None:
    branch = branch_wf("fj_unreach_branch")
    wf = fork_join(ForkJoinOptions(branch=branch, join="quorum", quorum=2), name="fj_unreach")
    async with Runtime(MemoryStore(), recover=False) as rt:
        res = await rt.run(
            wf,
            {"branches": [{"x": 1, "fail": True}, {"x": 2, "fail": True}, {"x": 3, "block": True}]},
        )
    assert res.state["joined"] == "unreachable"
    results = res.state["results"]
    assert [r["status"] for r in results] == ["FAILED", "FAILED", "CANCELLED"]
    assert "branch 1 fails" in results[0]["error"]


async def test_no_branches_join_all_at_once_but_never_meet_a_quorum() -> None:
    """An empty fan-out under join='quorum' reported joined='all', as if the quorum of
    completed branches it was asked for had been met."""
    branch = branch_wf("fj_empty_branch")
    both = [
        fork_join(ForkJoinOptions(branch=branch), name="fj_empty_all"),
        fork_join(ForkJoinOptions(branch=branch, join="quorum", quorum=1), name="fj_empty_q"),
    ]
    async with Runtime(MemoryStore(), recover=False) as rt:
        joined = [(await rt.run(wf, {"branches": []})).state["joined"] for wf in both]
    assert joined == ["all", "unreachable"]


async def test_fewer_branches_than_the_quorum_start_none() -> None:
    """quorum=5 over 3 branches started all three (a worker could claim one and run its
    effects) and cancelled them at once: the quorum was out of reach before anything ran."""
    branch = branch_wf("fj_short_branch")
    wf = fork_join(ForkJoinOptions(branch=branch, join="quorum", quorum=5), name="fj_short")
    async with Runtime(MemoryStore(), recover=False) as rt:
        res = await rt.run(wf, {"branches": [{"x": 1}, {"x": 2}, {"x": 3}]})
        children = await rt.store.list_runs(parent_run_id=res.run_id)
        joins = [e.data async for e in rt.events(res.run_id, follow=False) if e.type == "join"]
    assert (res.state["joined"], res.state["results"], children) == ("unreachable", [], [])
    assert joins == [{"joined": "unreachable", "statuses": [], "branches": 3}]


async def test_timeout_joins_with_what_finished_and_cancels_the_rest() -> None:
    branch = branch_wf("fj_timeout_branch")
    wf = fork_join(ForkJoinOptions(branch=branch, timeout=0.3), name="fj_timeout")
    async with Runtime(MemoryStore(), recover=False) as rt:
        res = await rt.run(wf, {"branches": [{"x": 1, "block": True}, {"x": 2, "block": True}]})
        deadline = [e for e in await rt.store.list_effects(res.run_id) if e.kind == "fork_deadline"]
    assert res.state["joined"] == "timeout"
    assert [r["status"] for r in res.state["results"]] == ["CANCELLED", "CANCELLED"]
    assert len(deadline) == 1  # fixed in the journal: a resumed parent keeps it


async def test_children_draw_on_the_parents_budget_envelope() -> None:
    gov = Governance(budget=Budget(model_calls=3))
    model = ScriptedModel(["ok"], cycle=True)

    async def think(state: Branch, ctx: RunContext) -> dict[str, Any]:
        await model.chat(f"first {state['x']}")
        await model.chat(f"second {state['x']}")
        return {"y": state["x"]}

    g = Graph(Branch, name="fj_budget_branch")
    g.add_node("think", think)
    g.add_edge(START, "think").add_edge("think", END)
    branch = g.compile(governance=gov)
    wf = fork_join(ForkJoinOptions(branch=branch, governance=gov), name="fj_budget")
    async with Runtime(MemoryStore(), recover=False) as rt:
        res = await rt.run(wf, {"branches": [{"x": 1}, {"x": 2}, {"x": 3}]})
        row = await rt.store.get_ledger(f"run:{res.run_id}")
    assert res.status.value == "ESCALATED"
    assert res.escalation is not None and res.escalation["kind"] == "budget"
    assert res.escalation["details"]["child"].startswith(f"{res.run_id}.")
    assert row is not None and row.used["model_calls"] == 3  # one envelope for the tree
    assert model.calls == 3  # each child alone was under the limit; together they were not


async def test_a_branchs_escalation_says_it_is_answered_on_the_branch() -> None:
    """The parent of a branch that tripped the shared budget said 'resume with {'raise_budget':
    ...} to continue', and doing that to the parent parked it again at once on the same branch
    (still ESCALATED): its escalation now says to resume that branch, then the parent, which
    then finishes."""
    gov = Governance(budget=Budget(model_calls=3))
    model = ScriptedModel(["ok"], cycle=True)

    async def think(state: Branch, ctx: RunContext) -> dict[str, Any]:
        await model.chat(f"first {state['x']}")
        await model.chat(f"second {state['x']}")
        return {"y": state["x"]}

    g = Graph(Branch, name="fj_raise_branch")
    g.add_node("think", think).add_edge(START, "think").add_edge("think", END)
    branch = g.compile(governance=gov)
    wf = fork_join(ForkJoinOptions(branch=branch, governance=gov), name="fj_raise")
    async with Runtime(MemoryStore(), recover=False) as rt:
        res = await rt.run(wf, {"branches": [{"x": 1}, {"x": 2}]})
        assert res.status.value == "ESCALATED" and res.escalation is not None
        child, reason = res.escalation["details"]["child"], res.escalation["reason"]
        assert f"resume run {child} as its escalation says, then resume this run" in reason
        again = await rt.resume(res.run_id, {"raise_budget": {"model_calls": 10}})
        assert again.status.value == "ESCALATED"  # the branch still waits: as it said
        assert again.escalation is not None and again.escalation["details"]["child"] == child
        assert (await rt.resume(child)).status.value == "COMPLETED"  # the envelope was raised
        done = await rt.resume(res.run_id)
    assert done.status.value == "COMPLETED", done.escalation
    assert [r["state"]["y"] for r in done.state["results"]] == [1, 2]


def test_bad_options_and_inputs_are_refused() -> None:
    branch = branch_wf("fj_bad_branch")
    with pytest.raises(ConfigurationError, match="quorum"):
        ForkJoinOptions(branch=branch, join="quorum")
    with pytest.raises(ConfigurationError, match="timeout"):
        ForkJoinOptions(branch=branch, timeout=0)
    with pytest.raises(ConfigurationError, match="compiled Workflow"):
        ForkJoinOptions(branch="nope")  # type: ignore[arg-type]
    wf = fork_join(ForkJoinOptions(branch=branch), name="fj_bad")
    with pytest.raises(InvalidInputError, match="branches"):
        wf.invoke({"branches": "x"})  # the state schema refuses it before anything runs

    class Loose(TypedDict, total=False):
        jobs: Any
        results: Any
        joined: str

    g = Graph(Loose, name="fj_loose")  # a graph of your own, with an untyped field
    g.add_node("fan", fork_join_node(ForkJoinOptions(branch=branch, inputs="jobs")))
    g.add_edge(START, "fan").add_edge("fan", END)
    with pytest.raises(RunFailedError, match="list of dicts"):
        g.compile().invoke({"jobs": [1, 2]})


def _spawn(db: Path, sink: Path, run_id: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.agents.fork_crash_app", str(db), str(sink), run_id],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_sigkilled_parent_and_children_resume_in_a_new_process(tmp_path: Path) -> None:
    db, sink, run_id = tmp_path / "runs.db", tmp_path / "sink", "fork-crash-1"
    sink.mkdir()
    log = sink / "effects.log"
    first = _spawn(db, sink, run_id)
    assert first.stdout is not None and first.stdout.readline().strip() == "STARTED"
    deadline = time.monotonic() + 120  # bounds a hang only
    while not (log.exists() and len(log.read_text().splitlines()) == 3):
        assert time.monotonic() < deadline and first.poll() is None, first.stderr
        time.sleep(0.05)
    first.send_signal(signal.SIGKILL)  # every child mid-node, waiting on the gate
    first.wait()
    (sink / "gate").touch()
    second = _spawn(db, sink, run_id)
    out, err = second.communicate(timeout=300)
    assert second.returncode == 0, err[-3000:]
    assert out.split() == ["JOINED", "COMPLETED"], err[-3000:]
    lines = log.read_text().splitlines()
    assert sorted(line.split()[0] for line in lines) == ["a", "b", "c"]  # none recorded twice
    assert {line.split()[1] for line in lines} == {str(first.pid)}

    async def read() -> dict[str, Any]:
        from tests.agents.fork_crash_app import branch, parent

        async with Runtime(SqliteStore(db), workflows=[parent, branch], recover=False) as rt:
            return await rt.get_state(run_id)

    state = asyncio.run(read())
    assert state["joined"] == "all"
    assert [r["state"]["done"] for r in state["results"]] == ["A", "B", "C"]


async def test_a_branch_waiting_for_a_human_parks_the_parent_until_answered() -> None:
    def ask(state: Branch) -> dict[str, Any]:
        answer = interrupt({"question": f"approve {state['x']}?"})
        return {"y": state["x"] if answer == "yes" else -1}

    g = Graph(Branch, name="fj_ask_branch")
    g.add_node("ask", ask)
    g.add_edge(START, "ask").add_edge("ask", END)
    wf = fork_join(ForkJoinOptions(branch=g.compile()), name="fj_ask")
    async with Runtime(MemoryStore(), recover=False) as rt:
        res = await rt.run(wf, {"branches": [{"x": 7}]})
        assert res.status.value == "ESCALATED" and res.escalation is not None
        assert res.escalation["kind"] == "interrupt"
        (asked,) = res.interrupts
        child = asked["payload"]["run_id"]
        assert asked["payload"] == {
            "branch": 0,
            "run_id": child,
            "question": {"question": "approve 7?"},
        }
        assert child.startswith(f"{res.run_id}.") and child.endswith(".0")
        assert (await rt.store.get_run(child)).status.value == "ESCALATED"
        done = await rt.resume(res.run_id, "yes")  # the parent's answer goes down to the branch
    assert done.status.value == "COMPLETED"
    assert done.state["results"][0]["state"]["y"] == 7


class Asks(TypedDict, total=False):
    x: int
    first: str
    second: str


def two_questions_branch(name: str) -> Workflow:
    """A branch asking two questions in turn (the second asked only after the first answer)."""

    def first(state: Asks) -> dict[str, Any]:
        return {"first": interrupt({"q": "first", "x": state["x"]})}

    def second(state: Asks) -> dict[str, Any]:
        return {"second": interrupt({"q": "second", "x": state["x"]})}

    g = Graph(Asks, name=name)
    g.add_node("first", first).add_node("second", second)
    g.add_edge(START, "first").add_edge("first", "second").add_edge("second", END)
    return g.compile()


async def test_each_answer_goes_to_the_question_it_was_given_for() -> None:
    """Two branches asking two questions each: the parent asks them one at a time and every
    answer lands on the very question the human saw (never the next one a re-run meets)."""
    wf = fork_join(ForkJoinOptions(branch=two_questions_branch("fj_qq_branch")), name="fj_qq")
    async with Runtime(MemoryStore(), recover=False) as rt:
        res = await rt.run(wf, {"branches": [{"x": 1}, {"x": 2}]})
        seen = []
        while res.status.value == "ESCALATED":
            (asked,) = res.interrupts
            q = asked["payload"]["question"]
            seen.append((asked["payload"]["branch"], q["q"]))
            res = await rt.resume(res.run_id, f"{q['q']} for {q['x']}")
    assert res.status.value == "COMPLETED"
    assert sorted(seen) == [(0, "first"), (0, "second"), (1, "first"), (1, "second")]
    for r in res.state["results"]:
        x = r["index"] + 1
        assert r["state"]["first"] == f"first for {x}"
        assert r["state"]["second"] == f"second for {x}"


async def test_a_stale_answer_is_dropped_not_given_to_the_next_question() -> None:
    """The branch was answered directly while the parent waited: the parent's late answer is
    dropped (a relay_stale event), never handed to the question the branch asks next."""
    wf = fork_join(ForkJoinOptions(branch=two_questions_branch("fj_stale_branch")), name="fj_st")
    async with Runtime(MemoryStore(), recover=False) as rt:
        res = await rt.run(wf, {"branches": [{"x": 5}]})
        child = res.interrupts[0]["payload"]["run_id"]
        await rt.resume(child, "direct")  # the branch now asks its second question
        res = await rt.resume(res.run_id, "late answer to the first question")
        assert res.status.value == "ESCALATED"
        (asked,) = res.interrupts
        assert asked["payload"]["question"] == {"q": "second", "x": 5}
        stale = [e for e in await rt.store.list_events(res.run_id) if e.type == "relay_stale"]
        assert len(stale) == 1 and stale[0].data["child"] == child
        res = await rt.resume(res.run_id, "ok")
    assert res.status.value == "COMPLETED"
    assert res.state["results"][0]["state"] == {"x": 5, "first": "direct", "second": "ok"}


class Pair(TypedDict, total=False):
    x: int
    left: str
    right: str


async def test_a_branch_asking_two_questions_at_once_needs_a_list_of_two_answers() -> None:
    def left(state: Pair) -> dict[str, Any]:
        return {"left": interrupt({"side": "left"})}

    def right(state: Pair) -> dict[str, Any]:
        return {"right": interrupt({"side": "right"})}

    g = Graph(Pair, name="fj_pair_branch")
    g.add_node("left", left).add_node("right", right)
    g.add_edge(START, "left").add_edge(START, "right")
    g.add_edge("left", END).add_edge("right", END)
    wf = fork_join(ForkJoinOptions(branch=g.compile()), name="fj_pair")
    async with Runtime(MemoryStore(), recover=False) as rt:
        res = await rt.run(wf, {"branches": [{"x": 1}]})
        (asked,) = res.interrupts
        assert asked["payload"]["question"] == [{"side": "left"}, {"side": "right"}]
        res = await rt.resume(res.run_id, "just one")  # refused, and asked again
        (again,) = res.interrupts
        assert again["payload"] == asked["payload"] and again["id"] != asked["id"]
        refused = [e for e in await rt.store.list_events(res.run_id) if e.type == "relay_refused"]
        assert len(refused) == 1 and "list of 2 answers" in refused[0].data["why"]
        res = await rt.resume(res.run_id, ["L", "R"])
    assert res.status.value == "COMPLETED"
    assert res.state["results"][0]["state"] == {"x": 1, "left": "L", "right": "R"}


async def test_cancelling_the_parent_cancels_its_branches() -> None:
    branch = branch_wf("fj_cancel_branch")
    wf = fork_join(ForkJoinOptions(branch=branch), name="fj_cancel")
    async with Runtime(MemoryStore(), recover=False) as rt:
        handle = await rt.start(
            wf, {"branches": [{"x": 1, "block": True}, {"x": 2, "block": True}]}
        )
        for _ in range(1200):  # until both branches run (bounds a hang only)
            children = await rt.store.list_runs(parent_run_id=handle.run_id)
            if len(children) == 2:
                break
            await asyncio.sleep(0.05)
        await rt.cancel(handle.run_id, reason="no longer needed")
        for _ in range(1200):
            children = await rt.store.list_runs(parent_run_id=handle.run_id)
            if all(c.status.value == "CANCELLED" for c in children):
                break
            await asyncio.sleep(0.05)
    assert [c.status.value for c in children] == ["CANCELLED", "CANCELLED"]


async def test_a_branch_finishing_while_an_answer_goes_down_is_still_joined(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Branch 0 finishes while the parent passes the human's answer down to branch 1: the join
    reads branch 0's result although it finished between two waits (the loop used to look only
    at followers not done yet, never read branch 0's, and failed the parent with asyncio's
    "Set of Tasks/Futures is empty")."""
    from tether.graph import relay as relay_module

    gate = asyncio.Event()

    async def slow(state: Branch) -> dict[str, Any]:
        if state.get("block"):
            await gate.wait()
            return {"y": state["x"] * 10}
        return {"y": int(interrupt({"approve": state["x"]}))}

    g = Graph(Branch, name="fj_race_branch")
    g.add_node("n", slow).add_edge(START, "n").add_edge("n", END)
    wf = fork_join(ForkJoinOptions(branch=g.compile()), name="fj_race")
    original = relay_module.Relay.pass_down
    async with Runtime(MemoryStore(), recover=False) as rt:
        res = await rt.run(wf, {"branches": [{"x": 1, "block": True}, {"x": 2}]})
        assert res.status.value == "ESCALATED"
        (asked,) = res.interrupts
        assert asked["payload"]["branch"] == 1
        slow_branch = f"{asked['payload']['run_id'][:-2]}.0"

        async def pass_down_while_branch_0_finishes(self: Any, *args: Any, **kw: Any) -> Any:
            if not gate.is_set():
                gate.set()
                assert (await rt.wait(slow_branch)).status.value == "COMPLETED"
                for _ in range(20):  # its follower settles within a few loop turns
                    await asyncio.sleep(0)
            return await original(self, *args, **kw)

        monkeypatch.setattr(relay_module.Relay, "pass_down", pass_down_while_branch_0_finishes)
        done = await rt.resume(res.run_id, "20")
    assert done.status.value == "COMPLETED", done.error
    assert [r["state"]["y"] for r in done.state["results"]] == [10, 20]
