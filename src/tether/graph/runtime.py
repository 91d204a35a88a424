"""The Runtime: start, wait, resume, cancel, fork and inspect runs; own leases; recover orphans.

``Runtime`` itself opens and closes, registers workflows and starts runs; its other parts are
mixed in from one module each: ``runtime_execution`` (a run's task here), ``runtime_claims``
(the claim loop, recovery, dead owners, drain), ``runtime_leases`` (the heartbeat, lost
leases), ``runtime_reads`` (wait, state, history, events), ``runtime_control`` (resume, cancel,
retry, requeue), ``runtime_fork`` (time travel), ``runtime_retention`` (prune, purge, the
sweep) and ``runtime_timers`` (durable timers and cron schedules).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import weakref
from collections.abc import Callable, Iterable, Mapping
from typing import Any, cast

from tether.core import serde
from tether.core.capabilities import has_capability
from tether.core.clock import SYSTEM_CLOCK, Clock
from tether.core.errors import (
    ConfigurationError,
    IdempotencyConflictError,
    InvalidInputError,
    LeaseLostError,
    QueueFullError,
    RunStateError,
    WorkflowConflictError,
)
from tether.core.finite import check_number
from tether.core.governor import RUN_BUDGET_KEY, run_budget_metadata
from tether.core.ids import KEY_FORMAT, KEY_FORMAT_KEY
from tether.core.ids import new_run_id as make_run_id
from tether.core.lifecycle import RunStatus
from tether.core.listed import listed
from tether.core.liveness import current_incarnation, worker_id
from tether.core.refs import find_ref, load_ref
from tether.graph.builder import Workflow
from tether.graph.context import RunContext
from tether.graph.death_watch import DeathWatch
from tether.graph.events import EventBus, Hop, lifecycle_events
from tether.graph.extensions import extension
from tether.graph.heartbeat import LeaseKeeper
from tether.graph.history import SnapshotPolicy, SnapshotTracker
from tether.graph.loop import phase_status
from tether.graph.planner import entry_tasks
from tether.graph.queueing import check_queues, placement
from tether.graph.results import RunHandle, RunResult
from tether.graph.retention import Retention
from tether.graph.run_retry import MAX_ATTEMPTS_KEY, check_max_attempts
from tether.graph.runtime_claims import CLAIM_BATCH as CLAIM_BATCH
from tether.graph.runtime_claims import DEAD_SCAN_INTERVAL as DEAD_SCAN_INTERVAL
from tether.graph.runtime_claims import ClaimLoop, DeadOwnerSource
from tether.graph.runtime_control import RunControl
from tether.graph.runtime_execution import RunExecution
from tether.graph.runtime_fork import RunForks
from tether.graph.runtime_leases import LeaseKeeping
from tether.graph.runtime_reads import EVENT_PAGE as EVENT_PAGE
from tether.graph.runtime_reads import RunReads
from tether.graph.runtime_retention import RetentionSweeps
from tether.graph.runtime_timers import TimersAndSchedules
from tether.graph.state import check_run_id, check_storable, check_text
from tether.graph.subgraph import run_subgraph
from tether.graph.submission import IDEMPOTENCY_KEY, check_same_request, fingerprints
from tether.graph.threads import (
    REQUEST_KEY,
    THREAD_KEY,
    check_thread_id,
    earlier_turn,
    thread_start,
)
from tether.graph.threads import refused as thread_refused
from tether.graph.timers import timer_loop
from tether.graph.version import VERSION_KEY, differences
from tether.graph.wake import WakeSignal
from tether.observability.run_trace import trace_metadata_for_new_run
from tether.observability.trace_ids import TRACE_KEY
from tether.store.live import LiveSource
from tether.store.memory import check_same_submission
from tether.store.protocol import RunStore
from tether.store.queue_limits import QueueControl
from tether.store.server_clock import ServerClock
from tether.store.transient import OutageLog
from tether.store.types import Checkpoint, RunRecord
from tether.store.wakeup import WakeSource

log = logging.getLogger("tether.runtime")

STARTUP_GRACE = 0.05
"""Seconds the first recovery sweep waits after ``open()``: the first operation (a resume in a
fresh process, a start) has the event loop to itself instead of sharing it with the sweep's
queries, and recovery still begins at once. (The lease keeper's thread starts at once: a node
that blocks the loop from the first step on must not stop its renewals.)"""


class Runtime(
    RunExecution,
    ClaimLoop,
    LeaseKeeping,
    RunReads,
    RunControl,
    RunForks,
    RetentionSweeps,
    TimersAndSchedules,
):
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

    Time: on a PostgreSQL store the runtime tells time by the database server's clock (the
    store's ``ServerClock``, see ``tether.store.server_clock``), so workers on hosts whose clocks
    disagree still agree on when a lease expires, a timer is due or a heartbeat went stale. A
    ``clock`` passed in (a test's fake clock) is used as it is.
    """

    @property
    def approvals(self) -> Any:
        """This runtime's approvals (``tether.governance.Approvals``: list, approve, reject;
        registered by ``tether.governance``, see ``tether.graph.extensions``)."""
        return extension(self, "approvals")

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
        check_settings(lease_ttl, poll_interval, max_steps, max_concurrent_runs)
        if isinstance(store, str) or store is None:  # opened once the settings are known good
            from tether.store.url import open_store

            store = open_store(store or "memory://")
        store_clock = getattr(store, "clock", None)
        if clock is SYSTEM_CLOCK and isinstance(store_clock, ServerClock):
            clock = store_clock  # the database server's time: one base for workers on every host
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
        self._death_watch = DeathWatch(self.incarnation, self._owner_exited)
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
        self._refused: dict[str, float] = {}
        """Runs refused here for a workflow version mismatch -> when (``time.monotonic()``)."""
        """Runs whose recorded workflow version differs from the one registered here: never
        claimed again by this runtime (a runtime with the matching code, or a human, must act)."""
        self._sweep_outage = OutageLog(
            log, f"the store (background sweeps of {self.owner})", "the sweeps go on meanwhile"
        )
        self._run_outage = OutageLog(
            log,
            f"the store (runs of {self.owner})",
            "the runs it stopped are not failed: each resumes from its last checkpoint once the "
            "store serves again and its lease expired",
        )
        self._opened = False
        for wf in listed("Runtime(workflows=...)", workflows, "workflows=[workflow]"):
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
            if has_capability(self.store, LiveSource):
                self.bus.remote = cast(LiveSource, self.store).live_channel(self.bus.deliver_remote)
            self._background.append(asyncio.create_task(self._heartbeat()))
            if self.recover and has_capability(self.store, WakeSource):
                self._wake.bind()
                self._unsubscribe = cast(WakeSource, self.store).subscribe_wakeups(self._wake.hear)
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
        self._death_watch.close()
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
        remote, self.bus.remote = self.bus.remote, None
        if remote is not None:
            with contextlib.suppress(Exception):
                await remote.close()
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

    async def _recovery(self) -> None:
        """The claim loop (``recover=True``, see ``ClaimLoop``), begun ``STARTUP_GRACE`` after
        ``open()``."""
        await asyncio.sleep(min(STARTUP_GRACE, self.poll_interval))
        await self._claim_loop()

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

    @property
    def workflow_names(self) -> list[str]:
        """The names of the workflows registered here, sorted."""
        return sorted(self._workflows)

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
        budget: Mapping[str, Any] | None = None,
    ) -> RunHandle:
        """Create a run and (``execute=True``) start executing it in this process.

        With ``execute=False`` the run is only enqueued (PLANNED, unowned): any runtime with
        ``recover=True`` that knows the workflow and serves its ``queue`` claims it, higher
        ``priority`` first, first come first served within one priority; ``tenant`` names whose
        run it is (for per-tenant limits). ``delay`` (seconds) enqueues it to be claimed no
        sooner than that from now (it implies ``execute=False``). An enqueued run is refused
        with QueueFullError when its queue is at its depth limit (``store.set_queue_limit``).
        The same ``idempotency_key`` twice returns the first run; with a different input or
        other parameters (metadata, queue, priority, budget, max_attempts, max_steps, delay) it
        raises IdempotencyConflictError, whose ``fields`` names them (``graph.submission``).

        ``thread_id`` continues a conversation: the run starts from the final state of the
        thread's last completed run, the input applied through the reducers; a thread runs one
        run at a time (see ``tether.graph.threads``). With an ``idempotency_key`` too, a turn
        sent again returns the run the first send started instead of a second turn.

        ``max_attempts`` overrides the workflow's ``RunRetry.max_attempts`` for this run (a
        workflow without one retries this run under the default ``RunRetry``).

        ``budget`` overrides limits of the workflow's budget for this run and its child runs
        (``tether.governance.Budget``: ``{"cost": 2.0, "model_calls": 10}``), checked here.
        """
        await self._ensure_open()
        self.register(wf)
        if max_steps is not None and (
            isinstance(max_steps, bool) or not isinstance(max_steps, int) or max_steps < 1
        ):
            raise InvalidInputError(f"max_steps must be an int >= 1, got {max_steps!r}")
        check_text(
            run_id=run_id,
            idempotency_key=idempotency_key,
            thread_id=thread_id,
            queue=queue,
            tenant=tenant,
            actor=actor,
        )
        check_run_id("run_id", run_id)
        check_storable(metadata=metadata)
        placed = placement(queue, priority, tenant, delay, self.clock.now())
        run_budget = None if budget is None else run_budget_metadata(wf.governance, budget)
        if max_attempts is not None:
            check_max_attempts(max_attempts)
        # what a start sent again under the key must ask alike (checked above: storable)
        asked = (
            {}
            if idempotency_key is None
            else fingerprints(
                metadata=metadata,
                queue=queue,
                priority=priority,
                budget=budget,
                max_attempts=max_attempts,
                max_steps=max_steps,
                delay=delay,
            )
        )
        execute = execute and delay is None
        if not execute and has_capability(self.store, QueueControl):  # backpressure
            try:
                await cast(QueueControl, self.store).check_queue_room(queue)
            except QueueFullError:  # unless this very start was made before: its run stands
                earlier = await self._started_before(
                    wf, input, idempotency_key, thread_id, tenant, asked
                )
                if earlier is None:
                    raise
                return RunHandle(self, earlier.run_id, False)
        if run_budget is not None:
            metadata = {**(metadata or {}), RUN_BUDGET_KEY: run_budget}
        if max_attempts is not None:
            metadata = {**(metadata or {}), MAX_ATTEMPTS_KEY: max_attempts}
        if idempotency_key is not None:  # what a retry under the key must ask again
            metadata = {**(metadata or {}), IDEMPOTENCY_KEY: asked}
        request: str | None = None  # a thread turn's own idempotency key
        if thread_id is not None:
            thread_id = check_thread_id(thread_id)
            request, idempotency_key = idempotency_key, None
            earlier = await self._same_turn(wf, thread_id, tenant, request, input, asked)
            if earlier is not None:
                return RunHandle(self, earlier.run_id, False)
            try:
                turn = await thread_start(self, wf, thread_id, input, tenant)
            except RunStateError:  # the thread is busy: with this very turn, sent again?
                same = await self._same_turn(wf, thread_id, tenant, request, input, asked)
                if same is None:
                    raise
                return RunHandle(self, same.run_id, False)
            state, idempotency_key = turn.state, turn.idempotency_key
            metadata = {**(metadata or {}), THREAD_KEY: thread_id, "thread_base": turn.base_run_id}
            if request is not None:
                metadata[REQUEST_KEY] = request
        else:
            state = wf.schema.initial_state(input)
        tasks = entry_tasks(wf, state)
        meta = {
            "step_limit": max_steps or self.max_steps,
            "reducers": wf.schema.reducer_names,
            "workflow_ref": wf.ref,
            **(metadata or {}),
        }
        winner: str | None = None  # whose run took the thread's turn, if this start lost it
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
            winner = created_rec.run_id
        except IdempotencyConflictError:
            if thread_id is None:
                raise
            created = False
        if thread_id is not None and not created:
            # another start took the thread's turn first: this very turn sent again is that
            # run, any other start is refused
            same = await self._same_turn(wf, thread_id, tenant, request, input, asked)
            if same is None:
                raise thread_refused(thread_id, winner)
            return RunHandle(self, same.run_id, False)
        if not created and idempotency_key is not None:  # stands for the very same request
            check_same_request(idempotency_key, created_rec, asked)
        return RunHandle(self, created_rec.run_id, created)

    async def _started_before(
        self,
        wf: Workflow,
        input: Mapping[str, Any] | None,
        idempotency_key: str | None,
        thread_id: str | None,
        tenant: str | None,
        asked: Mapping[str, str],
    ) -> RunRecord | None:
        """The run an earlier start with this idempotency key made (a thread's: this very
        turn's), if any; IdempotencyConflictError when the key was used for another request."""
        if idempotency_key is None:
            return None
        if thread_id is not None:
            return await self._same_turn(
                wf, check_thread_id(thread_id), tenant, idempotency_key, input, asked
            )
        existing = await self.store.get_run_by_key(idempotency_key)
        if existing is not None:
            asked_run = RunRecord(
                run_id="",
                workflow=wf.name,
                status=RunStatus.PLANNED,
                idempotency_key=idempotency_key,
                input_hash=serde.fingerprint(input),
                tenant=tenant,
            )
            check_same_submission(asked_run, existing)
            check_same_request(idempotency_key, existing, asked)
        return existing

    async def _same_turn(
        self,
        wf: Workflow,
        thread_id: str,
        tenant: str | None,
        request: str | None,
        input: Mapping[str, Any] | None,
        asked: Mapping[str, str],
    ) -> RunRecord | None:
        """The run an earlier start of this very turn (``request``, its key) made, if any;
        IdempotencyConflictError when that start asked for other parameters."""
        if request is None:
            return None
        fingerprint = serde.fingerprint(input)
        run = await earlier_turn(self.store, thread_id, tenant, request, wf.name, fingerprint)
        if run is not None:
            check_same_request(request, run, asked)
        return run

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
        trace = trace_metadata_for_new_run(rec.run_id)  # its place in a trace, for any worker
        if trace is not None:
            rec.metadata[TRACE_KEY] = trace
        else:  # never a fork's copy of its parent's
            rec.metadata.pop(TRACE_KEY, None)
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

    # -- subgraphs -------------------------------------------------------------------------
    def runs_here(self, run_id: str) -> bool:
        """RunHost: whether this process is executing ``run_id`` right now."""
        return run_id in self._tasks

    async def run_subgraph(self, wf: Workflow, arg: Any, ctx: RunContext) -> dict[str, Any]:
        """RunHost: run (or continue) the child run of ``ctx``'s task (``subgraph``)."""
        return await run_subgraph(self, wf, arg, ctx)


def check_settings(
    lease_ttl: float, poll_interval: float, max_steps: int, max_concurrent_runs: int
) -> None:
    """Refuse a runtime setting that would misbehave silently: a NaN lease never compares as
    expired or live (two owners, or none), an infinite one is never taken over."""
    for name, seconds in (("lease_ttl", lease_ttl), ("poll_interval", poll_interval)):
        check_number(name, seconds, above=True, unit=" of seconds")
    for name, count in (("max_steps", max_steps), ("max_concurrent_runs", max_concurrent_runs)):
        if isinstance(count, bool) or not isinstance(count, int):
            raise ConfigurationError(f"{name} must be an int, got {type(count).__name__}")
    if max_steps < 1:
        raise ConfigurationError(f"max_steps must be >= 1, got {max_steps}")
    if max_concurrent_runs < 1:
        raise ConfigurationError(
            f"max_concurrent_runs must be >= 1 (got {max_concurrent_runs}): it is how many "
            "runs recovery lets this runtime execute at once"
        )
