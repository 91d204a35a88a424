"""Child runs a node starts and follows itself: started once (their ids derive from the
parent's task, so a re-run finds them), taken over when their process died, awaited from the
store wherever they run."""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from typing import Any

from tether.core.errors import LeaseLostError
from tether.core.lifecycle import ACTIVE
from tether.graph.builder import Workflow
from tether.graph.context import RunContext
from tether.graph.host import RunHost, taken_elsewhere_or_free
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
