"""The Runtime: start, wait, resume, cancel, fork and inspect runs; own leases; recover orphans."""

from __future__ import annotations

import asyncio
import contextlib
import copy
import logging
import math
import time
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Iterable, Mapping
from typing import Any

from tether.core import serde
from tether.core.clock import SYSTEM_CLOCK, Clock
from tether.core.errors import (
    ConfigurationError,
    IdempotencyConflictError,
    IllegalTransitionError,
    InvalidInputError,
    LeaseLostError,
    RunNotFoundError,
    RunStateError,
    WorkflowConflictError,
    WorkflowVersionError,
)
from tether.core.ids import KEY_FORMAT, KEY_FORMAT_KEY
from tether.core.ids import new_run_id as make_run_id
from tether.core.lifecycle import FINISHED, PARKED, RunStatus
from tether.core.liveness import current_incarnation, dead_owners, worker_id
from tether.core.refs import find_ref, load_ref
from tether.graph import requeue
from tether.graph.builder import Workflow
from tether.graph.context import RunContext
from tether.graph.events import EventBus, Hop, lifecycle_event, lifecycle_events
from tether.graph.heartbeat import LeaseKeeper, lease_lost
from tether.graph.history import SnapshotPolicy, SnapshotTracker, replay
from tether.graph.interrupt_timeout import cancel_interrupt_timers, has_interrupt_timers
from tether.graph.loop import RunDrained, RunLoop, phase_status
from tether.graph.planner import entry_tasks
from tether.graph.queueing import check_queues, placement
from tether.graph.results import RunHandle, RunResult, StepInfo
from tether.graph.resume import prepare_resume  # imported up front: not on a resume's clock
from tether.graph.retention import Retention
from tether.graph.run_retry import MAX_ATTEMPTS_KEY, check_max_attempts
from tether.graph.schedules import fire_schedules, put_schedule
from tether.graph.state import StateSchema, reducers_from_names
from tether.graph.subgraph import run_subgraph
from tether.graph.threads import (
    NOT_FORKED,
    THREAD_KEY,
    check_thread_id,
    list_thread_runs,
    thread_start,
)
from tether.graph.threads import refused as thread_refused
from tether.graph.timers import fire_timers, take_back, timer_loop
from tether.graph.version import VERSION_KEY, check_run_version, differences
from tether.graph.wake import WakeSignal
from tether.store.protocol import RunStore, ThreadedRenewal
from tether.store.queue_limits import QueueControl
from tether.store.timers import Schedule, TimerStore
from tether.store.transient import OutageLog, first_line, is_transient
from tether.store.types import Checkpoint, Commit, Event, Lease, RunRecord
from tether.store.wakeup import WakeSource

log = logging.getLogger("tether.runtime")
_MISSING: Any = object()
_SETTLED = FINISHED | PARKED
EVENT_PAGE = 1000
"""Events read from the store per call by ``Runtime.events``."""


DeadOwnerSource = Callable[[list[str]], Awaitable[Collection[str]]]
"""Given the owners of unexpired leases, the ones known dead by other means (a worker registry
whose heartbeat row went stale); see ``Runtime.add_dead_owner_source``."""

CLAIM_BATCH = 16
"""Runs the claim loop claims at most per statement (fewer when fewer slots are free)."""

DEAD_SCAN_INTERVAL = 1.0
"""Seconds between two background looks for dead lease owners."""

STARTUP_GRACE = 0.05
"""Seconds the first recovery sweep waits after ``open()``: the first operation (a resume in a
fresh process, a start) has the event loop to itself instead of sharing it with the sweep's
queries, and recovery still begins at once. (The lease keeper's thread starts at once: a node
that blocks the loop from the first step on must not stop its renewals.)"""


def _resumable(run: RunRecord) -> RunRecord:
    if run.status not in (RunStatus.ESCALATED, RunStatus.FAILED):
        raise RunStateError(
            f"run {run.run_id} is {run.status.value}; only ESCALATED or FAILED runs can be resumed"
        )
    return run


