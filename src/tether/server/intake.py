"""Run intake of the server: ``POST /v1/runs`` answered from the run ``create_run`` wrote.

A submit goes through ``Runtime.submit`` (placement, budget, threads, the first checkpoint),
which ends in one ``store.create_run`` and hands back only the run's id; reading the run back
to answer the request costs a second round trip to the store per submit. ``install(store)``
puts a thin layer in front of the store's ``create_run`` (on that store object only): the run
it returns is handed to the request that asked for it (``created_runs()``, by context
variable, so concurrent requests never see each other's). On PostgreSQL the store writes the
submits of concurrent requests together (``pg_submit_batch.SubmitBatcher``), one statement for
many runs, each request still answered only once its run is committed.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from contextvars import ContextVar
from typing import Any

from tether.core.lifecycle import RunStatus
from tether.store.protocol import RunStore
from tether.store.types import Checkpoint, Event, RunRecord

_created: ContextVar[list[RunRecord] | None] = ContextVar("tether_created_runs", default=None)


@contextlib.contextmanager
def created_runs() -> Iterator[list[RunRecord]]:
    """Collects the runs ``create_run`` returns inside the block (this task and its awaits)."""
    got: list[RunRecord] = []
    token = _created.set(got)
    try:
        yield got
    finally:
        _created.reset(token)


def install(store: RunStore) -> Any:
    """Put the intake layer in front of ``store.create_run`` (once); returns the
    ``SubmitBatcher`` on PostgreSQL (its counters say how submits were written), else None."""
    inner = store.create_run
    if getattr(inner, "_tether_intake", False):
        return getattr(inner, "batcher", None)
    batcher: Any = None
    with contextlib.suppress(ImportError):  # PostgreSQL batches concurrent submits itself
        from tether.store.postgres import PostgresStore

        if isinstance(store, PostgresStore):
            batcher = store.submits

    async def create_run(
        run: RunRecord,
        checkpoint: Checkpoint,
        transitions: Sequence[tuple[RunStatus | None, RunStatus, str, str]],
        events: Sequence[Event] = (),
    ) -> tuple[RunRecord, bool]:
        rec, created = await inner(run, checkpoint, transitions, events)
        got = _created.get()
        if got is not None:
            got.append(rec)
        return rec, created

    marked: Any = create_run
    marked._tether_intake = True
    marked.batcher = batcher
    store.create_run = create_run  # type: ignore[method-assign]
    return batcher
