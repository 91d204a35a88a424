"""A worker's registry heartbeat: one single-row UPDATE every ``interval`` seconds.

Where the store can open a connection for another thread (SQLite files, PostgreSQL: the same
``lease_renewer()`` the lease keeper uses), the beat runs on a thread of its own, like the lease
keeper: a busy or blocked event loop cannot make a live worker's row look stale and let another
worker take its runs. Otherwise (the in-memory store, whose peers share this event loop) it runs
as a task on the loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Callable

from tether.store.protocol import RunStore, ThreadedRenewal
from tether.store.workers import BlockingWorkerBeat, WorkerRegistry

log = logging.getLogger("tether.worker")


class RegistryBeat:
    def __init__(
        self,
        store: RunStore,
        registry: WorkerRegistry,
        owner: str,
        interval: float,
        in_flight: Callable[[], int],
    ) -> None:
        self.store = store
        self.registry = registry
        self.owner = owner
        self.interval = interval
        self.in_flight = in_flight
        self.beats = 0
        """Heartbeats written; tests wait on it."""
        self.last_ok = time.monotonic()
        """``time.monotonic()`` of the last heartbeat written (at first: when the beat began,
        the worker having just registered)."""
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        renewer = self.store.lease_renewer() if isinstance(self.store, ThreadedRenewal) else None
        if isinstance(renewer, BlockingWorkerBeat):
            self._thread = threading.Thread(
                target=self._run_thread, args=(renewer,), name=f"tether-beat-{self.owner}"
            )
            self._thread.daemon = True
            self._thread.start()
        else:
            if renewer is not None:
                renewer.close()
            self._task = asyncio.create_task(self._run_task())

    async def stop(self) -> None:
        self._stop.set()
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        if self._thread is not None:
            await asyncio.to_thread(self._thread.join, 10.0)

    def _run_thread(self, beat: BlockingWorkerBeat) -> None:
        try:
            while not self._stop.wait(self.interval):
                try:
                    beat.heartbeat_worker(self.owner, self.in_flight())
                    self.last_ok = time.monotonic()
                    self.beats += 1
                except Exception as exc:  # the row outlives a missed beat: try next tick
                    log.warning("worker heartbeat of %s failed: %s", self.owner, exc)
        finally:
            with contextlib.suppress(Exception):
                beat.close()

    async def _run_task(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            try:
                await self.registry.heartbeat_worker(self.owner, self.in_flight())
                self.last_ok = time.monotonic()
                self.beats += 1
            except Exception as exc:
                log.warning("worker heartbeat of %s failed: %s", self.owner, exc)
