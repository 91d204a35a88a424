"""Putting FAILED runs back in the queue: one (``Runtime.retry``) or in bulk from the dead letter
(``Runtime.requeue``), and listing the dead letter.

A requeue is an administrative commit (no lease needed; the fencing token is bumped): FAILED →
PLANNED, claimable at once by any worker serving the run's workflow, its attempts and
dead-letter mark reset; the run resumes from its last checkpoint. Bulk requeue pages through the
FAILED runs newest first and is idempotent: a run requeued by someone else meanwhile is passed
over (its commit finds it no longer FAILED), and a second call finds nothing left to requeue.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tether.core.errors import IllegalTransitionError, InvalidInputError, RunStateError
from tether.core.lifecycle import RunStatus
from tether.graph.queueing import check_queue_name
from tether.graph.run_retry import is_dead_lettered, requeue_commit
from tether.store.types import RunRecord

if TYPE_CHECKING:
    from tether.core.clock import Clock
    from tether.store.protocol import RunStore

PAGE = 200
"""FAILED runs read from the store per page while looking for ones to requeue or list."""


async def requeue_one(store: RunStore, clock: Clock, run_id: str, actor: str) -> RunRecord:
    """Requeue the FAILED run ``run_id`` (dead-lettered or not); raises RunStateError when it
    is not FAILED (or stopped being FAILED while this ran)."""
    run = await store.get_run(run_id)
    try:
        return await store.commit(run_id, None, requeue_commit(run, clock.now(), actor))
    except IllegalTransitionError:
        now = await store.get_run(run_id)
        raise RunStateError(
            f"run {run_id} is {now.status.value} now (it was FAILED a moment ago: someone "
            "requeued or resumed it meanwhile); nothing was changed"
        ) from None


def _check_filters(queue: str | None, limit: int | None) -> None:
    if queue is not None:
        check_queue_name(queue)  # "" or "billing " matched no run: "requeued 0", said nothing
    if limit is not None and limit < 1:
        raise InvalidInputError(f"limit must be >= 1 (or None for all), got {limit}")


def _matches(run: RunRecord, dead_letter: bool, queue: str | None) -> bool:
    if dead_letter and not is_dead_lettered(run):
        return False
    return queue is None or run.queue == queue


async def dead_lettered(
    store: RunStore,
    *,
    workflow: str | None = None,
    queue: str | None = None,
    limit: int | None = 50,
) -> list[RunRecord]:
    """The dead-lettered runs, newest first, at most ``limit`` (None: all), found page by page
    among the FAILED ones (the mark is in the run's metadata, not an indexed column)."""
    _check_filters(queue, limit)
    out: list[RunRecord] = []
    cursor: str | None = None
    while limit is None or len(out) < limit:
        page = await store.list_runs(
            status=[RunStatus.FAILED], workflow=workflow, limit=PAGE, before=cursor
        )
        for run in page:
            if _matches(run, True, queue):
                out.append(run)
                if limit is not None and len(out) >= limit:
                    break
        if len(page) < PAGE:
            break
        cursor = page[-1].run_id
    return out


async def requeue_many(
    store: RunStore,
    clock: Clock,
    actor: str,
    *,
    dead_letter: bool = True,
    workflow: str | None = None,
    queue: str | None = None,
    limit: int | None = None,
) -> list[str]:
    """Requeue FAILED runs (dead-lettered ones only when ``dead_letter``), at most ``limit``;
    returns the ids requeued. Runs that moved on meanwhile are skipped, not counted."""
    _check_filters(queue, limit)
    done: list[str] = []
    cursor: str | None = None
    while limit is None or len(done) < limit:
        page = await store.list_runs(
            status=[RunStatus.FAILED], workflow=workflow, limit=PAGE, before=cursor
        )
        for run in page:
            if not _matches(run, dead_letter, queue):
                continue
            try:
                await store.commit(run.run_id, None, requeue_commit(run, clock.now(), actor))
            except IllegalTransitionError:
                continue  # requeued (or resumed) by someone else since the page was read
            done.append(run.run_id)
            if limit is not None and len(done) >= limit:
                break
        if len(page) < PAGE:
            break
        cursor = page[-1].run_id
    return done
