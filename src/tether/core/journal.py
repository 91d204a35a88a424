"""The run a piece of code is executing in, seen from planes that cannot import the graph.

The graph's run loop sets :data:`CURRENT_RUN` around every node; the model and tool planes read
it to journal their calls in that run's effect journal without importing ``tether.graph``. What
they may rely on is the :class:`CallJournal` protocol below (``RunContext`` implements it).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from typing import Any, Protocol, runtime_checkable


@runtime_checkable
class CallJournal(Protocol):
    run_id: str
    node: str
    tenant: str | None
    """Whose run it is (None: no tenant); planes act for it (tools, the semantic cache)."""

    def call_key(self, kind: str) -> str: ...

    def emit(self, type: str, data: dict[str, Any] | None = None) -> None: ...

    def emit_live(self, type: str, data: dict[str, Any] | None = None) -> None: ...

    async def journaled(
        self,
        kind: str,
        request: Any,
        call: Callable[[], Awaitable[Any]],
        *,
        key: str | None = None,
        idempotent: bool = True,
        gate: Callable[[], Awaitable[None]] | None = None,
        replay_error: Callable[[dict[str, Any]], BaseException] | None = None,
    ) -> Any: ...

    async def model_call_counted(self, key: str) -> bool:
        """Whether the run holds the ``model_call`` event of the journaled model call under
        ``key`` (the event of its answer, carrying ``key``), committed or waiting for its step's
        commit. A model call replayed from the journal asks it: its event is missing when the
        process that made the call died before the step committed, and the replay puts it."""
        ...


CURRENT_RUN: ContextVar[CallJournal | None] = ContextVar("tether_run_context", default=None)
"""Set by the graph's executor around each node, to its RunContext; None outside a run."""


def current_journal() -> CallJournal | None:
    """The running node's journal, or None outside a run (a plain contextvar read: it is on
    every model call's path)."""
    return CURRENT_RUN.get()


MANUAL_RETRY = "ManualRetry"
"""The error type ``resume(run_id, {"retry": True})`` records on an effect whose outcome was
unknown: the human asked for the call to be made again, so the next run of it is live."""

OUTCOME_UNKNOWN = "outcome_unknown"
"""Set (True) in a failed effect's recorded error when the call may have taken effect before it
failed (it timed out): a call that is not idempotent is then never made again unasked."""


class InFlight:
    """The journal calls running in this process, by (run, key): a second task of the run that
    reaches a key another live task is calling waits for that call and then reads its record,
    instead of taking the open intent for a crashed one (or making the call a second time)."""

    def __init__(self) -> None:
        self._calls: dict[tuple[str, str], tuple[asyncio.Future[None], asyncio.Task[Any]]] = {}
        self._waiting: dict[tuple[str, str], int] = {}

    async def join(self, run_id: str, key: str) -> bool:
        """Wait while another task of this loop makes the call under ``key``; True when it
        waited (that call's record is then this one's outcome)."""
        waited = False
        while (fut := self.busy(run_id, key)) is not None:
            at = (run_id, key)
            self._waiting[at] = self._waiting.get(at, 0) + 1
            try:
                await asyncio.shield(fut)
            finally:
                self._waiting[at] -= 1
                if not self._waiting[at]:
                    del self._waiting[at]
            waited = True
        return waited

    def waiting(self, run_id: str, key: str) -> int:
        """How many tasks wait for the call under ``key`` now (for tests and diagnostics)."""
        return self._waiting.get((run_id, key), 0)

    def busy(self, run_id: str, key: str) -> asyncio.Future[None] | None:
        """The call another task of this loop is making under ``key``, to wait for; None when
        there is none (a call of this very task, nested, is not waited for: it would wait on
        itself)."""
        entry = self._calls.get((run_id, key))
        if entry is None or entry[0].done():
            return None
        fut, owner = entry
        if owner is asyncio.current_task() or fut.get_loop() is not asyncio.get_running_loop():
            return None
        return fut

    def running(self, run_id: str, key: str) -> bool:
        """Whether a call under ``key`` is being made in this process now (by any task): its
        journal record is not final yet."""
        entry = self._calls.get((run_id, key))
        return entry is not None and not entry[0].done()

    def claim(self, run_id: str, key: str) -> asyncio.Future[None]:
        """Mark ``key`` as being called by the current task (no await since ``busy``: atomic);
        ``release`` it when the call ends, however it ends."""
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        task = asyncio.current_task()
        assert task is not None
        self._calls[(run_id, key)] = (fut, task)
        return fut

    def release(self, run_id: str, key: str, fut: asyncio.Future[None]) -> None:
        entry = self._calls.get((run_id, key))
        if entry is not None and entry[0] is fut:
            del self._calls[(run_id, key)]
        if not fut.done():
            fut.set_result(None)


IN_FLIGHT = InFlight()
"""This process's journal calls in flight (``RunContext.journaled``)."""
