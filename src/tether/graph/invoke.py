"""``Workflow.invoke`` / ``ainvoke``: run a workflow to the end in one call, LangGraph style.

``wf.invoke(input)`` opens a Runtime over ``store`` (default: a fresh in-memory store; or a
store URL such as ``"sqlite:///runs.db"``, opened and closed around the call; or a RunStore,
which is left open for its owner to close, so one store serves many calls), runs the workflow
and returns the final state. Keyword arguments go to ``Runtime.run`` (``thread_id``,
``run_id``, ``max_steps``, ``metadata``...), except ``deps``, which goes to the Runtime.

* A failed run raises ``RunFailedError``: ``.run_id``, and ``.error``, the recorded cause (the
  ``type``, ``message``, ``node``, ``step`` and ``traceback`` of what the node raised), which its
  message repeats; the exception itself is its ``__cause__`` (as LangGraph would have raised
  it). The run stays FAILED in the store, where ``resume`` can retry it.
* A run that parks (a node's ``interrupt()``, a breakpoint, a step limit) raises
  ``RunParkedError`` (a RunStateError) with ``.run_id``, ``.escalation`` and ``.interrupts``: it
  waits in the store, durably, for ``Runtime(store).resume(run_id, value)``. With the default
  in-memory store the parked run dies with the call; pass a store you keep.
* A cancelled run raises RunStateError.

``invoke`` runs its own event loop (``asyncio.run``); inside async code, ``await ainvoke``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from tether.core.errors import (
    ConfigurationError,
    InvalidInputError,
    RunFailedError,
    RunParkedError,
    RunStateError,
)
from tether.core.lifecycle import RunStatus

if TYPE_CHECKING:
    from tether.graph.builder import Workflow
    from tether.graph.results import RunResult
    from tether.store.protocol import RunStore


def invoke(
    wf: Workflow,
    input: Mapping[str, Any] | None = None,
    *,
    store: RunStore | str | None = None,
    **kw: Any,
) -> dict[str, Any]:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(ainvoke(wf, input, store=store, **kw))
    raise ConfigurationError(
        "Workflow.invoke() was called from a running event loop, which it would block; "
        "use `await workflow.ainvoke(...)` in async code"
    )


async def ainvoke(
    wf: Workflow,
    input: Mapping[str, Any] | None = None,
    *,
    store: RunStore | str | None = None,
    deps: Mapping[str, Any] | None = None,
    **kw: Any,
) -> dict[str, Any]:
    from tether.graph.runtime import Runtime

    forgotten = store is None or (
        isinstance(store, str) and store.strip().lower().startswith("memory://")
    )  # a memory store opened for this call alone
    if forgotten and kw.get("thread_id") is not None:
        raise InvalidInputError(
            "thread_id needs a store that outlives the call, or the thread is forgotten at "
            "once: pass store='sqlite:///runs.db' (or a RunStore you keep, e.g. MemoryStore())"
        )
    given = store if store is None or isinstance(store, str) else _Borrowed(store)
    async with Runtime(given, workflows=[wf], recover=False, deps=deps) as rt:
        result = await rt.run(wf, input, **kw)
    return outcome(result)


class _Borrowed:
    """A store the caller passed in and keeps: the call's Runtime uses it but leaves it open
    (closing is the caller's business), so one store serves many ``invoke`` calls."""

    def __init__(self, store: RunStore) -> None:
        self._store = store

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    async def close(self) -> None:
        return None


def outcome(result: RunResult) -> dict[str, Any]:
    """The final state of a settled run, or the error that says why there is none."""
    if result.status is RunStatus.COMPLETED:
        return result.state
    if result.status is RunStatus.FAILED:
        err = result.error or {}
        message = f"{err.get('type', 'error')} in node {err.get('node')!r}: {err.get('message')}"
        raise RunFailedError(result.run_id, message, err) from result.cause
    if result.status is RunStatus.ESCALATED:
        raise RunParkedError(result.run_id, result.escalation, result.interrupts, result.state)
    raise RunStateError(f"run {result.run_id} ended {result.status.value}")
