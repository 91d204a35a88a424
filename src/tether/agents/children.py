"""Child runs a node starts and follows itself: started once (their ids derive from the
parent's task, so a re-run finds them), taken over when their process died, awaited from the
store wherever they run; a question a child asks is asked by the parent and its answer passed
down (``settle``), any other escalation escalates the parent."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping
from typing import Any

from tether.core.errors import EscalationSignal, LeaseLostError, RunStateError
from tether.core.lifecycle import ACTIVE, RunStatus
from tether.graph.builder import Workflow
from tether.graph.context import RunContext
from tether.graph.host import RunHost, taken_elsewhere_or_free
from tether.graph.relay import Relay
from tether.graph.results import RunResult
from tether.graph.subgraph import open_child_run
from tether.store.types import RunRecord


async def start_child(
    ctx: RunContext,
    wf: Workflow,
    child: str | tuple[object, ...],
    data: Mapping[str, Any],
    meta: dict[str, Any],
) -> RunRecord:
    """``ctx``'s run's child: found when it exists, else started (linked to the parent, so it
    draws on the parent's budget envelope, and marked ``subgraph_of`` it, so cancelling the
    parent cancels it too). ``child``: the parts its id derives from, such as
    ``(ctx.task_id, branch)`` (``core.ids.child_run_id``: URL-safe, reachable over HTTP; a run
    started before those ids finds its children under the earlier ``{run}/{part}/...``), or
    an id of your own. Use the returned run's id."""
    meta = {**meta, "subgraph_of": ctx.run_id}
    return await open_child_run(ctx.host, ctx, wf, child, data, meta)


async def retry_failed(ctx: RunContext, rec: RunRecord) -> None:
    """A child found FAILED as the node following it starts (again): the node failed for it,
    and the parent is being retried (``resume`` of the FAILED parent), so the child is retried
    too, from its last checkpoint and without repeating its journaled calls; left FAILED, it
    would fail every retry of the parent at once. (A parent that crashed after the child failed
    but before failing itself retries the child the same way.)"""
    if rec.status is not RunStatus.FAILED:
        return
    with contextlib.suppress(RunStateError):  # retried meanwhile by someone else
        await ctx.host.resume(rec.run_id, actor=f"run:{ctx.run_id}", wait=False)


async def follow(host: RunHost, child_id: str) -> RunResult:
    """Until the child settles (completes, fails, is cancelled or parks), taking it over here
    whenever its lease is free (its process died): a parent resumed after a crash finishes
    the children the crash left half done."""
    while True:
        rec = await host.store.get_run(child_id)
        if rec.status in ACTIVE and taken_elsewhere_or_free(host, rec):
            lease = await host.store.acquire_lease(child_id, host.owner, host.lease_ttl)
            if lease is not None:
                await host.take_over(rec, lease.token)
        with contextlib.suppress(TimeoutError, LeaseLostError):
            # bounded, so a child whose lease expires meanwhile is taken over on the next turn
            return await host.wait(child_id, timeout=max(host.lease_ttl, 0.05))


def escalated(res: RunResult) -> EscalationSignal:
    """A child that escalated (a budget trip, a guard) escalates its parent with its kind. The
    child holds the escalation: it is answered by resuming the child (``details["child"]``),
    then the parent, which a resume alone would park again on the same escalation."""
    esc = res.escalation or {}
    return EscalationSignal(
        f"child run {res.run_id} escalated: {esc.get('reason', '')} [this run waits for it: "
        f"resume run {res.run_id} as its escalation says, then resume this run]",
        kind=str(esc.get("kind", "guard")),
        **dict(esc.get("details") or {}),
        child=res.run_id,
    )


def asked(res: RunResult) -> Any:
    """What a parked child asks: its one interrupt's payload, or the list of them."""
    pending = res.interrupts
    return pending[0]["payload"] if len(pending) == 1 else [p["payload"] for p in pending]


async def settle(
    ctx: RunContext, relay: Relay, child_id: str, question: Callable[[RunResult], Any]
) -> RunResult:
    """Follow the child until it completes, fails or is cancelled. When it waits for a human,
    the parent asks (``question(result)`` is the parent's interrupt payload; raises, parking
    the parent) and, once resumed with the answer, passes it down to the very question and
    follows on; any other escalation (a budget trip, a guard) escalates the parent."""
    while True:
        res = await follow(ctx.host, child_id)
        if res.status is not RunStatus.ESCALATED:
            return res
        if (res.escalation or {}).get("kind") != "interrupt":
            raise escalated(res)
        await relay.pass_down(ctx.host, child_id, res.interrupts, question(res))


async def child_spend(host: RunHost, res: RunResult) -> dict[str, int]:
    """What a finished child run spent on models, as a pattern's state counts it: the child's
    own ``model_calls`` and ``tokens`` when it keeps them (the agent patterns do, their own
    children included), else its ``model_call`` events summed by the store."""
    state = res.state or {}
    calls, tokens = state.get("model_calls"), state.get("tokens")
    if isinstance(calls, int) and isinstance(tokens, int) and _count(calls) and _count(tokens):
        return {"model_calls": calls, "tokens": tokens}
    totals = await host.store.model_usage(res.run_id)
    return {
        "model_calls": sum(t.calls for t in totals),
        "tokens": sum(t.input_tokens + t.output_tokens for t in totals),
    }


def _count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0
