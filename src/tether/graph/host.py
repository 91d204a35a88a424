"""RunHost: the narrow face of the Runtime that the engine's own modules depend on.

The loop (``loop``), resume planning (``resume``), subgraphs (``subgraph``), threads
(``threads``) and node execution (``executor``, through the run context) need a store, a
clock, an owner identity and a handful of operations from the process that runs them; they
get exactly this protocol, never the Runtime's private state. ``Runtime`` implements it;
``tests/graph/test_runtime_boundary.py`` keeps every other module off ``_private`` members of
another object.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from tether.core.clock import Clock
    from tether.graph.builder import Workflow
    from tether.graph.context import RunContext
    from tether.graph.events import EventBus
    from tether.graph.results import RunHandle, RunResult
    from tether.store.protocol import RunStore
    from tether.store.types import RunRecord


class RunHost(Protocol):
    """What a run's machinery uses of the runtime executing it."""

    @property
    def store(self) -> RunStore: ...

    @property
    def clock(self) -> Clock: ...

    @property
    def owner(self) -> str:
        """This process's lease-owner identity."""
        ...

    @property
    def lease_ttl(self) -> float: ...

    @property
    def draining(self) -> bool:
        """True once the runtime drains: each run stops at its next step boundary."""
        ...

    @property
    def recover(self) -> bool:
        """True when the runtime claims and resumes runs left without an owner (recovery)."""
        ...

    @property
    def max_steps(self) -> int: ...

    @property
    def deps(self) -> Mapping[str, Any]: ...

    @property
    def bus(self) -> EventBus: ...

    def workflow_for(self, run: RunRecord) -> Workflow: ...

    async def get_state(
        self, run_id: str, step: int | None = None, *, run: RunRecord | None = None
    ) -> dict[str, Any]: ...

    async def start(
        self,
        wf: Workflow,
        input: Mapping[str, Any] | None = None,
        *,
        run_id: str | None = None,
        idempotency_key: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        execute: bool = True,
        parent_run_id: str | None = None,
        parent_step: int | None = None,
        actor: str = "user",
        queue: str = "default",
        priority: int = 0,
        tenant: str | None = None,
    ) -> RunHandle: ...

    async def resume(
        self,
        run_id: str,
        value: Any = ...,
        *,
        answers: Mapping[str, Any] | None = None,
        max_steps: int | None = None,
        actor: str = "user",
        wait: bool = True,
        execute: bool = True,
    ) -> RunResult | RunHandle: ...

    async def wait(self, run_id: str, timeout: float | None = None) -> RunResult: ...

    def runs_here(self, run_id: str) -> bool:
        """Whether this process is executing ``run_id`` right now."""
        ...

    async def take_over(self, run: RunRecord, token: int) -> None:
        """Execute ``run`` here from its last checkpoint under the lease ``token`` just won."""
        ...

    async def run_subgraph(self, wf: Workflow, arg: Any, ctx: RunContext) -> dict[str, Any]:
        """Run (or continue) the child run of ``ctx``'s task; its writes are the update."""
        ...


def taken_elsewhere_or_free(host: RunHost, run: RunRecord) -> bool:
    """Whether a node following the child ``run`` should try to take it over: not when this
    runtime executes it, nor when this runtime holds its live lease (its claim loop just
    claimed it and is about to execute it: a second take-over would run it twice)."""
    if host.runs_here(run.run_id):
        return False
    return not (run.owner == host.owner and run.lease_expires_at > host.clock.now())
