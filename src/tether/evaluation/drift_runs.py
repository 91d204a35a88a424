"""Drift checks of stored runs and the flags they leave: ``check_drift(store, run_id)`` and
``drift_flags(store, ...)``.

A checked run whose output strays from its goal, or whose plan strays from the plan before
it, gets a flag row in the store's evaluation log (``eval_flags``: kind ``drift.goal_output``
or ``drift.plan``, its similarity and the threshold), queryable per run and per workflow. A
check made inside the run by the graph helper (``drift_route``) leaves a ``drift_flag`` event
on the run instead; ``drift_flags`` returns both.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from tether.core.clock import SYSTEM_CLOCK, Clock
from tether.core.errors import ConfigurationError
from tether.evaluation.drift import GOAL_FIELDS, OUTPUT_FIELDS, DriftCheck, DriftMonitor, pick
from tether.evaluation.mindlog import run_events
from tether.evaluation.rationale import PLAN_EVENT
from tether.graph.history import replay
from tether.graph.state import reducers_from_names
from tether.store.evaluation_log import EvaluationLogStore, FlagRow
from tether.store.protocol import RunStore
from tether.store.types import RunRecord

DRIFT_EVENT = "drift_flag"
GOAL_OUTPUT = "drift.goal_output"
PLAN = "drift.plan"
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
) -> DriftReport:
    """Compare the run's goal (from its input) with its output (from its final state), and each
    of its plans (``record_plan``) with the one before; flag what falls under the threshold."""
    monitor = monitor or DriftMonitor()
    log = eval_log(store)
    run = await store.get_run(run_id)
    state = await final_state(store, run)
    check = await monitor.check(
        extract(run.input, goal, GOAL_FIELDS), extract(state, output, OUTPUT_FIELDS)
    )
    plans = [e.data.get("text", "") for e in await run_events(store, run_id, (PLAN_EVENT,))]
    report = DriftReport(run_id, run.workflow, check, await monitor.check_plans(plans))
    now = clock.now()
    found = [(GOAL_OUTPUT, "final", check)] if check.drifted else []
    found += [(PLAN, str(n + 1), c) for n, c in enumerate(report.plans) if c.drifted]
    for kind, key, c in found:
        row = FlagRow(
            run_id, kind, key, run.workflow, now, c.similarity, c.threshold,
            {"left": c.left[:2000], "right": c.right[:2000]},
        )  # fmt: skip
        await log.put_flag(row)
        report.flags.append(row)
    return report


async def drift_flags(
    store: RunStore,
    *,
    run_id: str | None = None,
    workflow: str | None = None,
    since: float | None = None,
    limit: int = 100,
) -> list[FlagRow]:
    """The drift flags of a run (stored rows and ``drift_flag`` events), or of a workflow."""
    log = eval_log(store)
    rows = [
        r
        for r in await log.list_flags(run_id=run_id, workflow=workflow, since=since, limit=limit)
        if r.kind.startswith("drift.")
    ]
    if run_id is not None:
        run = await store.get_run(run_id)
        for e in await run_events(store, run_id, (DRIFT_EVENT,)):
            d = e.data
            rows.append(
                FlagRow(
                    run_id,
                    f"drift.{d.get('kind', 'goal_output')}",
                    f"event:{e.seq}",
                    run.workflow,
                    e.ts,
                    float(d.get("similarity", 0.0)),
                    float(d.get("threshold", 0.0)),
                    {"node": e.node, "step": e.step},
                )
            )
    return rows
