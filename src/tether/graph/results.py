"""What callers get back: RunResult (a settled view of a run), RunHandle, StepInfo."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from tether.core.errors import RunFailedError, RunStateError
from tether.core.lifecycle import RunStatus
from tether.store.types import Event, RunRecord

if TYPE_CHECKING:
    from tether.graph.runtime import Runtime


@dataclass(slots=True)
class RunResult:
    run_id: str
    status: RunStatus
    state: dict[str, Any]
    step: int
    escalation: dict[str, Any] | None = None
    error: dict[str, Any] | None = None
    record: RunRecord | None = None
    cause: BaseException | None = field(default=None, repr=False, compare=False)
    """The exception that failed the run, when it failed in this process (not stored: a
    result read back from the store has only ``error``, its recorded type, message and
    traceback)."""

    @property
    def completed(self) -> bool:
        return self.status is RunStatus.COMPLETED

    @property
    def interrupts(self) -> list[dict[str, Any]]:
        """Pending interrupts (id, node, payload) when the run waits for a human."""
        if self.status is RunStatus.ESCALATED and self.escalation:
            return list(self.escalation.get("interrupts", []))
        return []

    def unwrap(self) -> dict[str, Any]:
        """The final state; raises if the run did not complete."""
        if self.status is RunStatus.COMPLETED:
            return self.state
        if self.status is RunStatus.FAILED:
            msg = (self.error or {}).get("message", "unknown error")
            raise RunFailedError(self.run_id, msg, self.error) from self.cause
        raise RunStateError(f"run {self.run_id} is {self.status.value}, not COMPLETED")


@dataclass(slots=True)
class StepInfo:
    """One committed step of a run's history."""

    step: int
    created_at: float
    tasks: list[str]
    writes: list[dict[str, Any]]
    next_tasks: list[dict[str, Any]]
    snapshot: bool
    meta: dict[str, Any] = field(default_factory=dict)
    nodes: list[str] = field(default_factory=list)
    """Node name of each task in ``tasks``, in the same order."""


class RunHandle:
    """A started run. ``await handle.wait()`` for its result; ``handle.events()`` to watch it."""

    def __init__(self, runtime: Runtime, run_id: str, created: bool = True) -> None:
        self.runtime = runtime
        self.run_id = run_id
        self.created = created

    async def wait(self, timeout: float | None = None) -> RunResult:
        return await self.runtime.wait(self.run_id, timeout=timeout)

    async def result(self, timeout: float | None = None) -> dict[str, Any]:
        return (await self.wait(timeout)).unwrap()

    def events(self, *, follow: bool = True) -> AsyncIterator[Event]:
        return self.runtime.events(self.run_id, follow=follow)

    async def cancel(self, reason: str = "") -> RunRecord:
        return await self.runtime.cancel(self.run_id, reason=reason)

    def __repr__(self) -> str:
        return f"RunHandle({self.run_id!r})"
