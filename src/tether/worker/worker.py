"""``Worker``: a long-running process that executes the runs of a store's queues.

A worker wraps a ``Runtime(recover=True)`` that claims runs as slots free up (at most
``concurrency`` at once), registers itself in the store's worker registry and heartbeats its row
(``tether.worker.beat``), and takes over at once the leases of workers whose row went stale
(they died without deregistering, on any host). ``stop()`` (SIGTERM, or SIGINT) drains:
no more claims, each run stops at its next step boundary with its step committed and its lease
released, for up to ``grace`` seconds; then whatever still runs is stopped and its lease
released, the row is marked stopped, and ``run()`` returns 0. ``stop(immediate=True)`` (a SIGINT
while draining: Ctrl-C twice, or after a SIGTERM) skips the wait and ``run()`` returns 130.

``drift=True`` (or a list of workflow names) also runs a ``DriftWatch`` beside the runtime: each
run of those workflows is checked for semantic drift once it completes (``tether worker
--drift``); every worker may run one, a run is still checked once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import time
from collections.abc import Collection, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from tether.core.clock import SYSTEM_CLOCK, Clock
from tether.core.errors import ConfigurationError
from tether.core.finite import check_number
from tether.graph.builder import Workflow
from tether.graph.queueing import check_queues
from tether.graph.retention import Retention
from tether.graph.runtime import Runtime
from tether.store.protocol import RunStore
from tether.store.workers import WorkerRecord, WorkerRegistry, stale_owners
from tether.worker.beat import RegistryBeat
from tether.worker.probe_token import check_probe_token

if TYPE_CHECKING:  # the evaluation plane (and the models it loads) only for ``drift=``
    from tether.evaluation.drift import DriftMonitor
    from tether.evaluation.drift_watch import DriftWatch
    from tether.worker.http import Served
    from tether.worker.probes import WorkerProbes

log = logging.getLogger("tether.worker")

EXIT_OK = 0
EXIT_INTERRUPTED = 130
CLEANUP_INTERVAL = 600.0
"""Seconds between two deletions of long-dead workers' rows."""
MAX_CONCURRENCY = 10_000
"""The most runs one worker executes at once: one event loop serves them all (and the
registry keeps the number as a 32-bit integer); more is a typo, or wants more workers."""


def default_concurrency() -> int:
    """Runs a worker executes at once by default: 8 per CPU (runs mostly wait on models, tools
    and the store), at least 4, at most 64."""
    return max(4, min(64, 8 * (os.cpu_count() or 1)))


def check_concurrency(concurrency: object) -> None:
    """``concurrency``: None (the default) or an int from 1 to ``MAX_CONCURRENCY``."""
    if concurrency is None:
        return
    if isinstance(concurrency, bool) or not isinstance(concurrency, int):
        raise ConfigurationError(f"concurrency must be a whole number of runs, got {concurrency!r}")
    if not 1 <= concurrency <= MAX_CONCURRENCY:
        raise ConfigurationError(
            f"concurrency must be from 1 to {MAX_CONCURRENCY} runs at once, got {concurrency}; "
            "for more, start more workers (each one runs its own share)"
        )


