"""Moving unfinished runs to the version of their workflow registered now
(``Runtime.upgrade``, ``Runtime.upgrade_all``, ``tether runs upgrade``).

A run records the structure of the workflow it started with (``graph.version``); once that
workflow changes shape (a node added, an edge moved), workers of the new code refuse to continue
the run and it waits for a worker of the old code. When none is left, an operator moves it to
the new version: an administrative commit under the run's lease records the new version and a
``workflow_version_changed`` event (``from``, ``to``, ``actor``), and any worker of the new code
continues it from its last checkpoint.

The move is refused (``WorkflowVersionError``, nothing written) when the new structure cannot
continue the run as it stands (``upgrade_blockers``, a pure function of the checkpoint): its
next step runs a node the new version lacks, a join it is half-way through is gone, or its
state holds a field the new state schema lacks or a value its field's new type does not fit (a
``str`` where the field is now ``int``, which the new nodes would be handed). A run executing
under a live lease (a worker of the old code still runs it) is left alone: ``RunStateError``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from tether.core.errors import ConfigurationError, RunStateError, WorkflowVersionError
from tether.core.lifecycle import FINISHED, RunStatus
from tether.graph.version import VERSION_KEY
from tether.store.types import Checkpoint, Commit, Event

if TYPE_CHECKING:
    from tether.graph.builder import Workflow
    from tether.graph.runtime import Runtime
    from tether.store.types import RunRecord

PAGE = 200
"""Unfinished runs read per page by ``upgrade_all``."""
UNFINISHED = [s for s in RunStatus if s not in FINISHED]
"""What ``upgrade_all`` moves: the runs that would wait for a worker of the old code."""
DONE = frozenset({RunStatus.COMPLETED, RunStatus.CANCELLED})
"""What ``upgrade`` refuses: a FAILED run can still be retried or resumed, so it may move."""


@dataclass(frozen=True, slots=True)
class Upgrade:
    """What ``upgrade`` did (or, with ``dry_run``, would do) to one run."""

    run_id: str
    workflow: str
    status: RunStatus
    from_version: str | None
    """The version the run recorded (None: it predates versions)."""
    to_version: str
    changed: bool
    """False: it already ran the registered version (nothing to do), or ``dry_run``."""


def upgrade_blockers(wf: Workflow, cp: Checkpoint, state: Mapping[str, Any]) -> list[str]:
    """Why ``wf`` cannot continue a run whose last checkpoint is ``cp`` and state ``state``
    (empty: it can)."""
    reasons = structure_blockers(wf, cp)
    schema = wf.graph.state_schema
    if schema.schema is not None:
        extra = sorted(set(state) - set(schema.fields))
        if extra:
            reasons.append(
                f"its state holds {', '.join(extra)}, a field the new version's state lacks"
            )
    for name, value in state.items():
        problem = schema.stored_value_problem(name, value)
        if problem is not None:
            reasons.append(f"its state holds {name!r} = {problem} (its type in the new version)")
    return reasons


def structure_blockers(wf: Workflow, cp: Checkpoint) -> list[str]:
    """Why ``wf``'s structure cannot take up the step after the checkpoint ``cp`` (its next
    tasks' nodes, the joins it is half-way through); empty: it can."""
    reasons = []
    nodes = set(wf.nodes)
    missing = sorted({str(t.get("node")) for t in cp.next_tasks} - nodes)
    if missing:
        reasons.append(f"its next step runs {', '.join(missing)}, a node the new version lacks")
    joins = {
        f"{'+'.join(srcs)}>{target}" for bars in wf.barrier_in.values() for srcs, target in bars
    }
    gone = sorted(key for key, got in cp.barriers.items() if got and key not in joins)
    if gone:
        reasons.append(
            f"it is half-way through join {', '.join(gone)}, which the new version lacks"
        )
    return reasons


