"""Whose memory a call touches: the tenant of the run it is made from.

A run's tenant is on its record (``Runtime.start/submit(..., tenant=)``); a child run started
without one belongs to its root's tenant. The memory tools never take a tenant from the model:
they read it from the run, so an agent cannot reach another tenant's memories by asking.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

from tether.core.errors import ConfigurationError, PolicyViolationError, RunNotFoundError
from tether.store.protocol import RunStore

MAX_DEPTH = 64
CACHE = 4096


class RunTenants:
    """Tenant (and thread) of runs, read from the run store and cached by run id (a run's
    tenant never changes)."""

    def __init__(self, runs: RunStore) -> None:
        self.runs = runs
        self._cache: OrderedDict[str, tuple[str | None, str | None]] = OrderedDict()

    async def of(self, run_id: str) -> tuple[str | None, str | None]:
        """``(tenant, thread_id)`` of ``run_id``; the tenant of its root when it has none."""
        hit = self._cache.get(run_id)
        if hit is not None:
            return hit
        run = await self.runs.get_run(run_id)
        tenant, thread, parent, hops = run.tenant, run.thread_id, run.parent_run_id, 0
        while tenant is None and parent is not None and hops < MAX_DEPTH:
            try:
                up = await self.runs.get_run(parent)
            except RunNotFoundError:
                break
            tenant, parent, hops = up.tenant, up.parent_run_id, hops + 1
        self._cache[run_id] = (tenant, thread)
        if len(self._cache) > CACHE:
            self._cache.popitem(last=False)
        return tenant, thread


async def call_tenant(
    tenants: RunTenants | None, run: Any, executor_tenant: str | None, tool: str
) -> tuple[str | None, str | None, str | None]:
    """``(tenant, run_id, thread_id)`` a memory tool acts for.

    Inside a run: the run's tenant (an executor bound to another tenant is refused). Inside a
    run with no run store to read it from: the tenant of the call (the run's, which its
    context carries, else the executor's), else a ConfigurationError (guessing would mix
    tenants). Outside a run: the executor's tenant (None: the
    single-tenant default)."""
    run_id = getattr(run, "run_id", None)
    if run_id is None:
        return executor_tenant, None, None
    if tenants is None:
        if executor_tenant is None:
            raise ConfigurationError(
                f"tool {tool!r} runs inside run {run_id!r} but cannot tell its tenant: build "
                "the memory tools with runs=<the runtime's store> (plane.tools(runs=rt.store)), "
                "or give the ToolExecutor tenant=..."
            )
        return executor_tenant, run_id, None
    tenant, thread = await tenants.of(run_id)
    if executor_tenant is not None and executor_tenant != tenant:
        raise PolicyViolationError(
            f"tool {tool!r}: the executor is bound to tenant {executor_tenant!r} but run "
            f"{run_id!r} belongs to {tenant!r}; memory calls act for the run's tenant only",
            tool=tool,
        )
    return tenant, run_id, thread
