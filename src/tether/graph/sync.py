"""The one sync bridge: drive a Runtime from plain scripts (its event loop runs in a thread).

``SyncRuntime`` owns an event loop on a daemon thread ("tether-sync", see ``sync_loop``) and a
``Runtime`` opened on it; each method submits the Runtime coroutine of the same name to that
loop and blocks until it finishes. Every public Runtime method has a typed twin here with the
same parameters (a test keeps the two in step). Calling a SyncRuntime from inside a node it
runs, or after ``close()``, raises ``ConfigurationError`` instead of hanging.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any, Literal, overload

from tether.core.clock import SYSTEM_CLOCK, Clock
from tether.graph.builder import Workflow
from tether.graph.history import SnapshotPolicy
from tether.graph.results import RunHandle, RunResult, StepInfo
from tether.graph.retention import Retention
from tether.graph.runtime import Runtime
from tether.graph.sync_loop import LoopThread
from tether.graph.upgrade import Upgrade
from tether.store.protocol import RunStore
from tether.store.timers import Schedule
from tether.store.types import Event, RunRecord

__all__ = ["SyncRunHandle", "SyncRuntime"]

_UNSET: Any = object()


class SyncRunHandle:
    """A started run, for blocking code: ``handle.wait()`` returns its ``RunResult``."""

    def __init__(self, runtime: SyncRuntime, handle: RunHandle) -> None:
        self.runtime = runtime
        self.handle = handle
        """The async handle (for code that runs on the runtime's loop)."""
        self.run_id = handle.run_id
        self.created = handle.created

    def wait(self, timeout: float | None = None) -> RunResult:
        return self.runtime.wait(self.run_id, timeout=timeout)

    def result(self, timeout: float | None = None) -> dict[str, Any]:
        return self.wait(timeout).unwrap()

    def events(self, *, follow: bool = True) -> Iterator[Event]:
        return self.runtime.iter_events(self.run_id, follow=follow)

    def cancel(self, reason: str = "") -> RunRecord:
        return self.runtime.cancel(self.run_id, reason=reason)

    def __repr__(self) -> str:
        return f"SyncRunHandle({self.run_id!r})"


async def _wake(rt: Runtime) -> None:
    rt.wake()  # on the Runtime's own loop: its wake event belongs there


class SyncRuntime:
    """``with SyncRuntime("sqlite:///runs.db") as rt: rt.run(wf, {...})``.

    Takes ``Runtime``'s arguments; the Runtime itself is ``self.runtime``.
    """

    def __init__(
        self,
        store: RunStore | str | None = None,
        *,
        workflows: Iterable[Workflow] = (),
        owner: str | None = None,
        lease_ttl: float = 15.0,
        max_steps: int = 1000,
        recover: bool = True,
        poll_interval: float = 0.5,
        snapshots: SnapshotPolicy | None = None,
        retention: Retention | None = None,
        deps: Mapping[str, Any] | None = None,
        clock: Clock = SYSTEM_CLOCK,
        max_concurrent_runs: int = 64,
        queues: Iterable[str] | None = None,
    ) -> None:
        self._bridge = LoopThread()
        options: dict[str, Any] = {
            "workflows": workflows,
            "owner": owner,
            "lease_ttl": lease_ttl,
            "max_steps": max_steps,
            "recover": recover,
            "poll_interval": poll_interval,
            "snapshots": snapshots,
            "retention": retention,
            "deps": deps,
            "clock": clock,
            "max_concurrent_runs": max_concurrent_runs,
            "queues": queues,
        }
        try:
            self.runtime: Runtime = self._bridge.call(_open(store, options))
        except BaseException:
            self._bridge.stop()
            raise

    @property
    def store(self) -> RunStore:
        return self.runtime.store

    @property
    def owner(self) -> str:
        """The lease owner string of the wrapped Runtime."""
        return self.runtime.owner

    # -- lifecycle ----------------------------------------------------------------------------
    def close(self) -> None:
        """Stop the Runtime (runs executing here are left for another worker) and its loop
        thread. Closing twice is a no-op."""
        if self._bridge.stopped:
            return
        try:
            self._bridge.call(self.runtime.close())
        finally:
            self._bridge.stop()

    def __enter__(self) -> SyncRuntime:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def register(self, wf: Workflow) -> Workflow:
        return self.runtime.register(wf)

    def workflow_for(self, run: RunRecord) -> Workflow:
        return self.runtime.workflow_for(run)

    # -- starting -----------------------------------------------------------------------------
    def start(
        self,
        wf: Workflow,
        input: Mapping[str, Any] | None = None,
        *,
        run_id: str | None = None,
        idempotency_key: str | None = None,
        max_steps: int | None = None,
        metadata: Mapping[str, Any] | None = None,
        execute: bool = True,
        parent_run_id: str | None = None,
        parent_step: int | None = None,
        actor: str = "user",
        thread_id: str | None = None,
        max_attempts: int | None = None,
        queue: str = "default",
        priority: int = 0,
        tenant: str | None = None,
        delay: float | None = None,
        budget: Mapping[str, Any] | None = None,
    ) -> SyncRunHandle:
        """Create a run and (``execute=True``) start executing it; see ``Runtime.start``."""
        handle = self._bridge.call(
            self.runtime.start(
                wf,
                input,
                run_id=run_id,
                idempotency_key=idempotency_key,
                max_steps=max_steps,
                metadata=metadata,
                execute=execute,
                parent_run_id=parent_run_id,
                parent_step=parent_step,
                actor=actor,
                thread_id=thread_id,
                max_attempts=max_attempts,
                queue=queue,
                priority=priority,
                tenant=tenant,
                delay=delay,
                budget=budget,
            )
        )
        return SyncRunHandle(self, handle)

    def wake(self) -> None:
        """Make the claim loop claim now; see ``Runtime.wake``."""
        self._bridge.call(_wake(self.runtime))

    def submit(
        self, wf: Workflow, input: Mapping[str, Any] | None = None, **kw: Any
    ) -> SyncRunHandle:
        """Enqueue a run for any worker (``start(..., execute=False)``)."""
        return SyncRunHandle(self, self._bridge.call(self.runtime.submit(wf, input, **kw)))

    def run(self, wf: Workflow, input: Mapping[str, Any] | None = None, **kw: Any) -> RunResult:
        """Start a run and wait until it completes, fails, or parks (ESCALATED)."""
        return self._bridge.call(self.runtime.run(wf, input, **kw))

    def recover_once(self, limit: int = 16) -> list[str]:
        """Claim ACTIVE runs nobody holds and resume them here; see ``Runtime.recover_once``."""
        return self._bridge.call(self.runtime.recover_once(limit))

    def fire_timers(self) -> int:
        """Fire due timers and cron slots here; see ``Runtime.fire_timers``."""
        return self._bridge.call(self.runtime.fire_timers())

    def schedule(
        self,
        cron: str,
        wf: Workflow,
        input: Mapping[str, Any] | None = None,
        *,
        name: str | None = None,
        enabled: bool = True,
        queue: str = "default",
        priority: int = 0,
        tenant: str | None = None,
        timezone: str = "UTC",
    ) -> Schedule:
        """Start a run of ``wf`` at every slot of ``cron``; see ``Runtime.schedule``."""
        return self._bridge.call(
            self.runtime.schedule(
                cron,
                wf,
                input,
                name=name,
                enabled=enabled,
                queue=queue,
                priority=priority,
                tenant=tenant,
                timezone=timezone,
            )
        )

    def unschedule(self, name: str) -> bool:
        """Remove the schedule ``name``; see ``Runtime.unschedule``."""
        return self._bridge.call(self.runtime.unschedule(name))

    # -- waiting and reading ------------------------------------------------------------------
    def wait(self, run_id: str, timeout: float | None = None) -> RunResult:
        """Until the run completes, fails, is cancelled, or parks (ESCALATED)."""
        return self._bridge.call(self.runtime.wait(run_id, timeout))

    def get_run(self, run_id: str) -> RunRecord:
        return self._bridge.call(self.runtime.get_run(run_id))

    def list_runs(self, **filters: Any) -> list[RunRecord]:
        """Runs, newest first: the store's filters, and ``thread_id`` (a thread's runs)."""
        return self._bridge.call(self.runtime.list_runs(**filters))

    def get_state(
        self, run_id: str, step: int | None = None, *, run: RunRecord | None = None
    ) -> dict[str, Any]:
        """The state after ``step`` (default: the last committed step)."""
        return self._bridge.call(self.runtime.get_state(run_id, step, run=run))

    def history(
        self, run_id: str, *, after_step: int | None = None, limit: int | None = None
    ) -> list[StepInfo]:
        """The run's committed steps in order (or a page of them); see ``Runtime.history``."""
        return self._bridge.call(self.runtime.history(run_id, after_step=after_step, limit=limit))

    def events(self, run_id: str, *, follow: bool = False) -> list[Event]:
        """The run's events as a list: the persisted log, and (``follow``) the live events until
        the run settles. ``iter_events`` yields them one by one as they happen."""
        return list(self.iter_events(run_id, follow=follow))

    def iter_events(self, run_id: str, *, follow: bool = True) -> Iterator[Event]:
        """The run's events one at a time, as ``Runtime.events`` yields them (``follow``: live,
        until the run settles). Leaving the loop early stops the underlying stream."""
        return self._bridge.iterate(self.runtime.events(run_id, follow=follow))

    # -- human in the loop ----------------------------------------------------------------------
    @overload
    def resume(
        self,
        run_id: str,
        value: Any = ...,
        *,
        answers: Mapping[str, Any] | None = ...,
        max_steps: int | None = ...,
        actor: str = ...,
        wait: Literal[True] = ...,
        execute: bool = ...,
        interrupt_id: str | None = ...,
        allow_version_change: bool = ...,
    ) -> RunResult: ...
    @overload
    def resume(
        self,
        run_id: str,
        value: Any = ...,
        *,
        answers: Mapping[str, Any] | None = ...,
        max_steps: int | None = ...,
        actor: str = ...,
        wait: Literal[False],
        execute: bool = ...,
        interrupt_id: str | None = ...,
        allow_version_change: bool = ...,
    ) -> SyncRunHandle: ...
    @overload
    def resume(
        self,
        run_id: str,
        value: Any = ...,
        *,
        answers: Mapping[str, Any] | None = ...,
        max_steps: int | None = ...,
        actor: str = ...,
        wait: bool = ...,
        execute: bool = ...,
        interrupt_id: str | None = ...,
        allow_version_change: bool = ...,
    ) -> RunResult | SyncRunHandle: ...
    def resume(
        self,
        run_id: str,
        value: Any = _UNSET,
        *,
        answers: Mapping[str, Any] | None = None,
        max_steps: int | None = None,
        actor: str = "user",
        wait: bool = True,
        execute: bool = True,
        interrupt_id: str | None = None,
        allow_version_change: bool = False,
    ) -> RunResult | SyncRunHandle:
        """Continue an ESCALATED run or retry a FAILED one; see ``Runtime.resume``. Returns the
        result (``wait=True``) or a handle to wait on."""
        args = () if value is _UNSET else (value,)
        out = self._bridge.call(
            self.runtime.resume(
                run_id,
                *args,
                answers=answers,
                max_steps=max_steps,
                actor=actor,
                wait=wait,
                execute=execute,
                interrupt_id=interrupt_id,
                allow_version_change=allow_version_change,
            )
        )
        return SyncRunHandle(self, out) if isinstance(out, RunHandle) else out

    def cancel(self, run_id: str, *, reason: str = "", actor: str = "user") -> RunRecord:
        """Cancel a run that has not finished, wherever it executes."""
        return self._bridge.call(self.runtime.cancel(run_id, reason=reason, actor=actor))

    # -- retries and the dead letter ---------------------------------------------------------
    def retry(self, run_id: str, *, actor: str = "user") -> SyncRunHandle:
        """Put a FAILED run back in the queue for any worker; see ``Runtime.retry``."""
        return SyncRunHandle(self, self._bridge.call(self.runtime.retry(run_id, actor=actor)))

    def requeue(
        self,
        *,
        dead_letter: bool = True,
        workflow: str | None = None,
        queue: str | None = None,
        limit: int | None = None,
        actor: str = "user",
    ) -> list[str]:
        """Requeue FAILED (by default dead-lettered) runs in bulk; see ``Runtime.requeue``."""
        return self._bridge.call(
            self.runtime.requeue(
                dead_letter=dead_letter, workflow=workflow, queue=queue, limit=limit, actor=actor
            )
        )

    def upgrade(self, run_id: str, *, actor: str = "user", dry_run: bool = False) -> Upgrade:
        """Move an unfinished run to the workflow version registered now; see
        ``Runtime.upgrade``."""
        return self._bridge.call(self.runtime.upgrade(run_id, actor=actor, dry_run=dry_run))

    def upgrade_all(
        self, workflow: str, *, actor: str = "user", dry_run: bool = False
    ) -> tuple[list[Upgrade], list[tuple[str, str]]]:
        """``upgrade`` every unfinished run of ``workflow``; see ``Runtime.upgrade_all``."""
        return self._bridge.call(self.runtime.upgrade_all(workflow, actor=actor, dry_run=dry_run))

    # -- time travel and retention -----------------------------------------------------------
    def fork(
        self,
        run_id: str,
        step: int,
        patch: Mapping[str, Any] | None = None,
        *,
        new_run_id: str | None = None,
        max_steps: int | None = None,
        execute: bool = True,
        actor: str = "user",
    ) -> SyncRunHandle:
        """A new run that continues from ``step`` of ``run_id`` with ``patch`` applied."""
        handle = self._bridge.call(
            self.runtime.fork(
                run_id,
                step,
                patch,
                new_run_id=new_run_id,
                max_steps=max_steps,
                execute=execute,
                actor=actor,
            )
        )
        return SyncRunHandle(self, handle)

    def prune(self, run_id: str, keep_last: int) -> int:
        """Keep only the last ``keep_last`` checkpoints of a run."""
        return self._bridge.call(self.runtime.prune(run_id, keep_last))

    def purge(self, older_than: float, *, dry_run: bool = False) -> int:
        """Delete finished runs last updated more than ``older_than`` seconds ago, whole
        families only (see ``Runtime.purge``)."""
        return self._bridge.call(self.runtime.purge(older_than, dry_run=dry_run))


async def _open(store: RunStore | str | None, options: dict[str, Any]) -> Runtime:
    return await Runtime(store, **options).open()