class Runtime:
    """Runs workflows durably against a RunStore.

    ``async with Runtime("sqlite:///runs.db", workflows=[wf]) as rt:`` opens the store, renews
    leases of the runs it executes, and (``recover=True``) picks up any ACTIVE run of a known
    workflow whose owner died, once its lease expires.

    Leases are renewed ``lease_ttl / 3`` apart, all in one statement, from a heartbeat thread
    with a database connection of its own (SQLite files, PostgreSQL), so a busy or blocked event
    loop cannot let a live run's lease expire. Recovery claims at most as many runs as the
    runtime has free slots (``max_concurrent_runs`` minus the runs executing here), orphaned
    runs first. A runtime that loses a lease anyway logs a WARNING and stops that run; a
    ``wait()`` on it in this process raises ``LeaseLostError`` (or returns the result, when the
    run already settled elsewhere).

    ``owner`` is the worker id, a stable name for this worker (default ``$TETHER_WORKER_ID``,
    else the host name). Leases are held under ``self.owner``: the worker id plus this
    process's incarnation (host, boot id, pid namespace, pid, start time, a random nonce; see
    ``tether.core.liveness``). Recovery treats the leases of an owner that is provably dead
    (same kernel boot and pid namespace as this process, and its pid gone or reused) as
    expired, so a worker restarted after ``kill -9``, or any other runtime on that host,
    resumes its runs at once instead of after ``lease_ttl``. A live process is never robbed,
    even one configured with the same worker id; an owner on another host, from before a
    reboot or in another container's pid namespace cannot be proven dead, and its runs are
    claimed when its lease expires.
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
        if isinstance(store, str) or store is None:
            from tether.store.url import open_store

            store = open_store(store or "memory://")
        if lease_ttl <= 0 or max_steps < 1 or poll_interval <= 0:
            raise ConfigurationError("lease_ttl and poll_interval must be > 0, max_steps >= 1")
        if isinstance(max_concurrent_runs, bool) or not isinstance(max_concurrent_runs, int):
            raise ConfigurationError(
                f"max_concurrent_runs must be an int, got {type(max_concurrent_runs).__name__}"
            )
        if max_concurrent_runs < 1:
            raise ConfigurationError(
                f"max_concurrent_runs must be >= 1 (got {max_concurrent_runs}): it is how many "
                "runs recovery lets this runtime execute at once"
            )
        self.max_concurrent_runs = max_concurrent_runs
        self.queues: tuple[str, ...] | None = check_queues(queues)
        """The queues this runtime claims runs from (None: every queue)."""
        self._wake = WakeSignal(self.queues, clock)
        self._unsubscribe: Callable[[], None] | None = None
        self.store: RunStore = store
        self.incarnation = current_incarnation(worker_id(owner))
        self.worker_id = self.incarnation.worker
        self.owner = self.incarnation.encode()
        """The lease owner string: worker id and process incarnation."""
        self._dead_scanned = -math.inf
        self._dead_seen: set[str] = set()
        self._dead_sources: list[DeadOwnerSource] = []
        self.draining = False
        """Set by ``drain()``: no more claims, and each run stops at its next step boundary."""
        self.lease_ttl = lease_ttl
        self.max_steps = max_steps
        self.recover = recover
        self.poll_interval = poll_interval
        self.snapshots = snapshots or SnapshotPolicy()
        self.retention = retention or Retention()
        self.deps: Mapping[str, Any] = dict(deps or {})
        self.clock = clock
        self.bus = EventBus()
        self._workflows: dict[str, Workflow] = {}
        self._tasks: dict[str, asyncio.Task[RunResult | None]] = {}
        self._leases: dict[str, int] = {}
        """run_id -> fencing token of every lease held; the heartbeat thread copies it."""
        self._keeper: LeaseKeeper | None = None
        self._lost: weakref.WeakKeyDictionary[asyncio.Task[Any], LeaseLostError] = (
            weakref.WeakKeyDictionary()
        )
        self._lost_checks: set[asyncio.Task[None]] = set()
        self._claiming = asyncio.Lock()
        self._background: list[asyncio.Task[Any]] = []
        self._resuming: set[str] = set()
        self._refused: set[str] = set()
        """Runs whose recorded workflow version differs from the one registered here: never
        claimed again by this runtime (a runtime with the matching code, or a human, must act)."""
        self._sweep_outage = OutageLog(
            log, f"the store (background sweeps of {self.owner})", "the sweeps go on meanwhile"
        )
        self._opened = False
        for wf in workflows:
            self.register(wf)

    # -- lifecycle of the runtime ----------------------------------------------------------
    async def open(self) -> Runtime:
        if not self._opened:
            try:
                await self.store.setup()
            except BaseException:
                with contextlib.suppress(Exception):
                    await self.store.close()
                raise
            self._opened = True
            self._background.append(asyncio.create_task(self._heartbeat()))
            if self.recover and isinstance(self.store, WakeSource):
                self._wake.bind()
                self._unsubscribe = self.store.subscribe_wakeups(self._wake.hear)
            if self.recover:
                self._background.append(asyncio.create_task(self._recovery()))
                self._background.append(asyncio.create_task(timer_loop(self)))
            if self.retention.finished_ttl is not None:
                self._background.append(asyncio.create_task(self._sweep()))
        return self

    async def close(self) -> None:
        """Stop background work; runs still executing here are left for another worker
        (their leases are released so recovery can start at once)."""
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        for t in (*self._background, *self._lost_checks):
            t.cancel()
        tasks = list(self._tasks.values())
        held = dict(self._leases)  # a cancelled run forgets its lease on its way out
        for t in tasks:
            t.cancel()
        await asyncio.gather(*self._background, *self._lost_checks, *tasks, return_exceptions=True)
        self._background.clear()
        for run_id, token in held.items():
            with contextlib.suppress(Exception):
                await self.store.release_lease(run_id, token)
        self._leases.clear()
        if self._opened:
            await self.store.close()
        self._opened = False

    async def __aenter__(self) -> Runtime:
        return await self.open()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def _ensure_open(self) -> None:
        if not self._opened:
            await self.open()

    def register(self, wf: Workflow) -> Workflow:
        if not isinstance(wf, Workflow):
            raise ConfigurationError(
                f"expected a compiled Workflow (graph.compile()), got {type(wf).__name__}"
            )
        known = self._workflows.get(wf.name)
        if known is not None and known is not wf and known.version != wf.version:
            raise WorkflowConflictError(
                f"two different workflows are named {wf.name!r} (version {known.version}"
                f"{f' from {known.ref}' if known.ref else ''} and version {wf.version}"
                f"{f' from {wf.ref}' if wf.ref else ''}; they differ in "
                f"{', '.join(differences(known, wf))}). A runtime runs one workflow per name, "
                "and a run resumes with the workflow of its name: give each its own, "
                "Graph(State, name='...') (the default name is the state class's)"
            )
        self._workflows[wf.name] = wf
        if wf.ref is None:
            wf.ref = find_ref(wf, wf.graph.module)
        for spec in wf.nodes.values():
            if spec.subgraph is not None:
                self.register(spec.subgraph)
        return wf

    def workflow_for(self, run: RunRecord) -> Workflow:
        wf = self._workflows.get(run.workflow)
        if wf is not None:
            return wf
        ref = run.metadata.get("workflow_ref")
        if ref:
            try:
                obj = load_ref(ref)
            except ConfigurationError as exc:
                raise ConfigurationError(
                    f"run {run.run_id} uses workflow {run.workflow!r}: {exc}; pass the workflow "
                    "with Runtime(workflows=[...]) (CLI: --app module:workflow)"
                ) from None
            if isinstance(obj, Workflow):
                return self.register(obj)
        raise ConfigurationError(
            f"run {run.run_id} uses workflow {run.workflow!r}, which this runtime does not know; "
            "pass it with Runtime(workflows=[...]) (CLI: --app module:workflow)"
        )

    # -- starting -------------------------------------------------------------------------
    async def start(
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
    ) -> RunHandle:
        """Create a run and (``execute=True``) start executing it in this process.

        With ``execute=False`` the run is only enqueued (PLANNED, unowned): any runtime with
        ``recover=True`` that knows the workflow and serves its ``queue`` claims it, higher
        ``priority`` first, first come first served within one priority; ``tenant`` names whose
        run it is (for per-tenant limits). ``delay`` (seconds) enqueues it to be claimed no
        sooner than that from now (it implies ``execute=False``). An enqueued run is refused
        with QueueFullError when its queue is at its depth limit (``store.set_queue_limit``).
        The same ``idempotency_key`` twice returns the first run; with a different input it
        raises IdempotencyConflictError.

        ``thread_id`` continues a conversation: the run starts from the final state of the
        thread's last completed run, the input applied through the reducers; a thread runs one
        run at a time (see ``tether.graph.threads``).

        ``max_attempts`` overrides the workflow's ``RunRetry.max_attempts`` for this run (a
        workflow without one retries this run under the default ``RunRetry``).
        """
        await self._ensure_open()
        self.register(wf)
        if max_steps is not None and max_steps < 1:
            raise InvalidInputError("max_steps must be >= 1")
        placed = placement(queue, priority, tenant, delay, self.clock.now())
        execute = execute and delay is None
        if not execute and isinstance(self.store, QueueControl):
            await self.store.check_queue_room(queue)  # backpressure: QueueFullError
        if max_attempts is not None:
            check_max_attempts(max_attempts)
            metadata = {**(metadata or {}), MAX_ATTEMPTS_KEY: max_attempts}
        if thread_id is not None:
            if idempotency_key is not None:
                raise InvalidInputError(
                    "idempotency_key cannot be combined with thread_id: a thread's runs carry "
                    "their own key, which keeps two runs of one thread from starting at once"
                )
            thread_id = check_thread_id(thread_id)
            turn = await thread_start(self, wf, thread_id, input)
            state, idempotency_key = turn.state, turn.idempotency_key
            metadata = {**(metadata or {}), THREAD_KEY: thread_id, "thread_base": turn.base_run_id}
        else:
            state = wf.schema.initial_state(input)
        tasks = entry_tasks(wf, state)
        meta = {
            "step_limit": max_steps or self.max_steps,
            "reducers": wf.schema.reducer_names,
            "workflow_ref": wf.ref,
            **(metadata or {}),
        }
        try:
            created_rec, created = await self._create_run(
                wf,
                RunRecord(
                    run_id=run_id or make_run_id(),
                    workflow=wf.name,
                    status=RunStatus.PLANNED,
                    input=dict(input) if input else None,
                    idempotency_key=idempotency_key,
                    input_hash=serde.fingerprint(input) if idempotency_key else None,
                    parent_run_id=parent_run_id,
                    parent_step=parent_step,
                    metadata=meta,
                    thread_id=thread_id,
                    **placed,
                ),
                state,
                tasks,
                received="submitted",
                planned=f"{len(tasks)} entry task(s)",
                actor=actor,
                execute=execute,
            )
        except IdempotencyConflictError:
            if thread_id is None:
                raise
            raise thread_refused(thread_id, "another run") from None
        if thread_id is not None and not created:
            raise thread_refused(thread_id, created_rec.run_id)
        return RunHandle(self, created_rec.run_id, created)

    async def _create_run(
        self,
        wf: Workflow,
        rec: RunRecord,
        state: dict[str, Any],
        tasks: list[dict[str, Any]],
        *,
        received: str,
        planned: str,
        actor: str,
        execute: bool,
        barriers: Mapping[str, list[str]] | None = None,
        checkpoint_meta: dict[str, Any] | None = None,
    ) -> tuple[RunRecord, bool]:
        """Write a new run (``start`` and ``fork``): its first checkpoint at ``rec.step`` with
        ``state`` and ``tasks`` to run next, the hops RECEIVED → PLANNED (→ the phase it starts
        in when ``execute``) with their lifecycle events, the workflow's version stamped in its
        metadata; then, if it was created and ``execute``, run it here under the new lease.
        ``rec`` brings the run's own fields; this fills in status, owner, lease and version."""
        now = self.clock.now()
        trs: list[Hop] = [
            (None, RunStatus.RECEIVED, actor, received),
            (RunStatus.RECEIVED, RunStatus.PLANNED, actor, planned),
        ]
        rec.status = RunStatus.PLANNED
        if execute:
            rec.status = phase_status(wf, tasks) if tasks else RunStatus.EXECUTING
            trs.append((RunStatus.PLANNED, rec.status, f"worker:{self.owner}", "started"))
            rec.owner, rec.lease_token, rec.lease_expires_at = self.owner, 1, now + self.lease_ttl
        rec.metadata = {**rec.metadata, VERSION_KEY: wf.version, KEY_FORMAT_KEY: KEY_FORMAT}
        blob = serde.dumps(state)
        cp = Checkpoint(
            rec.run_id,
            rec.step,
            [],
            tasks,
            serde.loads(blob),
            dict(barriers or {}),
            meta=checkpoint_meta or {},
        )
        events = lifecycle_events(rec.run_id, now, trs)
        created_rec, created = await self.store.create_run(rec, cp, trs, events)
        if created and execute:
            tracker = SnapshotTracker(self.snapshots)
            tracker.took(len(blob))
            self._spawn(wf, created_rec, created_rec.lease_token, state, cp, tracker, fresh=True)
        return created_rec, created

    async def submit(
        self, wf: Workflow, input: Mapping[str, Any] | None = None, **kw: Any
    ) -> RunHandle:
        """Enqueue a run for any worker (``start(..., execute=False)``)."""
        return await self.start(wf, input, execute=False, **kw)

    async def run(
        self, wf: Workflow, input: Mapping[str, Any] | None = None, **kw: Any
    ) -> RunResult:
        """Start a run and wait until it completes, fails, or parks (ESCALATED)."""
        handle = await self.start(wf, input, **kw)
        return await handle.wait()

    # -- execution -------------------------------------------------------------------------
    def _spawn(
        self,
        wf: Workflow,
        run: RunRecord,
        token: int,
        state: dict[str, Any],
        cp: Checkpoint,
        tracker: SnapshotTracker,
        *,
        fresh: bool = False,
    ) -> None:
        """``fresh``: the run never executed before (created here, or claimed for the first
        time): its journal of node writes is empty, not read before its first step."""
        self._leases[run.run_id] = token
        loop = RunLoop(self, wf, run, token, state, cp, tracker)
        loop.journal_empty = fresh
        task = asyncio.create_task(self._execute(loop), name=f"tether-run-{run.run_id}")
        self._tasks[run.run_id] = task
        task.add_done_callback(lambda _t: self._wake.slot_freed())

    async def _execute(self, loop: RunLoop) -> RunResult | None:
        run_id = loop.run.run_id
        try:
            rec = await loop.drive()
            if loop.parked_until is not None and not self.recover:
                self._take_back_when_due(run_id, loop.parked_until)
            if rec.status not in _SETTLED:  # handed back (a retry is due later): wait() follows
                return None  # it in the store, wherever and whenever it runs again
            keep = self.retention.keep_last
            if keep is not None and rec.status in FINISHED:
                try:
                    await self.prune(run_id, keep)
                except Exception:  # retention is housekeeping: never fail the run over it
                    log.exception("run %s: pruning to the last %d checkpoints failed", run_id, keep)
            result = RunResult(
                run_id, rec.status, loop.state, rec.step, rec.escalation, rec.error, rec
            )
            result.cause = loop.failure if rec.status is RunStatus.FAILED else None
            return result
        except RunDrained:
            return None  # handed back between two steps: another worker continues it
        except LeaseLostError:
            task = asyncio.current_task()
            if task is not None and task not in self._lost:  # the heartbeat did not say so first
                now = await self._get_run_or_none(run_id)
                self._lost[task] = self._lease_lost(run_id, loop.token, now)
            return None
        except Exception as exc:
            if is_transient(exc):
                # the store stayed unreachable longer than it retries: nothing is wrong with the
                # run, so it is not failed; it stays ACTIVE and recovery resumes it (here or
                # elsewhere) from its last checkpoint once its lease expires
                log.warning(
                    "run %s: stopped here, the store stayed unreachable (%s); recovery resumes "
                    "it once its lease expires",
                    run_id,
                    first_line(exc),
                )
                return None
            log.exception("run %s: runtime error", run_id)
            with contextlib.suppress(Exception):
                from tether.graph.context import error_dict

                await self.store.commit(
                    run_id,
                    loop.token,
                    Commit(
                        status=RunStatus.FAILED,
                        transitions=loop.transitions(RunStatus.FAILED, "runtime error"),
                        error=error_dict(exc, node=None),
                        set_error=True,
                        release_lease=True,
                        events=loop.take_events(),
                    ),
                )
            raise
        finally:
            self._leases.pop(run_id, None)
            if self._tasks.get(run_id) is asyncio.current_task():
                del self._tasks[run_id]

    async def _load(self, run: RunRecord) -> tuple[dict[str, Any], Checkpoint, SnapshotTracker]:
        chain = await self.store.load_chain(run.run_id, run.step)
        wf = self.workflow_for(run)
        state = replay(wf.schema, chain)
        tracker = SnapshotTracker(self.snapshots)
        tracker.took(len(serde.dumps(chain[0].snapshot)))
        for cp in chain[1:]:
            tracker.add(len(serde.dumps(cp.delta)) if cp.delta else 0)
        return state, chain[-1], tracker

    async def take_over(self, run: RunRecord, token: int, *, fresh: bool = False) -> None:
        """RunHost: execute ``run`` here from its last checkpoint under the lease ``token``
        (``fresh``: see ``_spawn``)."""
        wf = self.workflow_for(run)
        check_run_version(run, wf, allow_change=False)
        state, cp, tracker = await self._load(run)
        self._spawn(wf, run, token, state, cp, tracker, fresh=fresh)

    async def _heartbeat(self) -> None:
        """Renew every lease held here, ``lease_ttl / 3`` apart, in one statement: from a thread
        with its own connection when the store offers one (see ``heartbeat.LeaseKeeper``), else
        (in-process stores, whose peers share this event loop) from this task."""
        renewer = self.store.lease_renewer() if isinstance(self.store, ThreadedRenewal) else None
        if renewer is None:
            while True:
                await asyncio.sleep(self.lease_ttl / 3)
                await self._renew_now()
        loop = asyncio.get_running_loop()

        def on_lost(lost: dict[str, int]) -> None:  # called on the keeper's thread
            with contextlib.suppress(RuntimeError):  # the loop is closed: nobody to tell
                loop.call_soon_threadsafe(self._leases_lost, lost)

        keeper = LeaseKeeper(renewer, self.owner, self.lease_ttl, self._leases, on_lost)
        keeper.start()
        self._keeper = keeper
        try:
            await asyncio.Future()  # runs until close() (or a test) cancels the heartbeat
        finally:
            self._keeper = None
            keeper.stop()
            await asyncio.shield(asyncio.to_thread(keeper.join, 10.0))

    async def _renew_now(self) -> None:
        """One renewal round on the event loop (the heartbeat of in-process stores)."""
        leases = dict(self._leases)
        if not leases:
            return
        try:
            lost = await self.store.renew_leases(self.owner, leases, self.lease_ttl)
        except Exception:
            log.exception("renewing %d lease(s) of %s failed", len(leases), self.owner)
            return
        if lost:
            self._leases_lost({run_id: leases[run_id] for run_id in lost})

    def _leases_lost(self, lost: dict[str, int]) -> None:
        """The heartbeat found these leases lost: check each and stop the run if so."""
        for run_id, token in lost.items():
            if self._leases.get(run_id) == token:
                check = asyncio.create_task(self._check_lost(run_id, token))
                self._lost_checks.add(check)
                check.add_done_callback(self._lost_checks.discard)

    async def _check_lost(self, run_id: str, token: int) -> None:
        rec = await self._get_run_or_none(run_id)
        if rec is not None and rec.lease_token == token and rec.owner in (None, self.owner):
            return  # released here (the run finished or parked) or still ours: nothing lost
        if self._leases.get(run_id) != token:
            return  # the run already stopped here
        self._leases.pop(run_id, None)
        err = self._lease_lost(run_id, token, rec)
        task = self._tasks.get(run_id)
        if task is not None:
            self._lost[task] = err
            task.cancel()

    async def _get_run_or_none(self, run_id: str) -> RunRecord | None:
        try:
            return await self.store.get_run(run_id)
        except RunNotFoundError:
            return None
        except Exception:
            log.exception("run %s: could not read it after losing its lease", run_id)
            return None

    def _lease_lost(self, run_id: str, token: int, rec: RunRecord | None) -> LeaseLostError:
        return lease_lost(self.owner, run_id, token, rec)

    async def _recovery(self) -> None:
        await asyncio.sleep(min(STARTUP_GRACE, self.poll_interval))
        while True:
            started = time.monotonic()
            try:
                # listing lease owners costs a scan of the active leases: at most once a second
                due = time.monotonic() - self._dead_scanned >= DEAD_SCAN_INTERVAL
                await self._recover(CLAIM_BATCH, find_dead=due)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if not is_transient(exc):
                    log.exception("recovery sweep failed")
                else:  # one line per outage, not a traceback every poll_interval
                    self._sweep_outage.down(exc)
                await asyncio.sleep(self.poll_interval)
                continue
            self._sweep_outage.up(started)
            await self._wake.wait(self.poll_interval)  # a wake-up claims at once

    def wake(self) -> None:
        """Make the claim loop (``recover=True``) claim now instead of after ``poll_interval``.
        Stores announce submitted, released, resumed and due runs by themselves (in this
        process, and across processes on PostgreSQL by LISTEN/NOTIFY): call it when something
        else made runs claimable (a dead worker found by other means)."""
        self._wake.wake()

    async def _sweep(self) -> None:
        ttl = self.retention.finished_ttl
        assert ttl is not None
        while True:
            started = time.monotonic()
            try:
                await self.purge(ttl)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if not is_transient(exc):
                    log.exception("retention sweep failed")
                else:  # one line per outage (shared with the recovery sweep)
                    self._sweep_outage.down(exc)
            else:
                self._sweep_outage.up(started)
            await asyncio.sleep(self.retention.sweep_interval)

    # -- durable timers and cron schedules (graph.timers, graph.schedules) -----------------
    def _take_back_when_due(self, run_id: str, until: float) -> None:
        """A run parked by a durable sleep in a runtime that claims nothing (``recover=False``,
        e.g. ``wf.invoke``): this runtime takes it back when due, unless another did first."""
        task = asyncio.create_task(take_back(self, run_id, until))
        self._background.append(task)

        def done(t: asyncio.Task[None]) -> None:
            if t in self._background:
                self._background.remove(t)

        task.add_done_callback(done)

    async def fire_timers(self) -> int:
        """Fire the due timers (interrupt timeouts, ...) and cron slots this runtime can
        handle; a runtime with ``recover=True`` does so every ``poll_interval`` by itself.
        Returns how many fired here. A runtime that knows no workflow fires nothing (a timer's
        handler continues a run: another runtime that knows its workflow fires it)."""
        await self._ensure_open()
        if not self._workflows or self.draining:
            return 0
        return await fire_timers(self) + await fire_schedules(self, self._workflows)

    async def schedule(
        self,
        cron: str,
        wf: Workflow,
        input: Mapping[str, Any] | None = None,
        *,
        name: str | None = None,
        enabled: bool = True,
    ) -> Schedule:
        """Start a run of ``wf`` with ``input`` at every slot of ``cron`` (UTC; 5 fields, or 6
        with seconds last), exactly once per slot across every runtime on the store; the runs
        are enqueued for any runtime with ``recover=True`` that knows ``wf``. The schedule is
        stored under ``name`` (default: the workflow's name); scheduling it again with the
        same expression keeps its next slot. See ``tether.graph.schedules``."""
        await self._ensure_open()
        self.register(wf)
        return await put_schedule(self, cron, wf, input, name=name, enabled=enabled)

    async def recover_once(self, limit: int = 16) -> list[str]:
        """Claim ACTIVE runs of known workflows that nobody holds, and resume them here.

        Claims at most ``limit`` runs and never more than the free slots
        (``max_concurrent_runs`` minus the runs executing here), orphans first, never one of
        this runtime's own runs; the heartbeat renews the claimed leases from the claim on.
        Runs leased by an owner found provably dead on this host are claimed at once."""
        return await self._recover(limit, find_dead=True)

    async def _dead_owners(self) -> list[str]:
        """Owners of unexpired leases that are provably dead (see ``tether.core.liveness``)."""
        self._dead_scanned = time.monotonic()
        owners = [o for o in await self.store.lease_owners() if o != self.owner]
        if not owners:
            return []
        dead = await asyncio.to_thread(dead_owners, owners, self.incarnation)
        for source in self._dead_sources:
            known = set(owners)
            dead = sorted({*dead, *(o for o in await source(owners) if o in known)})
        for owner in dead:
            if owner not in self._dead_seen:
                log.info("lease owner %s is dead (gone or stale): claiming its runs", owner)
        self._dead_seen = set(dead)
        return dead

    def add_dead_owner_source(self, source: DeadOwnerSource) -> None:
        """Let ``source`` name dead lease owners besides those this host proves dead: their
        leases count as expired in this runtime's claims (a worker's registry of heartbeats
        finds workers that died on other hosts). A source must name only owners it knows are
        gone: their runs are taken at once."""
        self._dead_sources.append(source)

    async def drain(self, grace: float) -> int:
        """Stop claiming runs, and let each run executing here stop at its next step boundary
        (its current step committed, its lease released for another worker), waiting at most
        ``grace`` seconds. Returns how many runs still execute here (``close()`` stops them
        and releases their leases)."""
        self.draining = True
        async with self._claiming:  # a claim under way spawns its runs first (they hand back)
            tasks = list(self._tasks.values())
        if tasks and grace > 0:
            await asyncio.wait(tasks, timeout=grace)
        return len(self._tasks)

    @property
    def in_flight(self) -> int:
        """Runs executing in this process now."""
        return len(self._tasks)

    async def _recover(self, limit: int, *, find_dead: bool) -> list[str]:
        if not self._workflows or self.draining:
            return []
        async with self._claiming:
            if self.draining:
                return []
            # dead owners stay dead: the last scan's verdict goes with every claim (a full
            # runtime takes a dead worker's runs with its next free slot, not a second later)
            dead = await self._dead_owners() if find_dead else sorted(self._dead_seen)
            free = min(limit, self.max_concurrent_runs - len(self._tasks))
            if free <= 0:
                self._wake.after_slot = True
                return []
            mine = {*self._tasks, *self._leases, *self._resuming, *self._refused}
            leases = await self.store.claim_runs(
                self.owner,
                self.lease_ttl,
                workflows=sorted(self._workflows),
                limit=free,
                exclude=mine,
                dead_owners=dead,
                queues=self.queues,
            )
            # work about: claim again once a run ends here (a slot, or a shared limit's room,
            # frees), and at once when the batch filled and slots are left
            self._wake.after_slot = bool(leases or self._tasks)
            if len(leases) == free and len(self._tasks) + free < self.max_concurrent_runs:
                self._wake.wake()
            for lease in leases:
                self._leases[lease.run_id] = lease.token
            if leases and self._keeper is not None:
                self._keeper.wake()  # a fresh expiry for the batch, not one tick later
            taken = []
            for lease in leases:
                try:
                    run = lease.run or await self.store.get_run(lease.run_id)
                    # a claim bumps the token: 1 is a run never leased, so never executed
                    await self.take_over(run, lease.token, fresh=lease.token == 1)
                    taken.append(lease.run_id)
                except Exception as exc:
                    if isinstance(exc, WorkflowVersionError):
                        self._refused.add(lease.run_id)
                        log.warning("run %s left for another runtime: %s", lease.run_id, exc)
                    else:
                        log.exception("could not resume run %s", lease.run_id)
                    if self._leases.get(lease.run_id) == lease.token:
                        del self._leases[lease.run_id]
                    with contextlib.suppress(Exception):
                        await self.store.release_lease(lease.run_id, lease.token)
            if taken and self._keeper is None:
                await self._renew_now()
            return taken

    # -- waiting and reading -----------------------------------------------------------------
    async def wait(self, run_id: str, timeout: float | None = None) -> RunResult:
        """Until the run completes, fails, is cancelled, or parks (ESCALATED).

        Raises LeaseLostError when the run was executing here and this runtime lost its lease
        meanwhile (another worker took it over): unless the run has already settled (then its
        result is returned), it goes on elsewhere. A new ``wait()`` follows it from the store
        until it settles, wherever it runs."""
        await self._ensure_open()
        return await asyncio.wait_for(self._wait(run_id), timeout)

    async def _wait(self, run_id: str) -> RunResult:
        delay = 0.005
        while True:
            task = self._tasks.get(run_id)
            if task is not None:
                try:
                    res = await asyncio.shield(task)
                except asyncio.CancelledError:
                    if not task.cancelled():  # the waiter was cancelled, not the run's task
                        raise
                    res = None  # the run's task was cancelled here: read the store instead
                if res is not None:
                    return res
                lost = self._lost.get(task)
                if lost is not None:  # this runtime lost the run while we waited on it here
                    rec = await self.store.get_run(run_id)
                    if rec.status in _SETTLED and run_id not in self._tasks:
                        return await self._result(rec)  # it already settled elsewhere
                    raise lost
            try:
                rec = await self.store.get_run(run_id)
                if rec.status in _SETTLED and run_id not in self._tasks:
                    return await self._result(rec)
            except Exception as exc:
                if not is_transient(exc):
                    raise
                delay = max(delay, 0.2)  # the store is unreachable (it logs that): poll on
            await asyncio.sleep(delay)
            delay = min(delay * 2, 0.2)

    async def _result(self, rec: RunRecord) -> RunResult:
        state = await self.get_state(rec.run_id, run=rec)
        return RunResult(rec.run_id, rec.status, state, rec.step, rec.escalation, rec.error, rec)

    async def get_run(self, run_id: str) -> RunRecord:
        await self._ensure_open()
        return await self.store.get_run(run_id)

    async def list_runs(self, **filters: Any) -> list[RunRecord]:
        """Runs, newest first: the store's filters, ``thread_id`` (a thread's runs), and
        ``dead_letter=True`` (the dead-lettered runs; with ``workflow``, ``queue``, ``limit``)."""
        await self._ensure_open()
        if filters.pop("dead_letter", False):  # FAILED runs out of retryable attempts
            return await requeue.dead_lettered(self.store, **filters)
        thread_id = filters.pop("thread_id", None)
        if thread_id is not None:
            return await list_thread_runs(self.store, thread_id, **filters)
        return await self.store.list_runs(**filters)

    def _schema_for(self, run: RunRecord) -> StateSchema:
        wf = self._workflows.get(run.workflow)
        if wf is not None:
            return wf.schema
        names: dict[str, str] = run.metadata.get("reducers", {})
        custom = [k for k, v in names.items() if v.startswith("custom:")]
        if custom:
            try:
                return self.workflow_for(run).schema
            except ConfigurationError as exc:
                raise ConfigurationError(
                    f"fields {custom} of run {run.run_id} use custom reducers: {exc}"
                ) from None
        return reducers_from_names(names)

    async def get_state(
        self, run_id: str, step: int | None = None, *, run: RunRecord | None = None
    ) -> dict[str, Any]:
        """The state after ``step`` (default: the last committed step)."""
        await self._ensure_open()
        run = run or await self.store.get_run(run_id)
        chain = await self.store.load_chain(run_id, run.step if step is None else step)
        return replay(self._schema_for(run), chain)

    async def history(
        self, run_id: str, *, after_step: int | None = None, limit: int | None = None
    ) -> list[StepInfo]:
        """The run's committed steps in order: all of them, or a page of at most ``limit``
        steps after ``after_step`` (pass the last step of the previous page)."""
        await self._ensure_open()
        if limit is not None and limit <= 0:
            return []
        # the step before the page comes too: it planned the tasks the page's first step ran
        start = 0 if after_step is None else max(after_step, 0)
        fetch = None if limit is None else limit + 1
        cps = await self.store.list_checkpoints(run_id, from_step=start, limit=fetch)
        # the tasks a step ran are the ones its predecessor planned (a task that wrote nothing
        # leaves no delta, but it ran); after a prune the oldest kept step falls back to its delta
        ran = {cp.step + 1: [(t["id"], t["node"]) for t in cp.next_tasks] for cp in cps}
        if after_step is not None:
            cps = [cp for cp in cps if cp.step > after_step]
        out = []
        for cp in cps[:limit]:
            tasks = ran.get(cp.step, [(w[0], w[1]) for w in cp.delta])
            out.append(
                StepInfo(
                    cp.step,
                    cp.created_at,
                    [t for t, _ in tasks],
                    [{"task_id": w[0], "node": w[1], "writes": w[2]} for w in cp.delta],
                    cp.next_tasks,
                    cp.snapshot is not None,
                    cp.meta,
                    [n for _, n in tasks],
                )
            )
        return out

    async def events(self, run_id: str, *, follow: bool = True) -> AsyncIterator[Event]:
        """The run's events: the persisted log first, then (``follow``) live events until the
        run completes, fails, is cancelled or parks."""
        await self._ensure_open()
        q = self.bus.subscribe(run_id) if follow else None
        try:
            last = 0
            async for ev in self._stored_events(run_id, 0):
                last = ev.seq
                yield ev
            if q is None:
                return
            while True:
                try:
                    ev = await asyncio.wait_for(q.get(), self.poll_interval / 2)
                except TimeoutError:
                    async for ev in self._stored_events(run_id, last):
                        last = ev.seq
                        yield ev
                    rec = await self.store.get_run(run_id)
                    if rec.status in _SETTLED and run_id not in self._tasks:
                        return
                    continue
                if ev.seq:
                    if ev.seq <= last:
                        continue
                    if ev.seq > last + 1:  # committed elsewhere (e.g. a resume): back-fill
                        async for missed in self._stored_events(run_id, last, before=ev.seq):
                            last = missed.seq
                            yield missed
                    last = ev.seq
                yield ev
                if ev.type == "lifecycle" and RunStatus(ev.data["to"]) in _SETTLED:
                    return
        finally:
            if q is not None:
                self.bus.unsubscribe(run_id, q)

    async def _stored_events(
        self, run_id: str, after_seq: int, *, before: int | None = None
    ) -> AsyncIterator[Event]:
        """The persisted events after ``after_seq`` (and before ``before``), page by page: a
        store returns at most a page per call, and a long run has many pages."""
        while True:
            page = await self.store.list_events(run_id, after_seq=after_seq, limit=EVENT_PAGE)
            for ev in page:
                if before is not None and ev.seq >= before:
                    return
                yield ev
            if len(page) < EVENT_PAGE:
                return
            after_seq = page[-1].seq

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
            seen = run = _resumable(await self.store.get_run(run_id))
            wf = self.workflow_for(run)
            check_run_version(run, wf, allow_change=allow_version_change)
            lease = await self.store.acquire_lease(run_id, self.owner, self.lease_ttl)
            if lease is None:
                raise RunStateError(f"run {run_id} is being resumed by another worker right now")
            try:
                # the answer must be checked against what the run waits for now, under the
                # lease: another resume may have landed since the read above
                run = await self._reread_for_resume(seen, lease)
                old = check_run_version(run, wf, allow_change=allow_version_change)
                loaded = await self._load(run) if execute else None
                commit = await self._prepare_resume(
                    run,
                    lease.token,
                    value,
                    answers,
                    max_steps,
                    actor,
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
                            {"from": old, "to": wf.version, "actor": actor},
                        )
                    )
                commit.release_lease = not execute
                commit.base = run  # read under this lease: the store reads back only its head
                timed = has_interrupt_timers(run)
                run = await self.store.commit(run_id, lease.token, commit)
            except BaseException:
                await self.store.release_lease(run_id, lease.token)
                raise
            if timed:  # answered: its timeouts must not fire (one that does finds it stale)
                await cancel_interrupt_timers(self.store, run_id)
            if loaded is not None:
                self._spawn(wf, run, lease.token, *loaded)
        finally:
            self._resuming.discard(run_id)
        handle = RunHandle(self, run_id, False)
        return await handle.wait() if (wait and execute) else handle

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
        return await prepare_resume(
            self, run, token, value, answers, max_steps, actor, _MISSING, checkpoint
        )

    async def cancel(self, run_id: str, *, reason: str = "", actor: str = "user") -> RunRecord:
        """Cancel a run that has not finished, wherever it executes: the owner's next write is
        rejected (its fencing token is bumped) and it stops."""
        await self._ensure_open()
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
                await self._cancel_children(run_id, actor)
                return done
            except IllegalTransitionError:  # the status moved under us; read it again
                if attempt == attempts:
                    raise
                await asyncio.sleep(0.01)
        raise AssertionError("unreachable")  # pragma: no cover

    # -- retries and the dead letter (see tether.graph.run_retry) ----------------------------
    async def retry(self, run_id: str, *, actor: str = "user") -> RunHandle:
        """Put a FAILED run (dead-lettered or not) back in the queue: PLANNED, claimable at once
        by any worker that serves its workflow (``recover=True``), its attempts reset; it
        resumes from its last checkpoint. To run it in this process instead: ``resume``."""
        await self._ensure_open()
        await requeue.requeue_one(self.store, self.clock, run_id, actor)
        self._wake_claims()
        return RunHandle(self, run_id, False)

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

    # -- time travel -------------------------------------------------------------------------
    async def fork(
        self,
        run_id: str,
        step: int,
        patch: Mapping[str, Any] | None = None,
        *,
        new_run_id: str | None = None,
        max_steps: int | None = None,
        execute: bool = True,
        actor: str = "user",
    ) -> RunHandle:
        """A new run, linked to its parent, that continues from ``step`` with ``patch`` applied
        (each patched field is replaced). The parent's history is not touched."""
        await self._ensure_open()
        parent = await self.store.get_run(run_id)
        wf = self.workflow_for(parent)
        src = await self.store.get_checkpoint(run_id, step)
        state = await self.get_state(run_id, step, run=parent)
        if patch:
            if not isinstance(patch, Mapping):
                raise InvalidInputError("a fork patch must be a mapping of state fields")
            try:
                wf.schema.check_update(dict(patch), "", replace_all=True, source="fork patch")
            except Exception as exc:
                raise InvalidInputError(str(exc)) from None
            state.update(patch)
        rec = RunRecord(
            run_id=new_run_id or make_run_id(),
            workflow=wf.name,
            status=RunStatus.PLANNED,
            input=parent.input,
            step=step,
            parent_run_id=run_id,
            parent_step=step,
            metadata={
                **{k: v for k, v in parent.metadata.items() if k not in NOT_FORKED},
                "replans": 0,
                "step_limit": step + (max_steps or self.max_steps),
                "fork": {"parent": run_id, "step": step, "patch": dict(patch or {})},
            },
        )
        created, _ = await self._create_run(
            wf,
            rec,
            state,
            src.next_tasks,
            received=f"fork of {run_id} at step {step}",
            planned="forked",
            actor=actor,
            execute=execute,
            barriers=src.barriers,
            checkpoint_meta={"forked_from": run_id},
        )
        return RunHandle(self, created.run_id)

    # -- retention -------------------------------------------------------------------------
    async def prune(self, run_id: str, keep_last: int) -> int:
        """Keep only the last ``keep_last`` checkpoints of a run (the oldest kept one becomes a
        snapshot, so every kept step still reads exactly)."""
        if keep_last < 1:
            raise InvalidInputError("keep_last must be >= 1")
        await self._ensure_open()
        run = await self.store.get_run(run_id)
        cps = await self.store.list_checkpoints(run_id)
        if len(cps) <= keep_last:
            return 0
        base = cps[-keep_last]
        base.snapshot = await self.get_state(run_id, base.step, run=run)
        return await self.store.prune_checkpoints(run_id, keep_last, base)

    async def purge(self, older_than: float) -> int:
        """Delete finished runs last updated more than ``older_than`` seconds ago (and the
        timers that fired that long ago). Returns the runs deleted."""
        await self._ensure_open()
        cutoff = self.clock.now() - older_than
        if isinstance(self.store, TimerStore):
            await self.store.purge_timers(cutoff)
        return await self.store.purge_runs(cutoff)

    # -- subgraphs -------------------------------------------------------------------------
    def runs_here(self, run_id: str) -> bool:
        """RunHost: whether this process is executing ``run_id`` right now."""
        return run_id in self._tasks

    async def run_subgraph(self, wf: Workflow, arg: Any, ctx: RunContext) -> dict[str, Any]:
        """RunHost: run (or continue) the child run of ``ctx``'s task (``subgraph``)."""
        return await run_subgraph(self, wf, arg, ctx)
