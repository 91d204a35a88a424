"""A stale resume never answers the wrong interrupt.

Two Runtimes (two processes) share one SQLite file or PostgreSQL schema. Runtime B reads the
run while it waits on q1 and is held (an event, not a sleep) before it takes the lease; runtime A
answers q1 meanwhile, so the run now waits on q2. B's answer, addressed to q1, must be refused,
not become q2's answer.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Annotated, Any, TypedDict

import pytest

from tether import (
    END,
    START,
    Graph,
    InvalidInputError,
    RunResult,
    RunStateError,
    RunStatus,
    Runtime,
    append,
    interrupt,
)
from tether.store.protocol import RunStore


class S(TypedDict, total=False):
    log: Annotated[list[str], append]


def ask(s: Any) -> dict[str, Any]:
    first = interrupt("q1")
    second = interrupt("q2")
    return {"log": [first, second]}


def build() -> Any:
    g = Graph(S, name="two_questions")
    g.add_node("ask", ask).add_edge(START, "ask").add_edge("ask", END)
    return g.compile()


WF = build()


class HeldStore:
    """A real store whose next ``acquire_lease`` waits until the test lets it go: the resumer
    has read the run and not yet taken the lease."""

    def __init__(self, inner: RunStore) -> None:
        self._inner = inner
        self.reached = asyncio.Event()
        self.go = asyncio.Event()
        self.armed = False

    def __getattr__(self, name: str) -> Any:
        if name == "lease_and_commit":  # without LeaseCommit: the lease, then the commit
            raise AttributeError(name)
        return getattr(self._inner, name)

    async def _hold(self) -> None:
        if self.armed:
            self.armed = False
            self.reached.set()
            await self.go.wait()

    async def acquire_lease(self, *args: Any, **kwargs: Any) -> Any:
        await self._hold()
        return await self._inner.acquire_lease(*args, **kwargs)


class HeldFoldingStore(HeldStore):
    """A ``HeldStore`` whose resumes take the lease and commit in one write (``LeaseCommit``):
    held there, the resumer has read the run and prepared its commit from what it read."""

    async def lease_and_commit(self, *args: Any, **kwargs: Any) -> Any:
        await self._hold()
        inner: Any = self._inner
        return await inner.lease_and_commit(*args, **kwargs)


HOLDERS = pytest.mark.parametrize("holder", [HeldStore, HeldFoldingStore])


async def _race(
    shared_store: Callable[[], RunStore],
    stale_resume: Callable[[Runtime, str, str], Any],
    holder: type[HeldStore] = HeldStore,
) -> None:
    held = holder(shared_store())
    async with (
        Runtime(shared_store(), workflows=[WF], recover=False) as rt_a,
        Runtime(held, workflows=[WF], recover=False) as rt_b,  # type: ignore[arg-type]
    ):
        res = await rt_a.run(WF, {})
        assert res.status is RunStatus.ESCALATED
        q1 = res.interrupts[0]["id"]
        assert res.interrupts[0]["payload"] == "q1"

        held.armed = True
        late = asyncio.create_task(stale_resume(rt_b, res.run_id, q1))
        await asyncio.wait_for(held.reached.wait(), 60)  # B read the run (q1 pending)

        moved = await rt_a.resume(res.run_id, answers={q1: "from A"})
        assert isinstance(moved, RunResult)
        assert moved.status is RunStatus.ESCALATED
        q2 = moved.interrupts[0]["id"]
        assert q2 != q1 and moved.interrupts[0]["payload"] == "q2"

        held.go.set()
        with pytest.raises(RunStateError, match=r"no longer pending.*waits for \[") as info:
            await asyncio.wait_for(late, 60)
        assert q1 in str(info.value) and q2 in str(info.value)

        # nothing of B's answer landed: the run still waits on q2, and answering it works
        run = await rt_a.get_run(res.run_id)
        assert run.status is RunStatus.ESCALATED and run.owner is None
        assert [i["id"] for i in (run.escalation or {})["interrupts"]] == [q2]
        done = await rt_a.resume(res.run_id, answers={q2: "A again"})
        assert isinstance(done, RunResult)
        assert done.status is RunStatus.COMPLETED
        assert done.state["log"] == ["from A", "A again"]


@HOLDERS
async def test_a_stale_answer_by_id_is_refused(
    shared_store: Callable[[], RunStore], holder: type[HeldStore]
) -> None:
    async def stale(rt: Runtime, run_id: str, q1: str) -> Any:
        return await rt.resume(run_id, answers={q1: "from B"})

    await _race(shared_store, stale, holder)


@HOLDERS
async def test_a_stale_value_addressed_with_interrupt_id_is_refused(
    shared_store: Callable[[], RunStore], holder: type[HeldStore]
) -> None:
    async def stale(rt: Runtime, run_id: str, q1: str) -> Any:
        return await rt.resume(run_id, "from B", interrupt_id=q1)

    await _race(shared_store, stale, holder)


async def test_answers_for_a_run_that_no_longer_waits_on_an_interrupt_are_refused(
    shared_store: Callable[[], RunStore],
) -> None:
    """The run moved on to a step-limit escalation: an interrupt answer must not be taken as
    an approval to grant more steps."""

    class C(TypedDict, total=False):
        log: Annotated[list[str], append]

    def once(s: Any) -> dict[str, Any]:
        return {"log": [interrupt("go?")]}

    g = Graph(C, name="ask_then_loop")
    g.add_node("ask", once).add_node("loop", lambda s: {"log": "x"})
    g.add_edge(START, "ask").add_edge("ask", "loop").add_edge("loop", "loop")
    wf = g.compile()
    async with (
        Runtime(shared_store(), workflows=[wf], recover=False) as rt_a,
        Runtime(shared_store(), workflows=[wf], recover=False) as rt_b,
    ):
        res = await rt_a.run(wf, {}, max_steps=3)
        q1 = res.interrupts[0]["id"]
        limited = await rt_a.resume(res.run_id, answers={q1: "yes"})
        assert isinstance(limited, RunResult)
        assert limited.status is RunStatus.ESCALATED
        assert (limited.escalation or {})["kind"] == "step_limit"
        with pytest.raises(RunStateError, match="no longer waits for interrupt"):
            await rt_b.resume(res.run_id, answers={q1: "late"})
        run = await rt_b.get_run(res.run_id)
        assert run.status is RunStatus.ESCALATED and run.metadata["step_limit"] == 3


async def test_interrupt_id_needs_a_value_and_no_answers(rt: Runtime) -> None:
    res = await rt.run(WF, {})
    q1 = res.interrupts[0]["id"]
    with pytest.raises(InvalidInputError, match="interrupt_id names the interrupt"):
        await rt.resume(res.run_id, interrupt_id=q1)
    with pytest.raises(InvalidInputError, match="interrupt_id names the interrupt"):
        await rt.resume(res.run_id, "x", interrupt_id=q1, answers={q1: "y"})
    # a made-up id is a caller's mistake, not a stale answer
    with pytest.raises(InvalidInputError, match=r"unknown: \['nope'\]"):
        await rt.resume(res.run_id, "x", interrupt_id="nope")
    out = await rt.resume(res.run_id, "a1", interrupt_id=q1)
    assert isinstance(out, RunResult) and out.interrupts[0]["payload"] == "q2"


class HeldCommitStore(HeldStore):
    """A real store whose next fenced ``commit`` (the resume's, under its lease) waits until
    the test lets it go: the resumer holds the lease and has not yet written."""

    async def acquire_lease(self, *args: Any, **kwargs: Any) -> Any:
        return await self._inner.acquire_lease(*args, **kwargs)

    async def commit(self, run_id: str, token: int | None, commit: Any) -> Any:
        if self.armed and token is not None:
            self.armed = False
            self.reached.set()
            await self.go.wait()
        return await self._inner.commit(run_id, token, commit)


async def test_a_resume_that_a_cancel_overtakes_says_the_run_was_cancelled(
    shared_store: Callable[[], RunStore],
) -> None:
    """A cancel lands between a resume's lease and its write: the resume says what became of
    the run (RunStateError, HTTP 409 run-state), not that it lost a fencing token."""
    held = HeldCommitStore(shared_store())
    async with (
        Runtime(shared_store(), workflows=[WF], recover=False) as rt_a,
        Runtime(held, workflows=[WF], recover=False) as rt_b,  # type: ignore[arg-type]
    ):
        res = await rt_a.run(WF, {})
        q1 = res.interrupts[0]["id"]
        held.armed = True
        late = asyncio.create_task(rt_b.resume(res.run_id, answers={q1: "from B"}))
        await asyncio.wait_for(held.reached.wait(), 60)  # B holds the lease, has not written
        await rt_a.cancel(res.run_id, reason="changed my mind")
        held.go.set()
        with pytest.raises(RunStateError, match="became CANCELLED while this resume"):
            await asyncio.wait_for(late, 60)
        run = await rt_a.get_run(res.run_id)
        assert run.status is RunStatus.CANCELLED and run.owner is None
