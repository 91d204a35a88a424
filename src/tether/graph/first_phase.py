"""The first phase of a claimed run that never started: what its loop would commit before step 1.

A run submitted to the queue waits PLANNED; the loop that runs it first moves it into the phase
of its first step (``RunLoop._enter_phase``: EXECUTING, WAITING_FOR_TOOL or VALIDATING), a
commit of its own. A worker that claims a batch of such runs makes those moves for the whole
batch in one round trip where the store can (``CommitBatcher``, PostgreSQL); each loop then
finds its run in phase already. ``first_phase_commit`` is that move, exactly as the loop would
make it; ``None`` where the loop must decide (a breakpoint before step 1, not a queued run).
"""

from __future__ import annotations

from tether.core.lifecycle import RunStatus
from tether.graph.breakpoints import stops_before
from tether.graph.builder import Workflow
from tether.graph.events import lifecycle_events
from tether.graph.loop import phase_status, step_hops
from tether.store.types import Checkpoint, Commit, Event, RunRecord


def first_phase_commit(
    wf: Workflow, run: RunRecord, start: Checkpoint, owner: str, now: float
) -> Commit | None:
    """The commit that moves queued ``run`` (PLANNED, at its step-0 checkpoint ``start``) into
    the phase of step 1, fenced by its lease and carrying ``run`` as its base."""
    if run.status is not RunStatus.PLANNED or run.step != 0 or start.step != 0:
        return None
    tasks = start.next_tasks
    if not tasks or stops_before(wf, run, 1, tasks):
        return None
    target = phase_status(wf, tasks)
    reason = f"step 1: {', '.join(t['node'] for t in tasks)}"
    hops = step_hops(run.status, target, f"worker:{owner}", reason)
    return Commit(
        status=target,
        transitions=hops,
        events=lifecycle_events(run.run_id, now, hops),
        base=run,
    )


def committed_events(run: RunRecord, commit: Commit) -> list[Event]:
    """``commit``'s events as the store numbered them (the last ones of ``run``), for the
    runtime's live subscribers."""
    first = run.event_seq - len(commit.events) + 1
    return [
        Event(e.run_id, first + i, e.type, e.ts, e.step, e.node, e.data)
        for i, e in enumerate(commit.events)
    ]
