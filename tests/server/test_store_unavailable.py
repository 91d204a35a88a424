"""The server while its store cannot serve: a full disk under SQLite, a PostgreSQL restart that
outlasts the store's in-place retries.

Before, every such request was a 500 "the server failed on this request (OperationalError); it
is logged", with no ``Retry-After``: the client took it for a server bug, so ``Client.wait()``
following a run through the server raised ``ServerError`` at the first PostgreSQL restart
longer than the store's ``retry_for``, and a submit (safe to send again: it carries an
idempotency key) was not tried again. Now it is a 503 problem of type ``store-unavailable``
naming the store's own error, with ``Retry-After``; nothing was written, and the same request
goes through once the store is back."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import threading
import time
import uuid
from pathlib import Path
from typing import Any, TypedDict

import httpx
import pytest
from fastapi.testclient import TestClient

from tests.durability.throwaway_pg import ThrowawayPostgres
from tests.server import apps
from tests.server.conftest import status_in, wait_for
from tests.server.uvicorn_thread import served
from tests.small_disk import fill
from tether import END, START, Graph
from tether.server.app import create_app
from tether.server.settings import ServerSettings

HANG_GUARD = 120.0  # seconds; only ever reached when something hangs


def unavailable(r: httpx.Response, cause: str) -> None:
    assert r.status_code == 503, r.text
    assert r.headers["content-type"] == "application/problem+json"
    assert int(r.headers["retry-after"]) >= 1
    body = r.json()
    assert body["type"].endswith("/store-unavailable") and body["status"] == 503, body
    assert cause in body["detail"], body


def test_a_full_disk_is_a_503_and_the_same_requests_go_through_once_there_is_room(
    small_disk: Path,
) -> None:
    db = small_disk / "runs.db"
    app = create_app(
        ServerSettings(store=f"sqlite:///{db}", workflows=apps.workflows, embedded_workers=4)
    )
    with TestClient(app, raise_server_exceptions=False) as client:
        r = client.post("/v1/runs", json={"workflow": "ask", "input": {"question": "ok?"}})
        asked = r.json()["run_id"]
        wait_for(client, asked, status_in("ESCALATED"))
        filler = fill(small_disk)
        submit = {"workflow": "echo", "input": {"text": "x" * 4000}, "idempotency_key": "k-1"}
        unavailable(client.post("/v1/runs", json=submit), "database or disk is full")
        answer = {"value": "y" * 4000}
        unavailable(client.post(f"/v1/runs/{asked}/resume", json=answer), "disk is full")
        filler.unlink()
        r = client.post("/v1/runs", json=submit)
        assert r.status_code == 202, r.text
        done = wait_for(client, r.json()["run_id"], status_in("COMPLETED"))
        assert done["status"] == "COMPLETED"
        assert client.post(f"/v1/runs/{asked}/resume", json=answer).status_code < 300
        assert wait_for(client, asked, status_in("COMPLETED"))["status"] == "COMPLETED"
        listed = client.get("/v1/runs").json()["items"]
        assert sorted(item["workflow"] for item in listed) == ["ask", "echo"]  # none doubled


# -- PostgreSQL restarted under a running server ---------------------------------------------------
class Held(TypedDict, total=False):
    n: int


GATE = threading.Event()
"""Released by the test once the server's database is back (the node runs in uvicorn's loop)."""


async def hold(state: Held) -> dict[str, Any]:
    await asyncio.to_thread(GATE.wait, HANG_GUARD)
    return {"n": 1}


_g = Graph(Held, name="held")
_g.add_node("hold", hold).add_edge(START, "hold").add_edge("hold", END)
held = _g.compile()


class Statuses:
    """ASGI middleware noting the status the server answered each request with, by path,
    except the test's own probes (``x-probe``)."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.seen: list[tuple[str, int]] = []

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or (b"x-probe", b"1") in scope["headers"]:
            await self.app(scope, receive, send)
            return

        async def spy(message: Any) -> None:
            if message["type"] == "http.response.start":
                self.seen.append((scope["path"], message["status"]))
            await send(message)

        await self.app(scope, receive, spy)


