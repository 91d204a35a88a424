"""``DriftWatch``: check the drift of every run of chosen workflows once it completes.

Without it a team calls ``check_drift`` by hand. A watch follows the store's runs
(``drift_feed.RunFeed``, one per workflow) every ``interval`` seconds and checks each run that
reached one of ``statuses`` (COMPLETED by default) exactly once, across restarts and across
watchers sharing a store (one per worker with ``tether worker --drift``):

* it takes the run's lease (owner ``drift-watch:...``), and under it looks for a
  ``drift_checked`` event: a run that has one was checked already (by this watch before a
  restart, another watch, or by hand) and is left alone (a first look at the run's last
  events, without the lease, spares a restarted watch a write per run it checked before);
* otherwise it checks it (``check_drift``'s comparisons, flags and event), and the commit that
  appends the event gives the lease back. A second watch waits for the lease, then finds the
  event.

A run held by someone else is tried again next pass; a run whose check fails for good (its
input has no goal field the ``goal`` extractor names) is logged and left. Flags are read like
any check's: ``drift_flags(store, run_id=...)`` or ``drift_flags(store, workflow=...)``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Callable, Collection, Mapping, Sequence

from tether.core.clock import SYSTEM_CLOCK, Clock
from tether.core.errors import ConfigurationError, StoreError, UserError
from tether.core.finite import check_number
from tether.core.lifecycle import ACTIVE, RunStatus
from tether.evaluation.drift import DriftMonitor
from tether.evaluation.drift_feed import RunFeed
from tether.evaluation.drift_record import CHECKED_EVENT, LEASE_TTL
from tether.evaluation.drift_runs import DriftReport, Extract, check_held, eval_log
from tether.evaluation.mindlog import run_events
from tether.store.protocol import RunStore
from tether.store.types import RunRecord

log = logging.getLogger("tether.evaluation.drift")

OWNER = "drift-watch"
TAIL = 32
"""Last events of a run looked at for a ``drift_checked`` one before taking its lease."""


class DriftWatch:
    def __init__(
        self,
        store: RunStore,
        workflows: Sequence[str] | None = None,
        *,
        monitor: DriftMonitor | None = None,
        statuses: Collection[RunStatus] = (RunStatus.COMPLETED,),
        goal: Extract | Mapping[str, Extract] = None,
        output: Extract | Mapping[str, Extract] = None,
        interval: float = 2.0,
        since: float | None = None,
        margin: float = 2.0,
        clock: Clock = SYSTEM_CLOCK,
        on_report: Callable[[DriftReport], None] | None = None,
    ) -> None:
        if isinstance(workflows, str) or (workflows is not None and not all(workflows)):
            raise ConfigurationError(
                f"workflows must be a list of workflow names (None: every workflow), "
                f"got {workflows!r}"
            )
        if not statuses or any(s in ACTIVE for s in statuses):
            raise ConfigurationError(
                f"statuses must be states a run stops in (COMPLETED, FAILED, CANCELLED, "
                f"ESCALATED), got {sorted(map(str, statuses))}"
            )
        check_number("DriftWatch interval (seconds)", interval, above=True)
        check_number("DriftWatch margin (seconds)", margin)
        eval_log(store)  # a store without an evaluation log fails here, not at the first run
        self.store = store
        self.monitor = monitor or DriftMonitor()
        self.goal, self.output = goal, output
        self.interval = interval
        self.clock = clock
        self.on_report = on_report
        self.owner = f"{OWNER}:{uuid.uuid4().hex[:12]}"
        names = [None] if workflows is None else list(dict.fromkeys(workflows))
        self.feeds = [RunFeed(store, w, statuses, since=since, margin=margin) for w in names]
        self.checked = 0
        """Runs this watch checked (not those it found checked already)."""
        self._started = False
        self._stop = asyncio.Event()

    async def poll(self) -> list[DriftReport]:
        """One pass: check every run that finished since the last one; returns the reports."""
        if not self._started:
            for feed in self.feeds:
                await feed.start(self.clock.now())
            self._started = True
        reports = []
        for feed in self.feeds:
            for run in await feed.finished():
                if self._stop.is_set():  # stopping: the rest waits for the next start
                    break
                try:
                    report = await self.check(run)
                except (StoreError, Deferred) as exc:  # held, executing, a store hiccup
                    log.info("drift check of run %s deferred: %s", run.run_id, exc)
                    continue
                except UserError as exc:  # e.g. no goal field: it would fail again
                    log.warning("drift check of run %s failed: %s", run.run_id, exc)
                    report = None
                except Exception as exc:  # the embedder, the database: try at the next pass
                    log.warning("drift check of run %s failed, will retry: %r", run.run_id, exc)
                    continue
                feed.done(run.run_id)
                if report is not None:
                    reports.append(report)
            await feed.save()
        return reports

    async def check(self, run: RunRecord) -> DriftReport | None:
        """Check ``run`` unless it has been already; None when it has. Raises ``Deferred``
        while another owner holds it or it executes again."""
        if await checked_lately(self.store, run):  # a read first: a restart writes nothing
            return None
        lease = await self.store.acquire_lease(run.run_id, self.owner, LEASE_TTL)
        if lease is None:
            raise Deferred(f"run {run.run_id} is held by another owner")
        try:
            run = await self.store.get_run(run.run_id)
            if run.status in ACTIVE:
                raise Deferred(f"run {run.run_id} is {run.status.value} again")
            if await run_events(self.store, run.run_id, (CHECKED_EVENT,)):
                await self.store.release_lease(run.run_id, lease.token)
                return None
            report = await check_held(
                self.store, eval_log(self.store), run, lease.token, monitor=self.monitor,
                goal=_for(self.goal, run.workflow), output=_for(self.output, run.workflow),
                ts=self.clock.now(), release=True,
            )  # fmt: skip
        except BaseException:
            with contextlib.suppress(Exception):
                await self.store.release_lease(run.run_id, lease.token)
            raise
        self.checked += 1
        if report.drifted:
            kinds = ", ".join(f"{f.kind} {f.score:.2f}" for f in report.flags)
            log.warning("run %s (%s) drifted: %s", run.run_id, run.workflow, kinds)
        if self.on_report is not None:
            self.on_report(report)
        return report

    async def run(self) -> None:
        """Poll every ``interval`` seconds until ``stop()`` (a stopped watch stays stopped);
        a failed pass is logged and retried at the next one."""
        while not self._stop.is_set():
            try:
                await self.poll()
            except Exception as exc:
                log.warning("drift watch pass failed (retrying in %.1f s): %s", self.interval, exc)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), self.interval)

    def stop(self) -> None:
        """End ``run()`` after the check in progress (the runs left are checked by the next
        watch to start)."""
        self._stop.set()


class Deferred(RuntimeError):
    """Another owner holds the run's lease, or it executes again: try at the next pass."""


async def checked_lately(store: RunStore, run: RunRecord) -> bool:
    """Whether the last ``TAIL`` events of the run hold a ``drift_checked`` one (a check
    appends it after the run stopped, so it is among the last): a read, no lease."""
    after = max(0, run.event_seq - TAIL)
    return any(
        e.type == CHECKED_EVENT for e in await store.list_events(run.run_id, after_seq=after)
    )


def _for(how: Extract | Mapping[str, Extract], workflow: str) -> Extract:
    """The extractor of ``workflow`` (a mapping gives one per workflow; None: the defaults)."""
    if isinstance(how, Mapping):
        return how.get(workflow)
    return how
