"""A tenant quota's deferred settles (``Quota`` on ``tether.governance.budget_pending``): a call's
settle waits for the next reservation of its window (one ledger write per call), the window
never shows less than was spent or held meanwhile, whatever ends a run's execution writes what
is still pending (a window that rolled over included), two runtimes on one database never
overspend a quota together, and a process killed with a settle pending leaves the window
overstated, never understated."""

from __future__ import annotations

import asyncio
import os
import secrets
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.governance import quota_app as app
from tests.governance.quota_app import GREEDY_OUT, IN, TOK
from tether import RunStatus, Runtime
from tether.core.governor import CallOutcome, GovernedCall
from tether.governance import GovernancePart, Quota, RunScope
from tether.store.budget import BudgetStore, Ledger
from tether.store.memory import MemoryStore
from tether.store.sqlite import SqliteStore
from tether.testing import FakeClock

ROOT = Path(__file__).resolve().parents[2]
PG_DSN = os.environ.get("TETHER_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")


def _pg_reachable() -> None:
    psycopg = pytest.importorskip("psycopg")
    try:
        psycopg.connect(PG_DSN, connect_timeout=3).close()
    except psycopg.OperationalError as exc:
        pytest.skip(f"PostgreSQL unreachable at {PG_DSN}: {exc}")