class Worker:
    def __init__(
        self,
        store: RunStore | str,
        workflows: Iterable[Workflow],
        *,
        queues: Sequence[str] | None = None,
        concurrency: int | None = None,
        grace: float = 30.0,
        lease_ttl: float = 15.0,
        poll_interval: float = 0.5,
        owner: str | None = None,
        deps: Mapping[str, Any] | None = None,
        clock: Clock = SYSTEM_CLOCK,
        heartbeat_interval: float | None = None,
        stale_after: float | None = None,
        forget_after: float = 86400.0,
        drift: bool | Sequence[str] = False,
        drift_monitor: DriftMonitor | None = None,
        retention: Retention | None = None,
        probe_port: int | None = None,
        probe_host: str = "127.0.0.1",
        probe_token: str | None = None,
    ) -> None:
        check_number("grace", grace, unit=" of seconds")
        for name, value in (
            ("heartbeat_interval", heartbeat_interval),
            ("stale_after", stale_after),
            ("forget_after", forget_after),
        ):
            if value is not None:  # NaN would never compare: a dead worker never found stale
                check_number(name, value, above=True, unit=" of seconds")
        if queues is not None and (isinstance(queues, str) or not all(queues)):
            raise ConfigurationError(
                f"queues must be a list of non-empty queue names (or None: every queue), "
                f"got {queues!r}"
            )
        if probe_port is not None and not 0 <= probe_port <= 65535:
            raise ConfigurationError(
                f"probe_port must be 0..65535 (0: any free port), got {probe_port}"
            )
        check_probe_token(probe_token)
        if isinstance(drift, str):
            raise ConfigurationError(f"drift takes True or a list of workflow names, got {drift!r}")
        check_concurrency(concurrency)
        workflows = list(workflows)
        self.workflow_names = sorted(wf.name for wf in workflows)
        self.concurrency = default_concurrency() if concurrency is None else concurrency
        # once each, as the runtime serves them ('a,a,b' was shown and registered as is)
        self.queues = None if queues is None else list(check_queues(queues) or ())
        self.grace = grace
        self.runtime = Runtime(
            store,
            workflows=workflows,
            owner=owner,
            lease_ttl=lease_ttl,
            recover=True,
            poll_interval=poll_interval,
            deps=deps,
            clock=clock,
            max_concurrent_runs=self.concurrency,
            queues=self.queues,
            retention=retention,
        )
        self.heartbeat_interval = heartbeat_interval or lease_ttl / 3
        self.stale_after = stale_after or 2 * self.heartbeat_interval
        """A worker silent for longer than this and than two of its own heartbeat intervals
        (and not stopped) is dead."""
        self.forget_after = forget_after
        self.clock = self.runtime.clock
        """The runtime's: the database server's time on PostgreSQL unless a clock was passed."""
        self.beat: RegistryBeat | None = None
        self._drift = drift
        self._drift_monitor = drift_monitor
        self.drift: DriftWatch | None = None
        """The drift watch, once ``run()`` has opened the store (``drift=`` given)."""
        self._stopping = asyncio.Event()
        self._now = asyncio.Event()
        self.ready = asyncio.Event()
        """Set once the worker is open, registered and claiming runs."""
        self.probe_port = probe_port
        self.probe_host = probe_host
        self.probe_token = probe_token
        """The bearer token ``/metrics`` asks for (None: no token; see ``tether.worker.probes``)."""
        self.probe_url: str | None = None
        """``http://host:port`` of the probe endpoint once ``run()`` serves it
        (``probe_port=``; 0 picks a free port)."""
        self.probes: WorkerProbes | None = None
        self._served: Served | None = None

    @property
    def owner(self) -> str:
        return self.runtime.owner

    @property
    def worker_id(self) -> str:
        return self.runtime.worker_id

    @property
    def store(self) -> RunStore:
        return self.runtime.store

    @property
    def stopping(self) -> bool:
        """Told to stop: it claims no more runs and drains."""
        return self._stopping.is_set()

    # -- stopping ---------------------------------------------------------------------------
    def stop(self, grace: float | None = None, *, immediate: bool = False) -> None:
        """Drain and stop (``grace`` overrides the worker's); ``immediate``: stop now."""
        if grace is not None:
            self.grace = grace
        self._stopping.set()
        if immediate:
            self._now.set()

    def install_signal_handlers(self) -> None:
        """SIGTERM or SIGINT: drain and stop; SIGINT while draining (Ctrl-C twice, or after a
        SIGTERM): stop now (exit 130). A second SIGTERM changes nothing: the drain goes on."""
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGTERM, self._on_signal, "SIGTERM")
        loop.add_signal_handler(signal.SIGINT, self._on_signal, "SIGINT")

    def _on_signal(self, name: str) -> None:
        if not self.stopping:
            log.warning(
                "worker %s: %s, draining (up to %.0f s; SIGINT%s to stop now)",
                self.worker_id,
                name,
                self.grace,
                " again" if name == "SIGINT" else "",
            )
            self.stop()
        elif name == "SIGINT":  # the first one drained: a SIGTERM then Ctrl-C stops now too
            log.warning("worker %s: SIGINT while draining, stopping now", self.worker_id)
            self.stop(immediate=True)
        else:  # a supervisor repeating itself: the drain (and its grace) goes on
            log.warning(
                "worker %s: %s again, already draining (SIGINT to stop now)", self.worker_id, name
            )

    # -- running ----------------------------------------------------------------------------
    async def run(self) -> int:
        """Execute runs until stopped; returns the exit code (0 drained, 130 stopped now)."""
        rt = self.runtime
        if self.probe_port is not None:
            await self._serve_probes(self.probe_port)
        try:
            await rt.open()
        except BaseException:
            await self._stop_probes()
            raise
        registry = rt.store if isinstance(rt.store, WorkerRegistry) else None
        housekeeping: asyncio.Task[None] | None = None
        watching: asyncio.Task[None] | None = None
        try:
            if registry is not None:
                await registry.register_worker(self.record())
                rt.add_dead_owner_source(self._stale_owners)
                self.beat = RegistryBeat(
                    rt.store, registry, self.owner, self.heartbeat_interval, lambda: rt.in_flight
                )
                self.beat.start()
                housekeeping = asyncio.create_task(self._forget_dead(registry))
            if self._drift:
                self.drift = self._drift_watch()
                watching = asyncio.create_task(self.drift.run())
            self.ready.set()
            await self._stopping.wait()
            immediate = self._now.is_set()
            if not immediate:
                immediate = await self._drain()
        finally:
            if self.drift is not None and watching is not None:
                self.drift.stop()
                if self._now.is_set():
                    watching.cancel()
                await asyncio.gather(watching, return_exceptions=True)
            if housekeeping is not None:
                housekeeping.cancel()
                await asyncio.gather(housekeeping, return_exceptions=True)
            if self.beat is not None:
                await self.beat.stop()
            if registry is not None:
                with contextlib.suppress(Exception):
                    await registry.stop_worker(self.owner)
            await rt.close()  # stops what still runs and releases its leases
            await self._stop_probes()
        return EXIT_INTERRUPTED if immediate else EXIT_OK

    async def _serve_probes(self, port: int) -> None:
        """Serve ``/healthz``, ``/readyz`` and ``/metrics`` (``tether.worker.probes``) from
        before the store opens (a starting worker answers: not ready) until it has stopped."""
        from tether.worker.http import serve
        from tether.worker.probes import WorkerProbes

        self.probes = WorkerProbes(self)
        self._served = await serve(self.probes.app, self.probe_host, port)
        self.probe_url = self._served.url
        log.info("worker %s: probes at %s", self.worker_id, self.probe_url)

    async def _stop_probes(self) -> None:
        if self._served is not None:
            served, self._served = self._served, None
            await served.stop()

    async def _drain(self) -> bool:
        """Drain for up to ``grace``; True when told to stop now meanwhile."""
        started = time.monotonic()
        drain = asyncio.create_task(self.runtime.drain(self.grace))
        now = asyncio.create_task(self._now.wait())
        await asyncio.wait({drain, now}, return_when=asyncio.FIRST_COMPLETED)
        now.cancel()
        if not drain.done():
            drain.cancel()
            await asyncio.gather(drain, return_exceptions=True)
            return True
        left = drain.result()
        log.warning(
            "worker %s: drained in %.1f s%s",
            self.worker_id,
            time.monotonic() - started,
            f"; stopping {left} run(s) still in a step" if left else "",
        )
        return False

    def _drift_watch(self) -> DriftWatch:
        from tether.evaluation.drift_watch import DriftWatch

        names = self._drift
        if names is True:
            names = self.workflow_names
        assert not isinstance(names, bool)
        return DriftWatch(self.store, list(names), monitor=self._drift_monitor, clock=self.clock)

    def record(self) -> WorkerRecord:
        inc = self.runtime.incarnation
        return WorkerRecord(
            owner=self.owner,
            worker_id=self.worker_id,
            host=inc.host,
            pid=inc.pid,
            started_at=self.clock.now(),
            queues=self.queues,
            concurrency=self.concurrency,
            heartbeat_every=self.heartbeat_interval,
        )

    async def _stale_owners(self, owners: list[str]) -> Collection[str]:
        """The runtime's dead-owner source: lease owners whose registry row went stale."""
        assert isinstance(self.store, WorkerRegistry)
        rows = await self.store.list_workers()
        stale = stale_owners(rows, self.clock.now(), self.stale_after, exclude=self.owner)
        return [o for o in stale if o in set(owners)]

    async def _forget_dead(self, registry: WorkerRegistry) -> None:
        while True:
            try:
                gone = await registry.delete_workers(self.clock.now() - self.forget_after)
                if gone:
                    log.info("forgot %d worker(s) gone for over %.0f s", gone, self.forget_after)
            except Exception as exc:
                log.warning("cleaning up the worker registry failed: %s", exc)
            await asyncio.sleep(CLEANUP_INTERVAL)
