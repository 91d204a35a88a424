"""Turning a human's answer into the commit that takes a parked or failed run back to work."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from tether.core.errors import InvalidInputError, RunStateError
from tether.core.governor import ResumeHook
from tether.core.journal import MANUAL_RETRY
from tether.core.lifecycle import RunStatus
from tether.graph.breakpoints import resume_metadata
from tether.graph.child_resume import parked_child, resume_child
from tether.graph.events import lifecycle_events
from tether.graph.loop import phase_status
from tether.graph.run_retry import ATTEMPT_KEY, DEAD_LETTER_KEY
from tether.observability.trace_ids import TRACE_KEY, rerun_trace
from tether.store.types import Checkpoint, Commit, NodeWrite, RunRecord

if TYPE_CHECKING:
    from tether.graph.host import RunHost


def writes_nothing_first(run: RunRecord) -> bool:
    """Whether ``prepare_resume`` writes nothing to the store before the commit it returns:
    a retry after failure, an answer to the run's interrupts, past a breakpoint or step limit
    of its own (a child's is resumed in the child; an effect's outcome and governance's
    answers are written first). The lease and the commit may then land in one write
    (``store.protocol.LeaseCommit``)."""
    if run.status is RunStatus.FAILED:
        return True
    kind = (run.escalation or {}).get("kind")
    return (
        run.status is RunStatus.ESCALATED
        and kind in ("interrupt", "breakpoint", "step_limit")
        and parked_child(run) is None
    )


async def prepare_resume(
    rt: RunHost,
    run: RunRecord,
    token: int,
    value: Any,
    answers: Mapping[str, Any] | None,
    max_steps: int | None,
    actor: str,
    missing: Any,
    checkpoint: Checkpoint | None = None,
) -> Commit:
    """``run`` must be read after the resumer took the lease: answers are checked against what
    the run waits for *now*, not when the caller looked (another resume may have landed since).
    ``checkpoint``: the run's latest, when the caller read it already (else read here).

    An answer to an interrupt goes into the commit (``Commit.node_writes``): the answer and
    the run's move back to work land together, so a crash between them cannot leave an
    answer journaled on a run that still waits (the next resume would append a second one)."""
    store = rt.store
    journal: list[NodeWrite] = []
    meta: dict[str, Any] = {}
    trs: list[tuple[RunStatus, RunStatus, str, str]]
    esc = run.escalation or {}
    kind = esc.get("kind") if run.status is RunStatus.ESCALATED else None
    if answers is not None and kind != "interrupt":
        waits = f"waits for {kind}: {esc.get('reason', '')}" if kind else "is " + run.status.value
        raise RunStateError(
            f"run {run.run_id} no longer waits for interrupt(s) {sorted(answers)}: it {waits}. "
            "Someone else resumed it first; read the run again and answer what it waits for now"
        )
    if run.status is RunStatus.FAILED:
        reason = "retry after failure"
        trs = [
            (RunStatus.FAILED, RunStatus.PLANNED, actor, reason),
            (RunStatus.PLANNED, RunStatus.EXECUTING, f"worker:{rt.owner}", "resumed"),
        ]
        meta["replans"] = 0  # an operator's retry gets a fresh re-plan budget
        meta.update({ATTEMPT_KEY: 1, DEAD_LETTER_KEY: None})  # and fresh run attempts
        meta[TRACE_KEY] = rerun_trace(run.run_id, run.metadata)  # its failed span was exported
        return _commit(rt, run, trs, meta, clear_error=True)
    child = parked_child(run)
    if child is not None:  # the child's breakpoint or step limit: resumed the same way
        reason = await resume_child(rt, run, child, value, max_steps, actor, missing)
    elif kind == "interrupt":
        journal = await _answer_interrupts(rt, run, esc, value, answers, missing)
        reason = "answered"
    elif kind == "breakpoint":
        meta.update(resume_metadata(run, esc, value, missing))
        reason = f"past the breakpoint {esc.get('when')} {', '.join(esc.get('nodes', []))}"
    elif kind == "step_limit":
        grant = max_steps or rt.max_steps
        meta["step_limit"] = int(run.metadata.get("step_limit", rt.max_steps)) + grant
        reason = f"granted {grant} more steps"
    elif kind == "unknown_effect_outcome":
        key = esc.get("details", {}).get("key")
        if isinstance(value, Mapping) and value.get("retry") is True:
            await store.record_result(
                run.run_id,
                key,
                error={"type": MANUAL_RETRY, "message": f"{actor} asked to retry"},
                token=token,
            )
            reason = f"effect {key} to be retried"
        elif isinstance(value, Mapping) and "result" in value:
            await store.record_result(run.run_id, key, result=value["result"], token=token)
            reason = f"effect {key} settled by {actor}"
        else:
            raise InvalidInputError(
                f"run {run.run_id} waits for the outcome of effect {key!r}: resume it with "
                "{'result': <what the effect returned>} or {'retry': True}"
            )
    else:
        reason = f"approved ({kind})"
        hook = getattr(rt.workflow_for(run), "governance", None)
        if isinstance(hook, ResumeHook):  # governance acts on its own escalations' answers
            meta.update(
                await hook.on_resume(store, run, esc, None if value is missing else value) or {}
            )
        if max_steps:
            meta["step_limit"] = int(run.metadata.get("step_limit", rt.max_steps)) + max_steps
    trs = [(RunStatus.ESCALATED, RunStatus.EXECUTING, actor, reason)]
    cp = checkpoint if checkpoint is not None else await store.latest_checkpoint(run.run_id)
    if cp.next_tasks:
        phase = phase_status(rt.workflow_for(run), cp.next_tasks)
        if phase is not RunStatus.EXECUTING:
            trs.append((RunStatus.EXECUTING, phase, f"worker:{rt.owner}", "resumed step"))
    commit = _commit(rt, run, trs, meta, clear_error=False)
    commit.node_writes = journal
    return commit


def _commit(
    rt: RunHost,
    run: RunRecord,
    trs: list[tuple[RunStatus, RunStatus, str, str]],
    meta: dict[str, Any],
    *,
    clear_error: bool,
) -> Commit:
    now = rt.clock.now()
    events = lifecycle_events(run.run_id, now, trs)
    return Commit(
        status=trs[-1][1],
        transitions=list(trs),
        events=events,
        escalation=None,
        set_escalation=True,
        error=None,
        set_error=clear_error,
        metadata=meta or None,
    )


async def _answer_interrupts(
    rt: RunHost,
    run: RunRecord,
    esc: Mapping[str, Any],
    value: Any,
    answers: Mapping[str, Any] | None,
    missing: Any,
) -> list[NodeWrite]:
    """The journal entries of the interrupted tasks with their answer appended (to commit)."""
    items: list[dict[str, Any]] = list(esc.get("interrupts", []))
    ids = [i["id"] for i in items]
    if answers is not None:
        unknown = sorted(set(answers) - set(ids))
        stale = [i for i in unknown if _is_interrupt_id(i, rt.workflow_for(run).nodes)]
        if stale:
            raise RunStateError(
                f"run {run.run_id}: interrupt(s) {stale} are no longer pending (answered by "
                f"someone else, or from an earlier step); it waits for {ids} now. Read the run "
                "again (its interrupts) and answer those"
            )
        absent = [i for i in ids if i not in answers]
        if unknown or absent:
            raise InvalidInputError(
                f"answers must cover exactly the pending interrupts {ids}"
                + (f"; unknown: {unknown}" if unknown else "")
                + (f"; missing: {absent}" if absent else "")
            )
        mapping = dict(answers)
    elif value is missing:
        raise InvalidInputError(
            f"run {run.run_id} waits for an answer to {ids}; resume it with a value"
        )
    elif len(items) != 1:
        raise InvalidInputError(
            f"run {run.run_id} has {len(items)} pending interrupts {ids}; "
            "pass answers={interrupt_id: value, ...}"
        )
    else:
        mapping = {ids[0]: value}
    step = int(esc["step"])
    writes = {w.task_id: w for w in await rt.store.get_node_writes(run.run_id, step)}
    answered = []
    for item in items:
        w = writes.get(item["task_id"])
        if w is None or w.status != "interrupted":
            raise RunStateError(
                f"run {run.run_id}: no journaled interrupt for task {item['task_id']}"
            )
        w.resume = [*w.resume, mapping[item["id"]]]
        answered.append(w)
    return answered


_INTERRUPT_ID = re.compile(r"^(\d+):(.+):(\d+)#(\d+)$")


def _is_interrupt_id(iid: str, nodes: Mapping[str, Any]) -> bool:
    """An id shaped like one this run could have had (``{step}:{node}:{i}#{k}``)."""
    m = _INTERRUPT_ID.match(iid) if isinstance(iid, str) else None
    return m is not None and m.group(2) in nodes
