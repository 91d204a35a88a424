"""A resume takes the run's lease and lands its answer in one write (``LeaseCommit``).

The resume of a run that was unowned when read, and whose resume writes nothing before its
commit (an answer to its interrupts, a retry after failure, past a breakpoint or step limit),
prepares its commit from the run as read and sends it with the lease: one write transaction
instead of two (a fresh process also compiles one UPDATE of the runs table fewer). It lands
only while nobody leased or wrote the run since it was read; otherwise the resume reads the
run again and takes the lease the usual way (``test_resume_races``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypedDict

from tether import END, START, Graph, RunHandle, RunResult, RunStatus, Runtime, interrupt
from tether.store.protocol import RunStore


class S(TypedDict, total=False):
    answer: str
    done: bool


def ask(s: Any) -> dict[str, Any]:
    return {"answer": str(interrupt("ok?"))}


def build() -> Any:
    g = Graph(S, name="ask_then_done")
    g.add_node("ask", ask).add_node("done", lambda s: {"done": True})
    g.add_edge(START, "ask").add_edge("ask", "done").add_edge("done", END)
    return g.compile()


WF = build()


class Counting:
    """A real store that notes its lease and commit calls."""

    def __init__(self, inner: RunStore) -> None:
        self._inner: Any = inner
        self.calls: list[str] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    async def acquire_lease(self, *args: Any, **kwargs: Any) -> Any:
        self.calls.append("acquire_lease")
        return await self._inner.acquire_lease(*args, **kwargs)

    async def lease_and_commit(self, *args: Any, **kwargs: Any) -> Any:
        self.calls.append("lease_and_commit")
        return await self._inner.lease_and_commit(*args, **kwargs)

    async def commit(self, *args: Any, **kwargs: Any) -> Any:
        self.calls.append("commit")
        return await self._inner.commit(*args, **kwargs)


async def test_a_resume_leases_and_answers_in_one_write(
    shared_store: Callable[[], RunStore],
) -> None:
    counting = Counting(shared_store())
    async with (
        Runtime(shared_store(), workflows=[WF], recover=False) as rt,
        Runtime(counting, workflows=[WF], recover=False) as fresh,  # type: ignore[arg-type]
    ):
        parked = await rt.run(WF, {})
        assert parked.status is RunStatus.ESCALATED
        before = await rt.get_run(parked.run_id)
        done = await fresh.resume(parked.run_id, "yes")
        assert isinstance(done, RunResult) and done.status is RunStatus.COMPLETED
        assert done.state == {"answer": "yes", "done": True}
        # the lease and the answer, then one commit per step
        assert counting.calls == ["lease_and_commit", "commit", "commit"]
        run = await rt.get_run(parked.run_id)
        assert run.lease_token == before.lease_token + 1 and run.owner is None


async def test_a_resume_left_to_any_worker_is_one_write(
    shared_store: Callable[[], RunStore],
) -> None:
    counting = Counting(shared_store())
    async with (
        Runtime(shared_store(), workflows=[WF], recover=False) as rt,
        Runtime(counting, workflows=[WF], recover=False) as fresh,  # type: ignore[arg-type]
    ):
        parked = await rt.run(WF, {})
        before = await rt.get_run(parked.run_id)
        handle = await fresh.resume(parked.run_id, "yes", execute=False)
        assert isinstance(handle, RunHandle)
        assert counting.calls == ["lease_and_commit"]
        run = await rt.get_run(parked.run_id)
        assert run.status is RunStatus.EXECUTING and run.owner is None
        assert run.lease_token == before.lease_token + 1
        claimed = await rt.store.claim_runs(rt.owner, 30.0, workflows=[WF.name])
        assert [r.run_id for r in claimed] == [parked.run_id]
