"""Shared rate limits: a token bucket per tool (or per tool and tenant) held in the store."""

from __future__ import annotations

import asyncio

from tether.core.errors import ToolRateLimitedError
from tether.store.control import ControlStore
from tether.tools.contract import ToolContract


async def acquire(store: ControlStore, contract: ToolContract, tenant: str | None) -> float:
    """Wait for a token; returns the seconds waited. Raises ToolRateLimitedError (not retried by
    the executor: the wait already happened) when the wait would exceed ``max_wait``."""
    limit = contract.rate_limit
    if limit is None:
        return 0.0
    bucket = f"tool:{contract.name}" + (f"|tenant:{tenant}" if limit.per_tenant and tenant else "")
    waited = 0.0
    while True:
        wait = await store.take_tokens(bucket, limit.rate, float(limit.burst))
        if wait <= 0:
            return waited
        if waited + wait > limit.max_wait:
            raise ToolRateLimitedError(
                f"tool {contract.name!r} is rate limited to {limit.rate}/s (burst {limit.burst}); "
                f"no token within {limit.max_wait}s",
                tool=contract.name,
                retry_after=wait,
            )
        await asyncio.sleep(wait)
        waited += wait
