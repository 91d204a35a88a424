"""PostgreSQL writes runs created concurrently in one process together (``create_run`` through
``pg_submit_batch.SubmitBatcher``), not only those of the server's intake: a burst of
``Runtime.submit`` calls is a few statements, a lone one the one-run statement, and each run is
stored as a submit alone would store it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import TypedDict

import pytest

from tether import END, START, Graph, Runtime
from tether.core.lifecycle import RunStatus
from tether.store.postgres import PostgresStore

pytestmark = pytest.mark.postgres


class S(TypedDict):
    n: int


def _echo() -> object:
    g = Graph(S, name="batched_echo")
    g.add_node("a", lambda s: {"n": s["n"] + 1})
    g.add_edge(START, "a").add_edge("a", END)
    return g.compile()


WF = _echo()


@pytest.fixture
async def rt(pg_dsn: str, pg_schema: str) -> AsyncIterator[Runtime]:
    async with Runtime(f"{pg_dsn}?schema={pg_schema}", workflows=[WF], recover=False) as rt:
        yield rt


async def test_a_burst_of_submits_is_written_in_batches(rt: Runtime) -> None:
    store = rt.store
    assert isinstance(store, PostgresStore)
    handles = await asyncio.gather(*(rt.submit(WF, {"n": i}) for i in range(20)))
    assert store.submits.batches >= 1 and store.submits.batched >= 2
    assert store.submits.batches < 20  # not one statement a run
    runs = {r.run_id: r for r in await store.list_runs(limit=100)}
    assert set(runs) == {h.run_id for h in handles}
    for i, h in enumerate(handles):
        run = runs[h.run_id]
        assert run.input == {"n": i} and run.status is RunStatus.PLANNED and run.owner is None


async def test_a_lone_submit_takes_the_one_run_statement(rt: Runtime) -> None:
    store = rt.store
    assert isinstance(store, PostgresStore)
    before = (store.submits.batches, store.submits.batched)
    handle = await rt.submit(WF, {"n": 1})
    assert (store.submits.batches, store.submits.batched) == before
    assert (await store.get_run(handle.run_id)).input == {"n": 1}


async def test_keys_in_one_burst_give_one_run(rt: Runtime) -> None:
    store = rt.store
    assert isinstance(store, PostgresStore)
    handles = await asyncio.gather(
        *(rt.submit(WF, {"n": 7}, idempotency_key="order-1234") for _ in range(5))
    )
    assert len({h.run_id for h in handles}) == 1
    assert sum(h.created for h in handles) == 1
    assert len(await store.list_runs(limit=100)) == 1
