"""How an after-run drift check is written: a ``drift_checked`` event on the run, appended by a
fenced commit, and only then the flags index.

The event is the record (``RunStore.commit``, like every event of the run): it is written under
a lease token, so a checker whose lease was taken over (it paused, its lease expired, another
worker or checker took the run) gets ``LeaseLostError`` and writes nothing. A caller that holds
the run's lease (a worker checking the run it just finished) passes its ``token``; otherwise the
check takes a lease of its own for the time of the check and gives it back with the commit.

The evaluation log's ``eval_flags`` rows index the flags of the latest checks for the queries
by workflow and period (``drift_flags(workflow=...)``): a row per comparison under its
threshold, keyed ``(run, kind, key)``; a later check rewrites the rows of the run it finds
there with its own scores (a flag that no longer holds stays as a row over its threshold,
which the query leaves out). They are written after the event committed: a crash in between
leaves the event, which ``drift_flags(run_id=...)`` reads, without its index rows.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

from tether.core.errors import RunStateError
from tether.core.lifecycle import ACTIVE
from tether.evaluation.drift import DriftCheck
from tether.store.evaluation_log import EvaluationLogStore, FlagRow
from tether.store.protocol import RunStore
from tether.store.types import Commit, Event, RunRecord

CHECKED_EVENT = "drift_checked"
GOAL_OUTPUT = "drift.goal_output"
PLAN = "drift.plan"
CHECK_OWNER = "drift-check"
LEASE_TTL = 120.0
"""Seconds the lease a check takes for itself lasts (embedding a run's texts takes far less)."""
MAX_TEXT = 2000
"""Characters of each compared text kept in the event."""


def comparisons(
    goal_output: DriftCheck | None, plans: list[DriftCheck]
) -> list[tuple[str, str, DriftCheck]]:
    """Each comparison of a check as ``(kind, key, check)``: ``final`` for the goal against the
    output, ``1``, ``2``... for each plan against the one before."""
    out = [(GOAL_OUTPUT, "final", goal_output)] if goal_output is not None else []
    return out + [(PLAN, str(n + 1), c) for n, c in enumerate(plans)]


def check_data(c: DriftCheck) -> dict[str, Any]:
    return {**c.as_dict(), "left": c.left[:MAX_TEXT], "right": c.right[:MAX_TEXT]}


def event_flags(run: RunRecord, e: Event) -> list[FlagRow]:
    """The flags of a ``drift_checked`` event: its comparisons under their threshold."""
    out: list[FlagRow] = []
    d = e.data
    found = [(GOAL_OUTPUT, "final", d.get("goal_output"))]
    found += [(PLAN, str(n + 1), c) for n, c in enumerate(d.get("plans") or ())]
    for kind, key, c in found:
        if isinstance(c, Mapping) and c.get("drifted"):
            out.append(
                FlagRow(
                    run.run_id, kind, key, run.workflow, e.ts, float(c["similarity"]),
                    float(c["threshold"]),
                    {"left": c.get("left", ""), "right": c.get("right", ""), "seq": e.seq},
                )
            )  # fmt: skip
    return out


@asynccontextmanager
async def check_lease(
    store: RunStore, run: RunRecord, token: int | None, owner: str | None, ttl: float
) -> AsyncIterator[int]:
    """The token the check writes under: ``token`` when the caller holds the run's lease, else
    a lease taken now (released by the commit, or here when the check fails)."""
    if token is not None:
        yield token
        return
    if run.status in ACTIVE:
        raise RunStateError(
            f"run {run.run_id} is {run.status.value}: check its drift once it has finished or "
            "is waiting (COMPLETED, FAILED, CANCELLED, ESCALATED), or from the worker that "
            "holds its lease (pass token=)"
        )
    name = owner or f"{CHECK_OWNER}:{uuid.uuid4().hex[:12]}"
    lease = await store.acquire_lease(run.run_id, name, ttl)
    if lease is None:
        raise RunStateError(
            f"run {run.run_id} is held by {run.owner!r} (another check?): try again once its "
            "lease is released or expired"
        )
    try:
        yield lease.token
    except BaseException:
        await store.release_lease(run.run_id, lease.token)  # no-op once the lease is lost
        raise


async def record(
    store: RunStore,
    log: EvaluationLogStore,
    run: RunRecord,
    token: int,
    data: dict[str, Any],
    found: list[tuple[str, str, DriftCheck]],
    *,
    ts: float,
    release: bool,
) -> list[FlagRow]:
    """Append the ``drift_checked`` event under ``token`` (fenced), then index its flags;
    returns them (the comparisons under their threshold)."""
    event = Event(run.run_id, 0, CHECKED_EVENT, ts, run.step, None, data)
    after = await store.commit(run.run_id, token, Commit(events=[event], release_lease=release))
    indexed = {(r.kind, r.key) for r in await log.list_flags(run_id=run.run_id, limit=10_000)}
    flags: list[FlagRow] = []
    for kind, key, c in found:
        if not c.drifted and (kind, key) not in indexed:
            continue
        row = FlagRow(
            run.run_id, kind, key, run.workflow, ts, c.similarity, c.threshold,
            {"left": c.left[:MAX_TEXT], "right": c.right[:MAX_TEXT], "seq": after.event_seq},
        )  # fmt: skip
        await log.put_flag(row)
        if c.drifted:
            flags.append(row)
    return flags
