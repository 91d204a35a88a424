"""The Runtime's control of runs: resume (humans in the loop), cancel, and retries and the
dead letter (see ``tether.graph.run_retry``).

``RunControl`` is mixed into ``tether.graph.runtime.Runtime``.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, NamedTuple, cast

from tether.core.capabilities import has_capability
from tether.core.clock import Clock
from tether.core.errors import (
    IllegalTransitionError,
    InvalidInputError,
    LeaseLostError,
    RunNotFoundError,
    RunStateError,
)
from tether.core.lifecycle import FINISHED, RunStatus
from tether.graph import requeue
from tether.graph import upgrade as upgrading
from tether.graph.builder import Workflow
from tether.graph.events import lifecycle_event
from tether.graph.extensions import run_cancelled
from tether.graph.history import SnapshotTracker
from tether.graph.interrupt_timeout import cancel_interrupt_timers, has_interrupt_timers
from tether.graph.results import RunHandle, RunResult
from tether.graph.resume import (  # imported up front: not on a resume's clock
    prepare_resume,
    writes_nothing_first,
)
from tether.graph.state import check_max_steps, check_storable, check_text
from tether.graph.upgrade import Upgrade
from tether.graph.version import VERSION_KEY, check_run_version
from tether.observability.run_trace import emit_workflow_span
from tether.store.protocol import LeaseCommit, RunStore
from tether.store.types import Checkpoint, Commit, Event, Lease, RunRecord

if TYPE_CHECKING:
    from tether.graph.runtime import Runtime

_MISSING: Any = object()
_Loaded = tuple[dict[str, Any], Checkpoint, SnapshotTracker]
"""A run's state, its last checkpoint and snapshot tracker (``Runtime._load``)."""


class _Answer(NamedTuple):
    """What a ``resume`` call asked: its answer and how to go on."""

    value: Any
    answers: Mapping[str, Any] | None
    max_steps: int | None
    actor: str
    execute: bool
    allow_version_change: bool


_Resumed = tuple[RunRecord, int, _Loaded | None, bool]
"""A committed resume: the run, its lease token, its state when it executes here, and
whether it waited for an interrupt with a timeout."""


def _resumable(run: RunRecord) -> RunRecord:
    if run.status not in (RunStatus.ESCALATED, RunStatus.FAILED):
        raise RunStateError(
            f"run {run.run_id} is {run.status.value}; only ESCALATED or FAILED runs can be resumed"
        )
    return run


