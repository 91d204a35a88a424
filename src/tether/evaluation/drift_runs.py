"""Drift checks of stored runs and the flags they leave: ``check_drift(store, run_id)`` and
``drift_flags(store, ...)``.

A check compares a run's output with its goal, and each of its plans with the plan before it.
Its result is a ``drift_checked`` event on the run, appended by a fenced commit (a checker
that lost its lease writes nothing; see ``drift_record``); a comparison under the threshold is a
flag (kind ``drift.goal_output`` or ``drift.plan``, its similarity and the threshold). The
latest check of a run stands for it; the evaluation log's ``eval_flags`` rows index the latest
checks for the queries by workflow and period. A check made inside the run by the graph helper
(``drift_route``) leaves a ``drift_flag`` event on the run; ``drift_flags`` of a run returns
both kinds.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from tether.core.clock import SYSTEM_CLOCK, Clock
from tether.core.errors import ConfigurationError
from tether.evaluation.drift import GOAL_FIELDS, OUTPUT_FIELDS, DriftCheck, DriftMonitor, pick
from tether.evaluation.drift_record import (
    CHECKED_EVENT,
    GOAL_OUTPUT,
    LEASE_TTL,
    PLAN,
    check_data,
    check_lease,
    comparisons,
    event_flags,
    record,
)
from tether.evaluation.mindlog import run_events
from tether.evaluation.rationale import PLAN_EVENT
from tether.graph.history import replay
from tether.graph.state import reducers_from_names
from tether.store.evaluation_log import EvaluationLogStore, FlagRow
from tether.store.protocol import RunStore
from tether.store.types import RunRecord

__all__ = ["CHECKED_EVENT", "DRIFT_EVENT", "GOAL_OUTPUT", "PLAN", "check_drift", "drift_flags"]

DRIFT_EVENT = "drift_flag"
Extract = str | Callable[[Any], Any] | None
"""How to read a text from a run's input or state: a field name, a function, or None (the
first of the usual field names present, else the whole value)."""


@dataclass(slots=True)
class DriftReport:
    run_id: str
    workflow: str
    goal_output: DriftCheck | None
    plans: list[DriftCheck] = field(default_factory=list)
    flags: list[FlagRow] = field(default_factory=list)

    @property
    def drifted(self) -> bool:
        return bool(self.flags)

    def as_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "workflow": self.workflow,
            "drifted": self.drifted,
            "goal_output": None if self.goal_output is None else self.goal_output.as_dict(),
            "plans": [c.as_dict() for c in self.plans],
        }


def extract(value: Any, how: Extract, defaults: tuple[str, ...]) -> Any:
    if how is None:
        return pick(value, defaults)
    if callable(how):
        return how(value)
    if not isinstance(value, Mapping) or how not in value:
        raise ConfigurationError(f"the run has no field {how!r} to read (it has {_keys(value)})")
    return value[how]


def _keys(value: Any) -> list[str]:
    return sorted(value) if isinstance(value, Mapping) else [type(value).__name__]


def eval_log(store: RunStore) -> EvaluationLogStore:
    if not isinstance(store, EvaluationLogStore):
        raise ConfigurationError(
            f"{type(store).__name__} keeps no evaluation log (schema v17): use the memory, "
            "SQLite or PostgreSQL store of this tether"
        )
    return store


async def final_state(store: RunStore, run: RunRecord) -> dict[str, Any]:
    """The run's state after its last committed step (built-in reducers)."""
    chain = await store.load_chain(run.run_id, run.step)
    return replay(reducers_from_names(run.metadata.get("reducers", {})), chain)


async def check_drift(
    store: RunStore,
    run_id: str,
    *,
    monitor: DriftMonitor | None = None,
    goal: Extract = None,
    output: Extract = None,
    clock: Clock = SYSTEM_CLOCK,
    token: int | None = None,
    owner: str | None = None,
    ttl: float = LEASE_TTL,
) -> DriftReport:
    """Compare the run's goal (from its input) with its output (from its final state), and each
    of its plans (``record_plan``) with the one before; flag what falls under the threshold.

    The result is a ``drift_checked`` event on the run, written by a fenced commit: under
    ``token`` when the caller holds the run's lease, else under a lease the check takes (as
    ``owner``, for ``ttl`` seconds) on a run that has finished or waits (``RunStateError`` for
    a run that is executing). A writer whose lease was lost meanwhile gets ``LeaseLostError``
    and writes nothing."""
    monitor = monitor or DriftMonitor()
    log = eval_log(store)
    run = await store.get_run(run_id)
    async with check_lease(store, run, token, owner, ttl) as held:
        return await check_held(
            store, log, run, held, monitor=monitor, goal=goal, output=output, ts=clock.now(),
            release=token is None,
        )  # fmt: skip


async def check_held(
    store: RunStore,
    log: EvaluationLogStore,
    run: RunRecord,
    held: int,
    *,
    monitor: DriftMonitor,
    goal: Extract,
    output: Extract,
    ts: float,
    release: bool,
) -> DriftReport:
    """The check itself, under the lease token ``held`` (given back by the commit when
    ``release``): compare, append the ``drift_checked`` event, index the flags."""
    state = await final_state(store, run)
    check = await monitor.check(
        extract(run.input, goal, GOAL_FIELDS), extract(state, output, OUTPUT_FIELDS)
    )
    plans = [e.data.get("text", "") for e in await run_events(store, run.run_id, (PLAN_EVENT,))]
    report = DriftReport(run.run_id, run.workflow, check, await monitor.check_plans(plans))
    data = {
        "drifted": check.drifted or any(c.drifted for c in report.plans),
        "goal_output": check_data(check),
        "plans": [check_data(c) for c in report.plans],
    }
    found = comparisons(check, report.plans)
    report.flags = await record(store, log, run, held, data, found, ts=ts, release=release)
    return report


async def drift_flags(
    store: RunStore,
    *,
    run_id: str | None = None,
    workflow: str | None = None,
    since: float | None = None,
    limit: int = 100,
) -> list[FlagRow]:
    """The drift flags of a run, read from its events (the ``drift_flag`` events of checks
    inside the run and the flags of its latest ``drift_checked`` event), in event order; or,
    without ``run_id``, those of a workflow or period, from the index of the latest checks."""
    log = eval_log(store)
    if run_id is None:
        rows = await log.list_flags(workflow=workflow, since=since, limit=limit)
        return [r for r in rows if r.kind.startswith("drift.") and r.score < r.threshold]
    run = await store.get_run(run_id)
    found: list[tuple[int, FlagRow]] = []
    latest = None
    for e in await run_events(store, run_id, (DRIFT_EVENT, CHECKED_EVENT)):
        if e.type == CHECKED_EVENT:
            latest = e
            continue
        d = e.data
        row = FlagRow(
            run_id, f"drift.{d.get('kind', 'goal_output')}", f"event:{e.seq}", run.workflow,
            e.ts, float(d.get("similarity", 0.0)), float(d.get("threshold", 0.0)),
            {"node": e.node, "step": e.step},
        )  # fmt: skip
        found.append((e.seq, row))
    if latest is not None:
        found += [(latest.seq, row) for row in event_flags(run, latest)]
    rows = [r for _, r in sorted(found, key=lambda p: p[0])]
    return [r for r in rows if since is None or r.ts >= since][:limit]
