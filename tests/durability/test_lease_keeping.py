"""Live runtimes keep their leases, on SQLite files and on PostgreSQL.

* A node that blocks the event loop for many lease TTLs does not let its lease expire: the
  heartbeat renews from a thread of its own. Time is a FakeClock shared by the runtime and a
  controller thread: the controller moves it forward past the TTL only after it has seen the
  previous renewal land, so nothing races the wall clock.
* A lease taken from a live runtime behind its back is noticed by that heartbeat thread: the
  run stops there, a WARNING says who took it, and ``wait()`` raises LeaseLostError.
* Several worker processes under load, one of which blocks its event loop for longer than the
  lease TTL, take no run from one another and escalate nothing (``lease_load_app``).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sqlite3
import subprocess
import sys
import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypedDict

import pytest

from tether import END, START, Graph, LeaseLostError, RunContext, RunStatus, Runtime
from tether.store.protocol import RunStore
from tether.store.sqlite import SqliteStore
from tether.store.types import Lease
from tether.testing import FakeClock

from .conftest import PG_DSN, _pg_available

ROOT = Path(__file__).resolve().parents[2]
PYTHONPATH = os.environ.get("PYTHONPATH")
TTL = 0.6  # FakeClock seconds; the heartbeat thread renews every TTL / 3 real seconds


class S(TypedDict, total=False):
    n: int


class Backend:
    """Opens stores on one database (with a given clock) and runs raw SQL against it."""

    def __init__(self, kind: str, tmp_path: Path) -> None:
        self.kind = kind
        self.path = tmp_path / "runs.db"
        self.schema = f"t_{uuid.uuid4().hex[:10]}"

    @property
    def url(self) -> str:
        if self.kind == "sqlite":
            return f"sqlite:///{self.path}"
        return f"{PG_DSN}?schema={self.schema}"

    def open(self, clock: FakeClock) -> RunStore:
        if self.kind == "sqlite":
            return SqliteStore(self.path, clock=clock)
        from tether.store.postgres import PostgresStore

        return PostgresStore(PG_DSN, schema=self.schema, clock=clock)

    def steal(self, run_id: str, owner: str) -> None:
        """Take the run's lease the way a claim would, whatever its expiry."""
        sql = "UPDATE {}runs SET owner = '{}', lease_token = lease_token + 1 WHERE run_id = '{}'"
        if self.kind == "sqlite":
            with sqlite3.connect(self.path, isolation_level=None, timeout=30) as db:
                db.execute(sql.format("tether_", owner, run_id))
            return
        import psycopg

        with psycopg.connect(PG_DSN, autocommit=True) as conn:
            conn.execute(sql.format(f'"{self.schema}".tether_', owner, run_id).encode())

    def drop(self) -> None:
        if self.kind == "postgres":
            import psycopg

            with psycopg.connect(PG_DSN, autocommit=True) as conn:
                conn.execute(f'DROP SCHEMA IF EXISTS "{self.schema}" CASCADE'.encode())


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    if request.param == "postgres" and not _pg_available():
        pytest.skip(f"PostgreSQL not reachable at {PG_DSN}")
    b = Backend(request.param, tmp_path)
    yield b
    b.drop()


class Controller(threading.Thread):
    """While the runtime's event loop is blocked: move time past the TTL, round after round,
    each time after the previous renewal landed, then try to claim the run as another worker."""

    def __init__(self, open_store: Callable[[], RunStore], clock: FakeClock, run_id: str) -> None:
        super().__init__(daemon=True)
        self.open_store, self.clock, self.run_id = open_store, clock, run_id
        self.entered, self.release = threading.Event(), threading.Event()
        self.error: BaseException | None = None
        self.claimed: list[Lease] | None = None
        self.renewals = 0
        self.moved = 0.0

    def run(self) -> None:
        try:
            asyncio.run(self._control())
        except BaseException as exc:
            self.error = exc
        finally:
            self.release.set()

    async def _control(self) -> None:
        assert self.entered.wait(120), "the blocking node never started"
        store = self.open_store()
        await store.setup()
        try:
            start = self.clock.now()
            for _ in range(5):
                self.clock.advance(TTL * 0.9)
                target = self.clock.now() + TTL
                async with asyncio.timeout(60):  # a hang guard: without a renewal, it fails
                    while (await store.get_run(self.run_id)).lease_expires_at < target:
                        await asyncio.sleep(0.01)
                self.renewals += 1
            self.moved = self.clock.now() - start
            self.claimed = await store.claim_runs("B", TTL, limit=10)
        finally:
            await store.close()