class RunControl:
    """Resume, cancel, retry and requeue runs."""

    store: RunStore
    clock: Clock
    owner: str
    lease_ttl: float
    _tasks: dict[str, asyncio.Task[RunResult | None]]
    _resuming: set[str]
    _refused: dict[str, float]

    if TYPE_CHECKING:

        async def _ensure_open(self) -> None: ...

        def workflow_for(self, run: RunRecord) -> Workflow: ...

        async def _load(
            self, run: RunRecord
        ) -> tuple[dict[str, Any], Checkpoint, SnapshotTracker]: ...

        def _spawn(
            self,
            wf: Workflow,
            run: RunRecord,
            token: int,
            state: dict[str, Any],
            cp: Checkpoint,
            tracker: SnapshotTracker,
        ) -> None: ...

    # -- human in the loop -----------------------------------------------------------------
    async def resume(
        self,
        run_id: str,
        value: Any = _MISSING,
        *,
        answers: Mapping[str, Any] | None = None,
        max_steps: int | None = None,
        actor: str = "user",
        wait: bool = True,
        execute: bool = True,
        interrupt_id: str | None = None,
        allow_version_change: bool = False,
    ) -> RunResult | RunHandle:
        """Continue an ESCALATED run (answer its interrupts, grant steps after a step-limit trip,
        settle an effect of unknown outcome) or retry a FAILED one from its last checkpoint.

        Answers are checked once this runtime holds the run: an answer addressed to an
        interrupt that is no longer pending (``answers={id: ...}``, or ``value`` with
        ``interrupt_id=id``, the id from ``result.interrupts``) raises RunStateError instead
        of answering whatever the run waits for now. A plain ``value`` answers the single
        pending interrupt, whichever it is.

        A run whose workflow changed structure since it started (another version is registered
        under its name) is refused with WorkflowVersionError; ``allow_version_change=True``
        continues it with the new workflow and records the new version.

        With ``execute=False`` the answer is recorded and the run is left ACTIVE and unowned,
        for any worker (``recover=True``) to pick up; the call returns a handle at once.
        """
        await self._ensure_open()
        check_storable(value=None if value is _MISSING else value, answers=answers)
        check_text(interrupt_id=interrupt_id, actor=actor)
        check_max_steps(max_steps)
        if interrupt_id is not None:
            if answers is not None or value is _MISSING:
                raise InvalidInputError(
                    "interrupt_id names the interrupt that `value` answers: pass it with a value "
                    "and without answers (or use answers={interrupt_id: value})"
                )
            answers, value = {interrupt_id: value}, _MISSING
        # acquire_lease succeeds for an owner that already holds the run, so two resumes in
        # this runtime must be told apart here, before either touches the store
        if run_id in self._resuming or run_id in self._tasks:
            raise RunStateError(f"run {run_id} is being resumed or executed here right now")
        self._resuming.add(run_id)
        try:
            seen = _resumable(await self.store.get_run(run_id))
            wf = self.workflow_for(seen)
            check_run_version(seen, wf, allow_change=allow_version_change)
            ask = _Answer(value, answers, max_steps, actor, execute, allow_version_change)
            done = None
            if (
                seen.owner is None
                and writes_nothing_first(seen)
                and has_capability(self.store, LeaseCommit)
            ):
                done = await self._resume_in_one_write(seen, wf, ask)
                if done is None:  # leased or written since it was read: read it again
                    seen = _resumable(await self.store.get_run(run_id))
                    wf = self.workflow_for(seen)
                    check_run_version(seen, wf, allow_change=allow_version_change)
            if done is None:
                done = await self._resume_leased(seen, wf, ask)
            run, token, loaded, timed = done
            if timed:  # answered: its timeouts must not fire (one that does finds it stale)
                await cancel_interrupt_timers(self.store, run_id)
            if loaded is not None:
                self._spawn(wf, run, token, *loaded)
        finally:
            self._resuming.discard(run_id)
        handle = RunHandle(cast("Runtime", self), run_id, False)
        return await handle.wait() if (wait and execute) else handle

    async def _resume_in_one_write(
        self,
        seen: RunRecord,
        wf: Workflow,
        ask: _Answer,
    ) -> _Resumed | None:
        """The lease and the resume's commit in one write (``LeaseCommit``), for a run that
        was unowned when read and whose resume writes nothing before its commit: the commit
        is prepared from the run as read, and lands only while the run is still unowned under
        the token read (no lease holder and no administrative write came in between), so the
        answer is checked against what the run waits for when it lands. None when the run
        moved on meanwhile: nothing was written."""
        token = seen.lease_token + 1
        run = copy.copy(seen)  # as it will stand under the lease
        run.owner, run.lease_token = self.owner, token
        run.lease_expires_at = self.clock.now() + self.lease_ttl
        loaded, commit, timed = await self._resume_commit(run, wf, token, ask)
        commit.base = seen  # fenced by the token read, and its event sequence
        store = cast(LeaseCommit, self.store)
        try:
            done = await store.lease_and_commit(
                seen.run_id, self.owner, self.lease_ttl, seen.lease_token, commit
            )
        except LeaseLostError:  # pragma: no cover - refused before writing: None instead
            return None
        if done is None:
            return None
        return done, token, loaded, timed

    async def _resume_leased(
        self,
        seen: RunRecord,
        wf: Workflow,
        ask: _Answer,
    ) -> _Resumed:
        """Take the lease, read the run again under it, prepare and commit the resume."""
        run_id = seen.run_id
        lease = await self.store.acquire_lease(run_id, self.owner, self.lease_ttl)
        if lease is None:
            raise RunStateError(f"run {run_id} is being resumed by another worker right now")
        try:
            # the answer must be checked against what the run waits for now, under the
            # lease: another resume may have landed since the read above
            run = await self._reread_for_resume(seen, lease)
            loaded, commit, timed = await self._resume_commit(run, wf, lease.token, ask)
            commit.base = run  # read under this lease: the store reads back only its head
            try:
                run = await self.store.commit(run_id, lease.token, commit)
            except LeaseLostError:  # a cancel (an admin write) took the run meanwhile
                raise await self._lost_to(run_id) from None
        except BaseException:
            await self.store.release_lease(run_id, lease.token)
            raise
        return run, lease.token, loaded, timed

    async def _resume_commit(
        self,
        run: RunRecord,
        wf: Workflow,
        token: int,
        ask: _Answer,
    ) -> tuple[_Loaded | None, Commit, bool]:
        """The run's state (to execute it here) and the commit that resumes it (its base not
        set), and whether it waits for an interrupt with a timeout."""
        run_id = run.run_id
        old = check_run_version(run, wf, allow_change=ask.allow_version_change)
        loaded = await self._load(run) if ask.execute else None
        commit = await self._prepare_resume(
            run,
            token,
            ask.value,
            ask.answers,
            ask.max_steps,
            ask.actor,
            checkpoint=loaded[1] if loaded is not None else None,
        )
        if old is not None:
            commit.metadata = {**(commit.metadata or {}), VERSION_KEY: wf.version}
            commit.events.append(
                Event(
                    run_id,
                    0,
                    "workflow_version_changed",
                    self.clock.now(),
                    None,
                    None,
                    {"from": old, "to": wf.version, "actor": ask.actor},
                )
            )
        commit.release_lease = not ask.execute
        return loaded, commit, has_interrupt_timers(run)

    async def _lost_to(self, run_id: str) -> RunStateError:
        """What a resume whose commit lost its lease says: what the run became, not the
        fencing token (an admin write, a cancel, took it between the lease and the write)."""
        try:
            now = await self.store.get_run(run_id)
        except RunNotFoundError:
            return RunStateError(f"run {run_id} was deleted while this resume was applied")
        return RunStateError(
            f"run {run_id} became {now.status.value} while this resume was applied: nothing "
            "was resumed (read the run to see where it stands)"
        )

    async def _reread_for_resume(self, seen: RunRecord, lease: Lease) -> RunRecord:
        """The run as it stands under ``lease``. Read again, unless ``seen`` (read just before
        acquiring) provably still holds: it had no owner, and the acquire bumped its token by
        exactly one, so no lease holder and no administrative write (both move the token)
        came in between; only the lease fields changed, and those are known."""
        if seen.owner is None and lease.token == seen.lease_token + 1:
            run = copy.copy(seen)
            run.owner, run.lease_token = lease.owner, lease.token
            run.lease_expires_at = lease.expires_at
            return run
        return _resumable(await self.store.get_run(seen.run_id))

    async def _prepare_resume(
        self,
        run: RunRecord,
        token: int,
        value: Any,
        answers: Mapping[str, Any] | None,
        max_steps: int | None,
        actor: str,
        checkpoint: Checkpoint | None = None,
    ) -> Commit:
        rt = cast("Runtime", self)
        return await prepare_resume(
            rt, run, token, value, answers, max_steps, actor, _MISSING, checkpoint
        )

    async def cancel(self, run_id: str, *, reason: str = "", actor: str = "user") -> RunRecord:
        """Cancel a run that has not finished, wherever it executes: the owner's next write is
        rejected (its fencing token is bumped) and it stops."""
        await self._ensure_open()
        check_text(reason=reason, actor=actor)
        task = self._tasks.get(run_id)
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        attempts = 5
        for attempt in range(1, attempts + 1):
            run = await self.store.get_run(run_id)
            if run.status in (RunStatus.COMPLETED, RunStatus.CANCELLED, RunStatus.FAILED):
                raise RunStateError(f"run {run_id} is already {run.status.value}")
            ev = lifecycle_event(run_id, self.clock.now(), run.status, RunStatus.CANCELLED, reason)
            try:
                done = await self.store.commit(
                    run_id,
                    None,
                    Commit(
                        status=RunStatus.CANCELLED,
                        transitions=[
                            (run.status, RunStatus.CANCELLED, actor, reason or "cancelled")
                        ],
                        events=[ev],
                    ),
                )
                cast("Runtime", self).bus.show_observers(ev)  # metrics: it finished here
                await self._cancel_children(run_id, actor)
                await run_cancelled(self, done)  # planes above: approvals void their requests
                emit_workflow_span(done, done.workflow, RunStatus.CANCELLED)  # when tracing
                return done
            except IllegalTransitionError:  # the status moved under us; read it again
                if attempt == attempts:
                    raise
                await asyncio.sleep(0.01)
        raise AssertionError("unreachable")  # pragma: no cover

    # -- workflow versions (see tether.graph.upgrade) ---------------------------------------
    async def upgrade(self, run_id: str, *, actor: str = "user", dry_run: bool = False) -> Upgrade:
        """Move an unfinished (or FAILED: a retry continues it) run to the version of its
        workflow registered here now (its workflow changed shape since it started, and no
        worker of the old code is left): records
        the new version and a ``workflow_version_changed`` event; any worker of the new code then
        continues it from its last checkpoint. Refused with WorkflowVersionError when the new
        structure cannot continue it (a node or join it needs is gone, a state field it holds is
        gone), RunStateError while a worker runs it under a live lease or once it finished.
        ``dry_run``: check only. A run already on the registered version is left as it is."""
        await self._ensure_open()
        done = await upgrading.upgrade(cast("Runtime", self), run_id, actor=actor, dry_run=dry_run)
        if done.changed:
            self._refused.pop(run_id, None)
            self._wake_claims()
        return done

    async def upgrade_all(
        self, workflow: str, *, actor: str = "user", dry_run: bool = False
    ) -> tuple[list[Upgrade], list[tuple[str, str]]]:
        """``upgrade`` every unfinished run of ``workflow`` recorded with another version
        (FAILED ones by id only); returns the runs moved (with ``dry_run``: those that would
        be) and ``(run_id, why)`` for each that could not be."""
        await self._ensure_open()
        moved, refused = await upgrading.upgrade_all(
            cast("Runtime", self), workflow, actor=actor, dry_run=dry_run
        )
        if moved and not dry_run:
            for done in moved:
                self._refused.pop(done.run_id, None)
            self._wake_claims()
        return moved, refused

    # -- retries and the dead letter (see tether.graph.run_retry) ----------------------------
    async def retry(self, run_id: str, *, actor: str = "user") -> RunHandle:
        """Put a FAILED run (dead-lettered or not) back in the queue: PLANNED, claimable at once
        by any worker that serves its workflow (``recover=True``), its attempts reset; it
        resumes from its last checkpoint. To run it in this process instead: ``resume``."""
        await self._ensure_open()
        await requeue.requeue_one(self.store, self.clock, run_id, actor)
        self._wake_claims()
        return RunHandle(cast("Runtime", self), run_id, False)

    async def requeue(
        self,
        *,
        dead_letter: bool = True,
        workflow: str | None = None,
        queue: str | None = None,
        limit: int | None = None,
        actor: str = "user",
    ) -> list[str]:
        """Requeue FAILED runs in bulk, as ``retry`` does one: the dead-lettered ones (all FAILED
        ones with ``dead_letter=False``), of one workflow or queue, at most ``limit``. Paged and
        idempotent; returns the ids requeued."""
        await self._ensure_open()
        done = await requeue.requeue_many(
            self.store,
            self.clock,
            actor,
            dead_letter=dead_letter,
            workflow=workflow,
            queue=queue,
            limit=limit,
        )
        if done:
            self._wake_claims()
        return done

    def _wake_claims(self) -> None:
        wake = getattr(self, "wake", None)  # the queue's wake-up hook, where there is one
        if callable(wake):
            wake()

    async def _cancel_children(self, run_id: str, actor: str) -> None:
        """Subgraph child runs die with their parent (forks, also linked, live on)."""
        for child in await self.store.list_runs(parent_run_id=run_id, limit=10_000):
            if child.metadata.get("subgraph_of") != run_id or child.status in FINISHED:
                continue
            with contextlib.suppress(RunStateError):
                await self.cancel(child.run_id, reason=f"parent {run_id} cancelled", actor=actor)
