"""Fixtures and builders shared by the store conformance suite."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import pytest
import pytest_asyncio

from tether.core.lifecycle import RunStatus, path_to
from tether.store.protocol import RunStore
from tether.store.types import Checkpoint, Commit, Event, RunRecord
from tether.testing.clock import FakeClock

S = RunStatus
T0 = 1_700_000_000.0
StoreFactory = Callable[[], Awaitable[RunStore]]
"""Opens (and sets up) another store instance on the same database; the fixture closes them."""


def lifecycle(
    status: RunStatus, actor: str = "api"
) -> list[tuple[RunStatus | None, RunStatus, str, str]]:
    """Transitions a run takes from nothing to ``status`` (all legal hops)."""
    hops: list[tuple[RunStatus | None, RunStatus, str, str]] = [
        (None, S.RECEIVED, actor, "submitted")
    ]
    cur = S.RECEIVED
    for nxt in path_to(S.RECEIVED, status):
        hops.append((cur, nxt, actor, ""))
        cur = nxt
    return hops


def checkpoint(run_id: str, step: int, *, snapshot: dict[str, Any] | None = None) -> Checkpoint:
    delta: list[Any] = [[f"{step}:a:0", "a", {"n": step}]] if step else []
    return Checkpoint(run_id, step, delta, [{"id": f"{step + 1}:a:0", "node": "a"}], snapshot)


async def create(
    store: RunStore,
    run_id: str,
    *,
    status: RunStatus = S.EXECUTING,
    workflow: str = "wf",
    events: Sequence[Event] = (),
    **fields: Any,
) -> RunRecord:
    """Create a run directly in ``status`` with a step-0 snapshot ``{"n": 0}``."""
    run = RunRecord(run_id, workflow, status, **fields)
    rec, created = await store.create_run(
        run, checkpoint(run_id, 0, snapshot={"n": 0}), lifecycle(status), events
    )
    assert created
    return rec


async def write_steps(
    store: RunStore,
    run_id: str,
    token: int | None,
    steps: range,
    snapshot_at: Sequence[int] = (),
    clock: FakeClock | None = None,
) -> None:
    """Commit one checkpoint per step; ``snapshot_at`` steps carry ``{"n": step}``."""
    for step in steps:
        snap = {"n": step} if step in snapshot_at else None
        await store.commit(
            run_id, token, Commit(checkpoint=checkpoint(run_id, step, snapshot=snap))
        )
        if clock is not None:
            clock.advance(1)


def ev(type_: str = "note", **data: Any) -> Event:
    """An event as a caller hands it to the store: run id and seq are the store's business."""
    return Event("", 0, type_, 0.0, data=data)


class StoreTestBase:
    """Provides ``clock`` and ``store``; a subclass (or conftest) provides ``store_factory``.

    ``store_factory`` must build every store with the ``clock`` fixture, so tests can move time.
    """

    pytestmark = pytest.mark.asyncio

    @pytest.fixture
    def clock(self) -> FakeClock:
        return FakeClock(T0)

    @pytest_asyncio.fixture
    async def store(self, store_factory: StoreFactory) -> RunStore:
        return await store_factory()