async def test_a_node_blocking_the_loop_past_the_ttl_keeps_its_lease(backend: Backend) -> None:
    clock = FakeClock()
    ctl = Controller(lambda: backend.open(clock), clock, "blocked")

    def block(state: S) -> dict[str, Any]:  # a sync node: it runs on (and blocks) the loop
        ctl.entered.set()
        assert ctl.release.wait(300)
        return {"n": state.get("n", 0) + 1}

    g = Graph(S, name="blocking")
    g.add_node("block", block)
    g.add_edge(START, "block").add_edge("block", END)
    wf = g.compile()
    ctl.start()
    async with Runtime(
        backend.open(clock), owner="A", lease_ttl=TTL, recover=False, clock=clock, workflows=[wf]
    ) as rt:
        res = await rt.run(wf, {"n": 0}, run_id="blocked")
    ctl.join(60)
    assert ctl.error is None, f"the lease was not renewed while the loop was blocked: {ctl.error!r}"
    assert ctl.renewals == 5 and ctl.moved > 4 * TTL  # the first lease is long expired ...
    assert ctl.claimed == []  # ... but renewed all along, so another worker cannot take it
    assert (res.status, res.state, res.record.lease_token) == (RunStatus.COMPLETED, {"n": 1}, 1)


async def test_a_stolen_lease_is_noticed_logged_and_raised(
    backend: Backend, caplog: pytest.LogCaptureFixture
) -> None:
    entered, release = asyncio.Event(), asyncio.Event()

    async def work(state: S, ctx: RunContext) -> dict[str, Any]:
        entered.set()
        await release.wait()
        return {"n": 1}

    g = Graph(S, name="stolen")
    g.add_node("work", work)
    g.add_edge(START, "work").add_edge("work", END)
    wf = g.compile()
    clock = FakeClock()
    with caplog.at_level(logging.WARNING, logger="tether.runtime"):
        async with Runtime(
            backend.open(clock), owner="A", lease_ttl=TTL, recover=False, clock=clock
        ) as rt:
            handle = await rt.start(wf, {"n": 0}, run_id="stolen")
            await asyncio.wait_for(entered.wait(), 60)
            backend.steal("stolen", "B")
            with pytest.raises(LeaseLostError) as info:
                await rt.wait(handle.run_id, timeout=120)  # a hang guard, not a bound
            release.set()
    err = info.value
    assert (err.run_id, err.token, err.holder, err.holder_token) == ("stolen", 1, "B", 2)
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == [
        "run stolen: lease lost to B (token 2; ours was 1); stopped executing it here"
    ]


def test_live_worker_processes_take_no_run_from_each_other(backend: Backend) -> None:
    """3 worker processes, 60 runs of 10 steps (a 10-50 ms non-idempotent effect each), lease
    TTL 2 s, 8 slots each; worker w0 blocks its event loop for 3 s once, mid-run."""
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "tests.durability.lease_load_app",
            "measure",
            backend.url,
            "--workers=3",
            "--runs=60",
            "--ttl=2",
            "--slots=8",
            "--block=3",
            "--block-owners=w0",
        ],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), PYTHONPATH]))},
        capture_output=True,
        text=True,
        timeout=280,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert got["exit_codes"] == [0, 0, 0], out.stderr[-3000:]
    assert (got["takeovers"], got["escalated"], got["completed"]) == (0, 0, 60), got
    assert "BLOCKED w0" in out.stdout.splitlines()  # the scenario happened: w0 stalled
