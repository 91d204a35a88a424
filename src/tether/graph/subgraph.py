"""A compiled workflow used as a node: it runs as a durable child run linked to its parent."""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from tether.core.errors import (
    EscalationSignal,
    RunFailedError,
    RunNotFoundError,
    RunStateError,
)
from tether.core.ids import child_run_id, legacy_child_run_id
from tether.core.lifecycle import ACTIVE, RunStatus
from tether.graph.host import taken_elsewhere_or_free
from tether.graph.relay import Relay

if TYPE_CHECKING:
    from tether.graph.builder import Workflow
    from tether.graph.context import RunContext
    from tether.graph.host import RunHost
    from tether.store.types import RunRecord


def _fold(reducer: str, values: list[Any]) -> Any:
    """Combine several writes of one field into one write with the same effect."""
    if reducer in ("append", "union"):
        out: list[Any] = []
        for v in values:
            out.extend(v if isinstance(v, list | tuple) else [v])
        return out
    if reducer == "merge":
        merged: dict[Any, Any] = {}
        for v in values:
            merged.update(v)
        return merged
    if reducer == "add":
        total = values[0]
        for v in values[1:]:
            total = total + v
        return total
    if reducer == "max":
        return max(values)
    if reducer == "min":
        return min(values)
    return values[-1]


async def open_child_run(
    rt: RunHost,
    ctx: RunContext,
    wf: Workflow,
    child: str | tuple[object, ...],
    data: Mapping[str, Any],
    metadata: Mapping[str, Any],
) -> RunRecord:
    """``ctx``'s run's child: found when it exists, else started, linked to the parent (its
    budget envelope, its cancel). ``child``: the parts its id derives from
    (``core.ids.child_run_id``; found under the id tether gave it before URL-safe ids too), or
    an id as is. The child is its parent's: its tenant sees it (and its events) and its limits
    count it; it waits in the parent's queue at the parent's priority, as a fork does."""
    if isinstance(child, str):
        child_id, ids = child, [child]
    else:
        child_id = child_run_id(ctx.run_id, *child)
        ids = [child_id, legacy_child_run_id(ctx.run_id, *child)]
    for cid in ids:
        with contextlib.suppress(RunNotFoundError):
            return await rt.store.get_run(cid)
    parent = await rt.store.get_run(ctx.run_id)
    await rt.start(
        wf,
        dict(data),
        run_id=child_id,
        parent_run_id=ctx.run_id,
        parent_step=ctx.step,
        metadata=dict(metadata),
        actor=f"run:{ctx.run_id}",
        queue=parent.queue,
        priority=parent.priority,
        tenant=parent.tenant,
    )
    return await rt.store.get_run(child_id)


async def run_subgraph(rt: RunHost, wf: Workflow, arg: Any, ctx: RunContext) -> dict[str, Any]:
    """Run (or continue) the child run of this task; return its writes as the node's update.

    The child's id is derived from the parent's task, so a re-run of the task after a crash or
    a resume finds the same child and continues it instead of starting over. An interrupt in
    the child surfaces as an interrupt of the parent node; the answer is passed down.
    """
    child_fields = wf.schema.fields
    data = dict(arg) if isinstance(arg, Mapping) else {}
    if child_fields:
        data = {k: v for k, v in data.items() if k in child_fields}
    rec = await open_child_run(rt, ctx, wf, (ctx.task_id,), data, {"subgraph_of": ctx.run_id})
    child_id = rec.run_id
    if rec.status is RunStatus.FAILED:
        rec = await _retry_failed(rt, ctx, rec)
    relay = Relay(ctx)
    while True:
        if rec.status in ACTIVE and taken_elsewhere_or_free(rt, rec):
            lease = await rt.store.acquire_lease(child_id, rt.owner, rt.lease_ttl)
            if lease is not None:
                await rt.take_over(rec, lease.token)
        res = await rt.wait(child_id)
        if res.status is RunStatus.COMPLETED:
            return await _child_update(rt, wf, child_id, ctx)
        if res.status is RunStatus.ESCALATED:
            esc = res.escalation or {}
            if esc.get("kind") != "interrupt":
                raise EscalationSignal(
                    f"subgraph {wf.name}: {esc.get('reason', '')}",
                    kind=str(esc.get("kind", "guard")),
                    child=child_id,
                )
            pending = res.interrupts
            payload = (
                pending[0]["payload"] if len(pending) == 1 else [p["payload"] for p in pending]
            )
            # raises (the parent parks with the child's question) until the parent is resumed
            # with an answer, which goes down to exactly the interrupts it was given for
            await relay.pass_down(rt, child_id, pending, payload)
            rec = await rt.store.get_run(child_id)
            continue
        msg = (res.error or {}).get("message", res.status.value)
        raise RunFailedError(
            child_id, f"subgraph {wf.name} ended {res.status.value}: {msg}", res.error
        )


async def _retry_failed(rt: RunHost, ctx: RunContext, rec: RunRecord) -> RunRecord:
    """The child found FAILED as its node starts (again): the node failed for it before and
    is being retried now (the parent resumed after it failed, the node's RetryPolicy, a
    RunRetry), so the child is retried too, from its last checkpoint, its journaled calls not
    made again. Left FAILED it failed every retry of its parent at once, with its old error."""
    with contextlib.suppress(RunStateError):  # retried meanwhile by someone else
        await rt.resume(rec.run_id, actor=f"run:{ctx.run_id}", wait=False)
    return await rt.store.get_run(rec.run_id)


async def _child_update(
    rt: RunHost, wf: Workflow, child_id: str, ctx: RunContext
) -> dict[str, Any]:
    parent = rt.workflow_for(await rt.store.get_run(ctx.run_id))
    pfields = parent.schema.fields
    collected: dict[str, list[Any]] = {}
    for cp in await rt.store.list_checkpoints(child_id):
        for _task, _node, writes in cp.delta:
            for k, v in writes.items():
                if k in pfields:
                    collected.setdefault(k, []).append(v)
    return {k: _fold(pfields[k].reducer.name, vs) for k, vs in collected.items()}
