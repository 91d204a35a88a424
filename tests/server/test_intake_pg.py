"""The server's run intake on PostgreSQL: concurrent submits written in batches
(``pg_submit_batch.SubmitBatcher``) store what one submit at a time stores, honour
idempotency keys inside a batch, give each error to the submit that caused it, and the HTTP
answer of a submit is the run as stored."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from typing import Any

import httpx
import pytest

from tests.graph.conftest import PG_DSN, pg_schema
from tests.server.apps import workflows
from tests.server.live import ServerThread
from tether import Runtime
from tether.core.errors import IdempotencyConflictError
from tether.server import intake
from tether.server.app import create_app
from tether.server.settings import ServerSettings
from tether.store.types import RunRecord

ECHO = next(wf for wf in workflows if wf.name == "echo")

pytestmark = pytest.mark.postgres


@pytest.fixture
def pg_url() -> Iterator[str]:
    with pg_schema("tether_intake") as schema:  # skips without a reachable PostgreSQL
        yield f"{PG_DSN}?schema={schema}"


@pytest.fixture
async def rt(pg_url: str) -> AsyncIterator[Runtime]:
    runtime = Runtime(pg_url, workflows=workflows, recover=False)
    async with runtime:
        runtime.batcher = intake.install(runtime.store)  # type: ignore[attr-defined]
        yield runtime


async def _stored(rt: Runtime, run_id: str) -> dict[str, Any]:
    """What the store holds of a run, without what differs between two runs (ids, times)."""
    store = rt.store
    run = await store.get_run(run_id)
    cp = await store.latest_checkpoint(run_id)
    return {
        "run": (run.workflow, run.status, run.step, run.event_seq, run.input, run.queue,
                run.owner, run.idempotency_key is not None, run.created_at == run.updated_at),
        "transitions": [(t.seq, t.src, t.dst, t.actor, t.reason)
                        for t in await store.list_transitions(run_id)],
        "events": [(e.seq, e.type, e.step, e.node, sorted(e.data))
                   for e in await store.list_events(run_id)],
        "checkpoint": (cp.step, cp.delta, cp.next_tasks, cp.snapshot, cp.barriers),
    }  # fmt: skip


async def test_a_batch_stores_what_one_submit_stores(rt: Runtime) -> None:
    alone = await rt.submit(ECHO, {"text": "same"}, idempotency_key="alone")
    with intake.created_runs() as made:
        handles = await asyncio.gather(
            *(rt.submit(ECHO, {"text": "same"}, idempotency_key=f"k{i}") for i in range(40))
        )
    assert all(h.created for h in handles)
    batcher = rt.batcher  # type: ignore[attr-defined]
    assert batcher.batches >= 1 and batcher.batched >= 2  # written together, not one by one
    made_by_id = {r.run_id: r for r in made}
    assert sorted(made_by_id) == sorted(h.run_id for h in handles)
    want = await _stored(rt, alone.run_id)
    assert want["events"] and want["transitions"]
    for h in handles:
        assert await _stored(rt, h.run_id) == want
        # what the request is answered with: the run as stored
        assert made_by_id[h.run_id] == await rt.store.get_run(h.run_id)
    assert len(await rt.store.list_runs(limit=100)) == 41


async def test_one_key_twice_in_a_batch_is_one_run(rt: Runtime) -> None:
    handles = await asyncio.gather(
        *(rt.submit(ECHO, {"text": "once"}, idempotency_key="twice") for _ in range(8))
    )
    assert len({h.run_id for h in handles}) == 1
    assert sum(h.created for h in handles) == 1
    assert len(await rt.store.list_runs()) == 1


async def test_each_error_goes_to_the_submit_that_caused_it(rt: Runtime) -> None:
    first = await rt.submit(ECHO, {"text": "a"}, idempotency_key="taken")
    results = await asyncio.gather(
        rt.submit(ECHO, {"text": "b"}, idempotency_key="taken"),  # another input: refused
        *(rt.submit(ECHO, {"text": f"ok {i}"}) for i in range(6)),
        return_exceptions=True,
    )
    assert isinstance(results[0], IdempotencyConflictError)
    assert all(not isinstance(r, BaseException) and r.created for r in results[1:])
    assert first.created and len(await rt.store.list_runs()) == 7


async def test_a_run_the_database_refuses_fails_alone(rt: Runtime) -> None:
    good = await rt.store.get_run((await rt.submit(ECHO, {"text": "x"})).run_id)
    cp = await rt.store.latest_checkpoint(good.run_id)

    def fresh(run_id: str, **kw: Any) -> RunRecord:
        return replace(good, run_id=run_id, idempotency_key=None, input_hash=None, **kw)

    bad = fresh("bad-run", workflow="nul\x00byte")  # text PostgreSQL cannot store
    before = rt.batcher.refused  # type: ignore[attr-defined]
    results = await asyncio.gather(
        *(
            rt.store.create_run(fresh(f"ok-{i}"), replace(cp, run_id=f"ok-{i}"), [])
            for i in range(5)
        ),
        rt.store.create_run(bad, replace(cp, run_id="bad-run"), []),
        return_exceptions=True,
    )
    assert rt.batcher.refused == before + 1  # type: ignore[attr-defined]  # then run by run
    assert all(not isinstance(r, BaseException) and r[1] for r in results[:5])
    assert isinstance(results[5], Exception) and "NUL" in str(results[5])
    assert {r.run_id for r in await rt.store.list_runs()} == {good.run_id} | {
        f"ok-{i}" for i in range(5)
    }


def test_the_answer_to_a_submit_is_the_run_as_stored(pg_url: str) -> None:
    settings = ServerSettings(store=pg_url, workflows=workflows, embedded_workers=2)
    with ServerThread(create_app(settings)) as port:
        base = f"http://127.0.0.1:{port}"

        async def burst() -> list[httpx.Response]:
            async with httpx.AsyncClient(base_url=base, timeout=60) as c:
                return await asyncio.gather(
                    *(
                        c.post(
                            "/v1/runs",
                            json={
                                "workflow": "echo",
                                "input": {"text": f"t{i % 20}"},
                                "idempotency_key": f"key-{i % 20}",
                            },
                        )
                        for i in range(40)
                    )
                )

        answers = asyncio.run(burst())
        assert all(r.status_code == 202 for r in answers), [r.text for r in answers]
        assert len({r.json()["run_id"] for r in answers}) == 20
        replayed = [r for r in answers if r.headers.get("Idempotent-Replayed") == "true"]
        assert len(replayed) == 20
        with httpx.Client(base_url=base, timeout=60) as c:
            for r in answers:
                body = r.json()
                got = c.get(f"/v1/runs/{body['run_id']}").json()
                for field in ("run_id", "workflow", "input", "metadata", "created_at", "queue"):
                    assert body[field] == got[field], field