async def upgrade(rt: Runtime, run_id: str, *, actor: str, dry_run: bool = False) -> Upgrade:
    """Move the run ``run_id`` (unfinished, or FAILED: a retry continues it) to the version of
    its workflow ``rt`` knows now."""
    run = await rt.store.get_run(run_id)
    if run.status in DONE:
        raise RunStateError(
            f"run {run_id} is {run.status.value}: a finished run never runs again, so its "
            "version stays; fork it to continue its state with the new version"
        )
    wf = _workflow(rt, run)
    recorded = run.metadata.get(VERSION_KEY)
    view = Upgrade(run_id, run.workflow, run.status, recorded, wf.version, False)
    if recorded == wf.version:
        return view
    await _check(rt, wf, run, recorded)
    if dry_run:
        return view
    lease = await rt.store.acquire_lease(run_id, rt.owner, rt.lease_ttl)
    if lease is None:
        now = await rt.store.get_run(run_id)
        raise RunStateError(
            f"run {run_id} is executing under a live lease of {now.owner}: a worker of the "
            "code it started with still runs it; upgrade it once that worker is gone"
        )
    try:
        run = await rt.store.get_run(run_id)  # as it stands under the lease
        if run.status in DONE or run.metadata.get(VERSION_KEY) == wf.version:
            await rt.store.release_lease(run_id, lease.token)
            return Upgrade(run_id, run.workflow, run.status, recorded, wf.version, False)
        await _check(rt, wf, run, run.metadata.get(VERSION_KEY))
        event = Event(
            run_id,
            0,
            "workflow_version_changed",
            rt.clock.now(),
            None,
            None,
            {"from": recorded, "to": wf.version, "actor": actor, "reason": "upgrade"},
        )
        commit = Commit(metadata={VERSION_KEY: wf.version}, events=[event], release_lease=True)
        run = await rt.store.commit(run_id, lease.token, commit)
    except BaseException:
        await rt.store.release_lease(run_id, lease.token)
        raise
    return Upgrade(run_id, run.workflow, run.status, recorded, wf.version, True)


async def upgrade_all(
    rt: Runtime, workflow: str, *, actor: str, dry_run: bool = False
) -> tuple[list[Upgrade], list[tuple[str, str]]]:
    """``upgrade`` every unfinished run of ``workflow`` recorded with another version (FAILED
    ones only by id, before their retry: ``upgrade``). Returns
    the runs moved (or, ``dry_run``, those that would be) and ``(run_id, why)`` for each run
    that could not be (incompatible, executing under a live lease, finished meanwhile)."""
    if workflow not in rt.workflow_names:
        raise ConfigurationError(
            f"no workflow {workflow!r} is registered: upgrading moves runs to the version "
            "registered now (CLI: pass --app with the new code)"
        )
    moved: list[Upgrade] = []
    refused: list[tuple[str, str]] = []
    cursor: str | None = None
    while True:
        page = await rt.store.list_runs(
            status=UNFINISHED, workflow=workflow, limit=PAGE, before=cursor
        )
        for run in page:
            if run.metadata.get(VERSION_KEY) == rt.workflow_for(run).version:
                continue
            try:
                done = await upgrade(rt, run.run_id, actor=actor, dry_run=dry_run)
            except RunStateError as exc:  # WorkflowVersionError included
                refused.append((run.run_id, str(exc)))
                continue
            if done.changed or dry_run:
                moved.append(done)
        if len(page) < PAGE:
            return moved, refused
        cursor = page[-1].run_id


def _workflow(rt: Runtime, run: RunRecord) -> Workflow:
    if run.workflow not in rt.workflow_names:
        raise ConfigurationError(
            f"run {run.run_id} uses workflow {run.workflow!r}, which is not registered here: "
            "upgrading moves a run to the version registered now (CLI: pass --app with the "
            "new code)"
        )
    return rt.workflow_for(run)


async def _check(rt: Runtime, wf: Workflow, run: RunRecord, recorded: Any) -> None:
    cp = await rt.store.get_checkpoint(run.run_id, run.step)
    state = await rt.get_state(run.run_id, run=run)
    reasons = upgrade_blockers(wf, cp, state)
    if reasons:
        raise WorkflowVersionError(
            f"run {run.run_id} cannot move to version {wf.version} of workflow "
            f"{run.workflow!r}: {'; '.join(reasons)}. Finish it with a worker of the code it "
            "started with, or fork it from a step the new version can continue (with a state "
            "patch)",
            run_id=run.run_id,
            recorded=str(recorded),
            current=wf.version,
        )
