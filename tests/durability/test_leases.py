"""Guarantee 4 (single writer) and 5 (recovery without identity), on SQLite and Postgres."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, TypedDict

import pytest

from tether import END, START, Graph, LeaseLostError, RunContext, RunStatus, Runtime
from tether.store.protocol import RunStore
from tether.store.types import Checkpoint, Commit


class S(TypedDict, total=False):
    n: int
    by: str


def _workflow(gate: asyncio.Event, ran: list[str]) -> Any:
    async def work(state: S, ctx: RunContext) -> dict[str, Any]:
        owner = ctx._host.worker_id
        ran.append(owner)
        if owner == "A":
            await gate.wait()
        return {"n": state.get("n", 0) + 1, "by": owner}

    g = Graph(S, name="race")
    g.add_node("work", work)
    g.add_edge(START, "work").add_edge("work", END)
    return g.compile()


async def test_two_runtimes_racing_exactly_one_wins_and_stale_writes_are_rejected(
    make_store: Callable[[], RunStore],
) -> None:
    gate = asyncio.Event()
    ran: list[str] = []
    wf = _workflow(gate, ran)
    a = await Runtime(make_store(), owner="A", lease_ttl=0.4, recover=False).open()
    b = await Runtime(make_store(), owner="B", lease_ttl=0.4, recover=False, workflows=[wf]).open()
    try:
        a._background[0].cancel()  # A stalls: its heartbeat stops (a long GC pause, a partition)
        handle = await a.start(wf, {"n": 0})
        while not ran:
            await asyncio.sleep(0.01)
        assert await b.recover_once() == []  # A's lease is still valid: B must not take it
        await asyncio.sleep(0.5)  # ... until it expires
        assert await b.recover_once() == [handle.run_id]
        res_b = await b.wait(handle.run_id, timeout=10)
        assert res_b.status is RunStatus.COMPLETED
        assert res_b.state == {"n": 1, "by": "B"}

        gate.set()  # A wakes up and tries to commit its step: fenced off
        res_a = await a.wait(handle.run_id, timeout=10)
        assert res_a.state == {"n": 1, "by": "B"}, "the stale owner's write must not land"
        assert ran == ["A", "B"]

        run = await b.get_run(handle.run_id)
        with pytest.raises(LeaseLostError, match=r"lease .* lost"):
            await a.store.commit(
                handle.run_id,
                1,
                Commit(checkpoint=Checkpoint(handle.run_id, 2, [["x", "work", {"n": 99}]], [])),
            )
        after = await b.get_run(handle.run_id)
        assert (after.step, after.status, after.event_seq) == (run.step, run.status, run.event_seq)
        completions = [
            t for t in await b.store.list_transitions(handle.run_id) if t.dst is RunStatus.COMPLETED
        ]
        assert len(completions) == 1 and completions[0].actor == f"worker:{b.owner}"
    finally:
        gate.set()
        await a.close()
        await b.close()


async def test_concurrent_claims_never_share_a_run(make_store: Callable[[], RunStore]) -> None:
    gate = asyncio.Event()
    wf = _workflow(gate, [])
    submitter = await Runtime(make_store(), recover=False).open()
    ids = [(await submitter.submit(wf, {"n": i})).run_id for i in range(12)]
    stores = [make_store() for _ in range(3)]
    for s in stores:
        await s.setup()
    claims = await asyncio.gather(
        *(s.claim_runs(f"w{i}", 30, limit=12) for i, s in enumerate(stores))
    )
    owners: dict[str, int] = {}
    for claimed in claims:
        for lease in claimed:
            owners[lease.run_id] = owners.get(lease.run_id, 0) + 1
    assert sorted(owners) == sorted(ids)
    assert set(owners.values()) == {1}
    for s in stores:
        await s.close()
    await submitter.close()


async def test_dead_owner_is_recovered_automatically(make_store: Callable[[], RunStore]) -> None:
    gate = asyncio.Event()
    ran: list[str] = []
    wf = _workflow(gate, ran)
    a = await Runtime(make_store(), owner="A", lease_ttl=0.3, recover=False).open()
    handle = await a.start(wf, {"n": 5})
    while not ran:
        await asyncio.sleep(0.01)
    for t in [*a._background, *a._tasks.values()]:  # A dies without releasing anything
        t.cancel()
    b = await Runtime(
        make_store(), owner="B", lease_ttl=0.3, poll_interval=0.05, workflows=[wf]
    ).open()
    try:
        res = await b.wait(handle.run_id, timeout=10)
        assert res.status is RunStatus.COMPLETED and res.state == {"n": 6, "by": "B"}
    finally:
        await b.close()
