"""The FinOps agent's tools over the fake cloud: two reads for the diagnosis, one write (stop a
resource, with an idempotency key) that policy holds until a human approves."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field

from tether.core.clock import Clock
from tether.tools import ToolContract, ToolExecutor, tool

from .cloud import DAYS, Cloud, daily_costs

READ_TOOLS = ("query_costs", "list_resources")
STOP_TOOL = "stop_resource"


def make_tools(cloud: Cloud, clock: Clock) -> tuple[ToolExecutor, ToolExecutor]:
    """(read-only tools for the diagnostic agent, every tool for the graph); the ledger
    notes actions at ``clock``'s time."""

    def query_costs(
        service: Annotated[str, Field(max_length=64)] = "",
        days: Annotated[int, Field(ge=1, le=len(DAYS))] = 8,
    ) -> dict[str, Any]:
        """Daily cost in USD per service over the last `days` days (one service, or all)."""
        costs = daily_costs()
        if service and service not in costs:
            raise ValueError(f"no service {service!r}; known services: {sorted(costs)}")
        picked = {service: costs[service]} if service else costs
        return {
            "days": DAYS[-days:],
            "usd_per_day": {svc: values[-days:] for svc, values in picked.items()},
        }

    def list_resources(
        service: Annotated[str, Field(min_length=1, max_length=64)],
    ) -> list[dict[str, Any]]:
        """The resources of a service: kind, owner, state, hourly cost and the average
        utilisation over the last 24 hours (0.0 to 1.0)."""
        found = cloud.resources(service)
        if not found:
            raise ValueError(f"service {service!r} has no resources")
        return found

    def stop_resource(
        resource_id: Annotated[str, Field(min_length=1, max_length=64)],
        ticket: Annotated[str, Field(min_length=1, max_length=128)],
        idempotency_key: str = "",
    ) -> dict[str, Any]:
        """Stop a resource (its disks are kept); `ticket` names the cost spike it answers."""
        return cloud.stop(resource_id, idempotency_key or f"stop:{resource_id}", clock.now())

    reads: list[ToolContract] = [
        tool(query_costs, scope="read"),
        tool(list_resources, scope="read"),
    ]
    stop = tool(
        stop_resource,
        scope="write",
        idempotent=True,
        idempotency_key=lambda a: f"stop:{a['resource_id']}:{a['ticket']}",
    )
    return ToolExecutor(reads), ToolExecutor([*reads, stop])