def _drop(schema: str) -> None:
    import psycopg

    with psycopg.connect(PG_DSN, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(start=86400.0 * 1000)  # on a day boundary


@pytest.fixture(params=["memory", "sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store(request: pytest.FixtureRequest, tmp_path: Path, clock: FakeClock) -> Iterator[Any]:
    if request.param == "memory":
        yield MemoryStore(clock)
    elif request.param == "sqlite":
        yield SqliteStore(tmp_path / "q.db", clock=clock)
    else:
        _pg_reachable()
        from tether.store.postgres import PostgresStore

        schema = f"quota_pending_{secrets.token_hex(4)}"
        yield PostgresStore(PG_DSN, schema=schema, clock=clock)
        _drop(schema)


async def windows(store: Any, tenant: str = "acme") -> list[Ledger]:
    assert isinstance(store, BudgetStore)
    return await store.list_ledgers(f"quota:{tenant}:")


class Watch(GovernancePart):
    """Asked after the quota: the tenant's window as each call's reservation left it, and
    (with ``limit``) that it never holds more than the limit."""

    def __init__(self, limit: float | None = None) -> None:
        self.seen: list[tuple[float, float]] = []
        self.limit = limit

    async def before_call(self, scope: RunScope, call: GovernedCall) -> None:
        rows = await windows(scope.store)
        row = rows[-1]
        self.seen.append((row.used["tokens"], row.reserved["tokens"]))
        if self.limit is not None:
            assert row.spent("tokens") <= self.limit


class Settled(GovernancePart):
    """Asked before the quota, so told after it: the window as each call's settle left it."""

    def __init__(self) -> None:
        self.seen: list[tuple[float, float]] = []

    async def after_call(self, scope: RunScope, call: GovernedCall, outcome: CallOutcome) -> None:
        row = (await windows(scope.store))[-1]
        self.seen.append((row.used["tokens"], row.reserved["tokens"]))


def hold_of(watch: Watch) -> float:
    """What one call holds (its prompt's estimate and ``max_tokens``): the first call's hold."""
    used, held = watch.seen[0]
    assert used == 0 and held > TOK
    return held


async def test_a_settle_rides_on_the_next_reservation(store: Any, clock: FakeClock) -> None:
    watch, settled = Watch(), Settled()
    wf = app.build(settled, Quota(tokens=app.LIMIT), watch)
    async with Runtime(store, clock=clock) as rt:
        res = await rt.run(wf, {"calls": 4}, tenant="acme")
        (row,) = await windows(store)
    assert res.status is RunStatus.COMPLETED, res
    held = hold_of(watch)
    # after each call its hold stays (its settle waits), never less than was spent
    assert settled.seen == [(TOK * i, held) for i in range(4)]
    # each reservation carried the previous call's settle: never more than one call held
    assert watch.seen == [(TOK * i, held) for i in range(4)]
    # the run's end wrote the last one: exact, nothing held
    assert row.used["tokens"] == 4 * TOK and row.reserved["tokens"] == 0


async def test_a_failed_run_writes_what_was_pending(store: Any, clock: FakeClock) -> None:
    async with Runtime(store, clock=clock) as rt:
        res = await rt.run(app.build(), {"calls": 2, "fail": True}, tenant="acme")
        (row,) = await windows(store)
    assert res.status is RunStatus.FAILED
    assert row.used["tokens"] == 2 * TOK and row.reserved["tokens"] == 0


async def test_a_call_over_its_hold_is_settled_at_once(store: Any, clock: FakeClock) -> None:
    """A settle that would leave the window understated (the call used more than it held)
    is written with the call, not deferred."""
    watch, settled = Watch(), Settled()
    wf = app.build(settled, Quota(tokens=app.LIMIT), watch)
    async with Runtime(store, clock=clock) as rt:
        res = await rt.run(wf, {"calls": 3, "greedy": [0]}, tenant="acme")
        (row,) = await windows(store)
    assert res.status is RunStatus.COMPLETED, res
    held = hold_of(watch)
    greedy = IN + GREEDY_OUT
    assert greedy > held
    assert settled.seen[0] == (greedy, 0)  # written with the call
    assert settled.seen[1:] == [(greedy, held), (greedy + TOK, held)]  # those wait
    assert watch.seen == [(0, held), (greedy, held), (greedy + TOK, held)]
    assert row.used["tokens"] == greedy + 2 * TOK and row.reserved["tokens"] == 0


async def test_a_settle_left_on_a_window_that_rolled_over_is_written(
    store: Any, clock: FakeClock
) -> None:
    """The clock passes into the next window between two calls: the first call's settle,
    pending on the old window, is written when the run ends, not left held there."""
    app.clock_hook[:] = [clock]
    wf = app.build(Quota(period="minute", tokens=app.LIMIT))
    async with Runtime(store, clock=clock) as rt:
        res = await rt.run(wf, {"calls": 2, "tick": 60.0}, tenant="acme")
        rows = await windows(store)
    assert res.status is RunStatus.COMPLETED, res
    assert [(r.used["tokens"], r.reserved["tokens"]) for r in rows] == [(TOK, 0), (TOK, 0)]


async def _race(stores: list[Any], limit: float) -> tuple[list[RunStatus], Ledger, int]:
    """Three runs of one tenant in each of two runtimes (each its own store object: its own
    pending settles, as two processes), all at once, against one quota."""
    watch = Watch(limit)
    wf = app.build(Quota(tokens=limit), watch, name="quota_race")
    before = len(app.model.requests)
    async with Runtime(stores[0]) as one, Runtime(stores[1]) as two:
        runs = [rt.run(wf, {"calls": 6}, tenant="acme") for rt in (one, two) for _ in range(3)]
        results = await asyncio.gather(*runs)
        (row,) = await windows(stores[0])
    return [r.status for r in results], row, len(app.model.requests) - before


def _check_race(statuses: list[RunStatus], row: Ledger, calls: int, limit: float) -> None:
    assert RunStatus.FAILED not in statuses
    assert RunStatus.ESCALATED in statuses  # the runs wanted more than the quota holds
    assert calls >= 2
    # every live call was charged exactly once, nothing stays held, the quota held
    assert row.used["tokens"] == TOK * calls <= limit
    assert row.reserved["tokens"] == 0


async def test_two_runtimes_on_one_sqlite_file_never_overspend_a_quota(tmp_path: Path) -> None:
    limit = 120.0
    db = tmp_path / "race.db"
    statuses, row, calls = await _race([SqliteStore(db), SqliteStore(db)], limit)
    _check_race(statuses, row, calls, limit)


@pytest.mark.postgres
async def test_two_runtimes_on_one_postgres_schema_never_overspend_a_quota() -> None:
    _pg_reachable()
    from tether.store.postgres import PostgresStore

    limit = 120.0
    schema = f"quota_race_{secrets.token_hex(4)}"
    try:
        stores = [PostgresStore(PG_DSN, schema=schema) for _ in range(2)]
        statuses, row, calls = await _race(stores, limit)
    finally:
        _drop(schema)
    _check_race(statuses, row, calls, limit)


def _run_app(db: Path, run_id: str, calls: int) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "tests.governance.quota_app", str(db), run_id, str(calls)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


async def test_a_process_killed_with_a_settle_pending_overstates_the_window(
    tmp_path: Path,
) -> None:
    """SIGKILL after three journaled calls, the third's settle pending: the window keeps that
    call's hold (more than it used), never less; the recovered run replays the calls from the
    journal and charges nothing again."""
    db = tmp_path / "crash.db"
    db.with_suffix(".crash").touch()
    first = _run_app(db, "r-crash", 3)
    assert first.returncode == -signal.SIGKILL, first.stderr

    store = SqliteStore(db)
    await store.setup()
    try:
        effects = [e for e in await store.list_effects("r-crash") if e.kind == "model"]
        (row,) = await windows(store)
    finally:
        await store.close()
    assert [e.status for e in effects] == ["done"] * 3
    held = row.reserved["tokens"]
    assert row.used["tokens"] == 2 * TOK  # the first two settles rode on the next reservation
    assert held > TOK  # the third call's hold: it used TOK of it
    assert row.spent("tokens") > 3 * TOK  # overstated, never under

    second = _run_app(db, "r-crash", 3)
    assert second.returncode == 0, second.stderr
    assert second.stdout.split() == ["COMPLETED"]
    store = SqliteStore(db)
    await store.setup()
    try:
        (after,) = await windows(store)
    finally:
        await store.close()
    assert (after.used["tokens"], after.reserved["tokens"]) == (2 * TOK, held)  # no charge again
