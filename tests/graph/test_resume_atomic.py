"""A resume's answer and the run's move back to work are one commit.

The answer to an interrupt used to be journaled by a write of its own before the commit that
takes the run back to work: a resume that died between the two left the run waiting with the
answer already journaled, and the next resume appended a second answer behind the stale one,
which the node then received. Now the answer travels in the commit (``Commit.node_writes``):
it lands with the run's move, or not at all.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, TypedDict

import pytest

from tether import END, START, Graph, RunResult, RunStatus, Runtime, append, interrupt
from tether.core.errors import StoreError
from tether.store.protocol import RunStore
from tether.store.types import Commit, RunRecord


class S(TypedDict, total=False):
    log: Annotated[list[str], append]


def ask(s: Any) -> dict[str, Any]:
    return {"log": [interrupt("ok?")]}


def build() -> Any:
    g = Graph(S, name="ask_once")
    g.add_node("ask", ask).add_edge(START, "ask").add_edge("ask", END)
    return g.compile()


WF = build()


class DyingCommitStore:
    """A real store whose next ``commit`` is lost (the resumer dies before it lands)."""

    def __init__(self, inner: RunStore) -> None:
        self._inner = inner
        self.armed = False

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    async def commit(self, run_id: str, token: int | None, commit: Commit) -> RunRecord:
        if self.armed:
            self.armed = False
            raise StoreError("the resumer died before its commit landed")
        return await self._inner.commit(run_id, token, commit)

    async def lease_and_commit(
        self, run_id: str, owner: str, ttl: float, token: int, commit: Commit
    ) -> RunRecord | None:
        """A resume's lease and commit in one write (``LeaseCommit``): lost the same way."""
        if self.armed:
            self.armed = False
            raise StoreError("the resumer died before its commit landed")
        inner: Any = self._inner
        return await inner.lease_and_commit(run_id, owner, ttl, token, commit)  # type: ignore[no-any-return]


async def test_a_resume_that_dies_before_its_commit_leaves_no_answer_behind(
    shared_store: Callable[[], RunStore],
) -> None:
    dying = DyingCommitStore(shared_store())
    async with (
        Runtime(shared_store(), workflows=[WF], recover=False) as rt,
        Runtime(dying, workflows=[WF], recover=False) as rt_dies,  # type: ignore[arg-type]
    ):
        res = await rt.run(WF, {})
        assert res.status is RunStatus.ESCALATED
        step = int((res.escalation or {})["step"])
        dying.armed = True
        with pytest.raises(StoreError, match="died before its commit"):
            await rt_dies.resume(res.run_id, "stale answer")
        (journaled,) = await rt.store.get_node_writes(res.run_id, step)
        assert journaled.status == "interrupted" and journaled.resume == []
        run = await rt.get_run(res.run_id)
        assert run.status is RunStatus.ESCALATED and run.owner is None

        done = await rt.resume(res.run_id, "the answer")
        assert isinstance(done, RunResult)
        assert done.status is RunStatus.COMPLETED
        assert done.state["log"] == ["the answer"]