@pytest.mark.parametrize("follows", ["before", "during"])
async def test_a_client_waits_through_a_postgres_restart_longer_than_the_stores_retries(
    throwaway_pg: ThrowawayPostgres, follows: str, caplog: pytest.LogCaptureFixture
) -> None:
    """``before``: the client follows the run's event stream when the database goes away
    (the stream rides the outage out, heartbeats and all, and goes on once it is back);
    ``during``: it starts waiting while the database is away (503s, waited out)."""
    from tether.client import AsyncClient
    from tether.store.postgres import PostgresStore

    pg = throwaway_pg
    GATE.clear()
    store = PostgresStore(pg.dsn, schema=f"t_{uuid.uuid4().hex[:10]}", retry_for=0.2)
    settings = ServerSettings(store=store, workflows=[held], embedded_workers=2, lease_ttl=60)
    app = Statuses(create_app(settings))
    probe = {"x-probe": "1"}
    with served(app) as url:
        async with AsyncClient(url) as client, httpx.AsyncClient(base_url=url) as http:
            run = await client.submit("held", {})
            deadline = time.monotonic() + HANG_GUARD
            while (await client.get(run.run_id)).status != "EXECUTING":
                assert time.monotonic() < deadline
                await asyncio.sleep(0.02)
            stream = f"/v1/runs/{run.run_id}/events/stream"
            if follows == "before":
                waiting = asyncio.create_task(client.wait(run.run_id, outage=HANG_GUARD))
                while (stream, 200) not in app.seen:
                    assert time.monotonic() < deadline
                    await asyncio.sleep(0.02)
            caplog.set_level(logging.WARNING)
            await asyncio.to_thread(pg.stop)
            try:
                r = await http.get(f"/v1/runs/{run.run_id}", headers=probe)
                unavailable(r, "connection")
                if follows == "during":
                    waiting = asyncio.create_task(client.wait(run.run_id, outage=HANG_GUARD))
                    while (f"/v1/runs/{run.run_id}", 503) not in app.seen:  # met the outage
                        assert not waiting.done(), waiting.exception()
                        assert time.monotonic() < deadline
                        await asyncio.sleep(0.02)
                else:  # the stream's reads fail (the store gives up after 0.2 s)
                    await until_logged(caplog, "event stream", deadline)
                assert not waiting.done(), waiting.exception()
            finally:
                await asyncio.to_thread(pg.start)
            GATE.set()
            done = await asyncio.wait_for(waiting, HANG_GUARD)
    assert done.status == "COMPLETED"
    assert 500 not in {status for _, status in app.seen}, app.seen
    if follows == "before":  # one stream, never broken
        assert [p for p, _ in app.seen].count(stream) == 1, app.seen
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert not errors, errors


async def until_logged(caplog: pytest.LogCaptureFixture, text: str, deadline: float) -> None:
    while not any(text in r.getMessage() for r in caplog.records):
        assert time.monotonic() < deadline, f"never logged {text!r}"
        await asyncio.sleep(0.02)


# -- the streams themselves ---------------------------------------------------------------------
def full_disk() -> sqlite3.OperationalError:
    exc = sqlite3.OperationalError("database or disk is full")
    exc.sqlite_errorcode = 13  # SQLITE_FULL, as the driver sets it
    return exc


async def test_both_streams_stay_open_while_the_store_cannot_be_read(tmp_path: Path) -> None:
    """The run's event stream and the runs stream broke with the store's error (a traceback
    in the server's log, the client reconnecting into 503s); they now ping on through it and
    send what they missed, once, when the store answers again."""
    from tether import Runtime
    from tether.server import sse
    from tether.store.sqlite import SqliteStore

    async with Runtime(SqliteStore(tmp_path / "runs.db"), workflows=[apps.echo]) as rt:
        res = await rt.run(apps.echo, {"text": "hi"})
        store: Any = rt.store
        failing = {"get_run": 0, "list_runs": 0}

        def broken(name: str) -> Any:
            real = getattr(store, name)

            async def call(*a: Any, **kw: Any) -> Any:
                if failing[name]:
                    failing[name] -= 1
                    raise full_disk()
                return await real(*a, **kw)

            return call

        store.get_run, store.list_runs = broken("get_run"), broken("list_runs")
        failing.update(get_run=3, list_runs=3)
        events = sse.run_events(rt, res.run_id, 0, poll=0.01, heartbeat=0.0)
        frames = [f async for f in events]
        runs = sse.run_changes(rt, None, poll=0.01, heartbeat=0.0)
        changes = [await anext(runs) for _ in range(6)]
        await runs.aclose()
    assert failing == {"get_run": 0, "list_runs": 0}
    assert sse.PING in frames and frames[-1].startswith("event: end")
    ids = [line for f in frames for line in f.splitlines() if line.startswith("id: ")]
    assert ids == [f"id: {seq}" for seq in range(1, len(ids) + 1)]  # each event once
    assert sse.PING in changes and any(f.startswith("event: run") for f in changes)
