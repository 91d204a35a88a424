"""The Runtime's claim loop: claim runs nobody holds (orphans, the queue), find dead lease
owners, wake up on announcements, and drain.

``ClaimLoop`` is mixed into ``tether.graph.runtime.Runtime``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Collection
from typing import TYPE_CHECKING, cast

from tether.core.capabilities import has_capability
from tether.core.clock import Clock
from tether.core.errors import WorkflowVersionError
from tether.core.liveness import Incarnation, dead_owners
from tether.graph.builder import Workflow
from tether.graph.death_watch import DeathWatch
from tether.graph.events import EventBus
from tether.graph.first_phase import committed_events, first_phase_commit
from tether.graph.heartbeat import LeaseKeeper
from tether.graph.results import RunResult
from tether.graph.takeover import record_takeover, took_over
from tether.graph.version import check_run_version
from tether.graph.wake import WakeSignal
from tether.store.protocol import CommitBatcher, RunStore
from tether.store.transient import OutageLog, unavailable
from tether.store.types import Checkpoint, Commit, Lease, RunRecord

log = logging.getLogger("tether.runtime")

DeadOwnerSource = Callable[[list[str]], Awaitable[Collection[str]]]
"""Given the owners of unexpired leases, the ones known dead by other means (a worker registry
whose heartbeat row went stale); see ``Runtime.add_dead_owner_source``."""

CLAIM_BATCH = 16
"""Runs the claim loop claims at most per statement (fewer when fewer slots are free)."""

SWEEP_RETRY = 1.0
"""Seconds at most before a sweep that raised is tried again (``poll_interval`` when shorter):
a failed sweep never leaves claimable runs waiting a whole long poll interval."""

DEAD_SCAN_INTERVAL = 1.0
"""Seconds between two background looks for dead lease owners."""
REFUSED_RECHECK = 60.0
"""Seconds a run this runtime refused (its workflow version differs) is left out of its
claims; then it is looked at again (``tether runs upgrade`` may have moved it meanwhile)."""


class ClaimLoop:
    """How a Runtime finds work: the claim loop, recovery, dead owners, wake-ups, drain."""

    store: RunStore
    owner: str
    clock: Clock
    incarnation: Incarnation
    lease_ttl: float
    poll_interval: float
    max_concurrent_runs: int
    queues: tuple[str, ...] | None
    draining: bool
    _workflows: dict[str, Workflow]
    _tasks: dict[str, asyncio.Task[RunResult | None]]
    _leases: dict[str, int]
    _keeper: LeaseKeeper | None
    _wake: WakeSignal
    _claiming: asyncio.Lock
    _resuming: set[str]
    _refused: dict[str, float]
    _dead_scanned: float
    _dead_seen: set[str]
    _dead_sources: list[DeadOwnerSource]
    _death_watch: DeathWatch
    _sweep_outage: OutageLog
    bus: EventBus

    if TYPE_CHECKING:

        async def take_over(
            self,
            run: RunRecord,
            token: int,
            *,
            fresh: bool = False,
            start: Checkpoint | None = None,
        ) -> None: ...

        async def _renew_now(self) -> None: ...

    async def _claim_loop(self) -> None:
        """The claim loop of a runtime with ``recover=True``, which ``open()`` starts (after a
        startup grace, see ``Runtime._recovery``): claim, then sleep until a wake-up or
        ``poll_interval``."""
        while True:
            started = time.monotonic()
            try:
                # listing lease owners costs a scan of the active leases: at most once a second
                due = time.monotonic() - self._dead_scanned >= DEAD_SCAN_INTERVAL
                await self._recover(CLAIM_BATCH, find_dead=due)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if not unavailable(exc):
                    log.exception("recovery sweep failed")
                else:  # one line per outage, not a traceback every poll_interval
                    self._sweep_outage.down(exc)
                await asyncio.sleep(min(self.poll_interval, SWEEP_RETRY))
                continue
            self._sweep_outage.up(started)
            await self._wake.wait(self.poll_interval)  # a wake-up claims at once

    def wake(self) -> None:
        """Make the claim loop (``recover=True``) claim now instead of after ``poll_interval``.
        Stores announce submitted, released, resumed and due runs by themselves (in this
        process, and across processes on PostgreSQL by LISTEN/NOTIFY): call it when something
        else made runs claimable (a dead worker found by other means)."""
        self._wake.wake()

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
            self._death_watch.watch(())
            return []
        dead = await asyncio.to_thread(dead_owners, owners, self.incarnation)
        for source in self._dead_sources:
            known = set(owners)
            dead = sorted({*dead, *(o for o in await source(owners) if o in known)})
        # the live ones on this host are watched from now on: their exit is heard at once
        found = self._death_watch.watch(o for o in owners if o not in dead)
        dead = sorted({*dead, *found})
        for owner in dead:
            if owner not in self._dead_seen:
                log.info("lease owner %s is dead (gone or stale): claiming its runs", owner)
        self._dead_seen = set(dead)
        return dead

    def _owner_exited(self, owner: str) -> None:
        """``DeathWatch``: a lease owner on this host exited; claim its runs now."""
        if owner not in self._dead_seen:
            log.info("lease owner %s exited: claiming its runs", owner)
        self._dead_seen.add(owner)
        self._wake.wake()

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

    async def _initial_checkpoints(self, leases: list[Lease]) -> dict[str, Checkpoint]:
        """The step-0 checkpoints of the claimed runs that never executed, in one read (each
        run's own load would cost a round trip per run); best effort: a run missing here is
        loaded by itself (the claimed leases must reach the loop below, which releases any
        run it cannot start)."""
        fresh = [lease.run_id for lease in leases if lease.token == 1]  # never leased before
        if len(fresh) < 2:
            return {}
        try:
            return await self.store.initial_checkpoints(fresh)
        except Exception:  # each run's own load then fails (and releases it) or succeeds
            return {}

    def _still_refused(self) -> list[str]:
        """The runs refused here less than ``REFUSED_RECHECK`` seconds ago (the others stay
        in ``_refused``, so a second refusal is not announced again)."""
        if not self._refused:
            return []
        since = time.monotonic() - REFUSED_RECHECK
        return [run_id for run_id, at in self._refused.items() if at >= since]

    async def _first_phases(
        self, leases: list[Lease], starts: dict[str, Checkpoint]
    ) -> dict[str, RunRecord]:
        """Move the claimed queued runs into the phase of their first step in one round trip,
        where the store batches commits (``CommitBatcher``): the commit each run's loop would
        make by itself before step 1 (see ``tether.graph.first_phase``). Returns the runs
        moved, as committed; a run left out is moved by its loop."""
        if not has_capability(self.store, CommitBatcher):
            return {}
        store = cast(CommitBatcher, self.store)
        now = self.clock.now()
        items: list[tuple[str, int, Commit]] = []
        for lease in leases:
            run, start = lease.run, starts.get(lease.run_id)
            wf = self._workflows.get(run.workflow) if run is not None else None
            if run is None or start is None or wf is None or run.lease_token != lease.token:
                continue
            try:
                check_run_version(run, wf, allow_change=False)
            except WorkflowVersionError:
                continue  # refused below, and left as it was
            commit = first_phase_commit(wf, run, start, self.owner, now)
            if commit is not None:
                items.append((run.run_id, lease.token, commit))
        if len(items) < 2:
            return {}
        try:
            runs = await store.commit_batch(items)
        except Exception:  # nothing applied (one transaction): each loop moves its own run
            log.debug("first phases of %d claimed runs not batched", len(items), exc_info=True)
            return await self._read_again([run_id for run_id, _token, _commit in items])
        for run, (_run_id, _token, commit) in zip(runs, items, strict=True):
            if self.bus.has_subscribers(run.run_id):
                for ev in committed_events(run, commit):
                    self.bus.publish(ev)
        return {run.run_id: run for run in runs}

    async def _start_claimed(
        self,
        lease: Lease,
        moved: dict[str, RunRecord],
        starts: dict[str, Checkpoint],
        dead: Collection[str],
    ) -> bool:
        """Execute the run of a lease just claimed here; False when it could not be (then its
        lease is released, or the run is left out of this runtime's claims for a while)."""
        try:
            if took_over(lease):  # said out loud: a log line and a run event
                run = await record_takeover(self.store, lease, dead, self.clock)
            else:
                run = moved.get(lease.run_id) or lease.run or await self.store.get_run(lease.run_id)
            # a claim bumps the token: 1 is a run never leased, so never executed
            await self.take_over(
                run, lease.token, fresh=lease.token == 1, start=starts.get(run.run_id)
            )
            self._refused.pop(lease.run_id, None)  # upgraded since it was refused
            return True
        except Exception as exc:
            if isinstance(exc, WorkflowVersionError):
                again = lease.run_id in self._refused
                self._refused[lease.run_id] = time.monotonic()
                say = log.debug if again else log.warning  # once per run, not per look
                say("run %s left for another runtime: %s", lease.run_id, exc)
            else:
                log.exception("could not resume run %s", lease.run_id)
            if self._leases.get(lease.run_id) == lease.token:
                del self._leases[lease.run_id]
            with contextlib.suppress(Exception):
                await self.store.release_lease(lease.run_id, lease.token)
            return False

    async def _read_again(self, run_ids: list[str]) -> dict[str, RunRecord]:
        """The runs as stored now, after a batch whose outcome is unknown (a reply lost after
        the transaction committed would leave them moved): best effort, one read each."""
        out = {}
        for run_id in run_ids:
            with contextlib.suppress(Exception):
                out[run_id] = await self.store.get_run(run_id)
        return out

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
            mine = {*self._tasks, *self._leases, *self._resuming, *self._still_refused()}
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
            starts = await self._initial_checkpoints(leases)
            # the heartbeat may renew the batch meanwhile: both write the same rows, each
            # statement in an order of its own (the batch never waits for a row: see
            # pg_commit_batch). The claim gave every lease a full ttl; the heartbeat's next
            # tick (ttl / 3 away at most) renews it: no renewal of the batch right after the
            # claim (one more write of every row claimed, most of them about to finish)
            try:
                moved = await self._first_phases(leases, starts)
            except Exception:  # a fault here must not strand the leases just claimed
                log.exception("moving %d claimed run(s) into their first phase failed", len(leases))
                moved = await self._read_again([lease.run_id for lease in leases])
            # runs taken from another owner each cost a takeover event and a read of their
            # last checkpoint: side by side (the pool's connections), not one after another, so
            # a dead worker's runs all continue a couple of round trips after the claim
            if any(took_over(lease) for lease in leases):
                done = await asyncio.gather(
                    *(self._start_claimed(lease, moved, starts, dead) for lease in leases)
                )
            else:
                done = [await self._start_claimed(lease, moved, starts, dead) for lease in leases]
            taken = [lease.run_id for lease, ok in zip(leases, done, strict=True) if ok]
            if taken and self._keeper is None:
                await self._renew_now()
            return taken
