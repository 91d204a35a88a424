"""The Runtime's lease keeping: renew every lease held here; stop a run whose lease is lost.

``LeaseKeeping`` is mixed into ``tether.graph.runtime.Runtime``; the renewals themselves run on
the lease keeper's thread (``tether.graph.heartbeat``) when the store offers one.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import weakref
from typing import Any, cast

from tether.core.capabilities import has_capability
from tether.core.errors import LeaseLostError, RunNotFoundError
from tether.graph.heartbeat import LeaseKeeper, lease_lost
from tether.graph.results import RunResult
from tether.store.protocol import RunStore, ThreadedRenewal
from tether.store.types import RunRecord

log = logging.getLogger("tether.runtime")


class LeaseKeeping:
    """The Runtime's heartbeat, and what it does when a lease is found lost."""

    store: RunStore
    owner: str
    lease_ttl: float
    _tasks: dict[str, asyncio.Task[RunResult | None]]
    _leases: dict[str, int]
    _keeper: LeaseKeeper | None
    _lost: weakref.WeakKeyDictionary[asyncio.Task[Any], LeaseLostError]
    _lost_checks: set[asyncio.Task[None]]

    async def _heartbeat(self) -> None:
        """Renew every lease held here, ``lease_ttl / 3`` apart, in one statement: from a thread
        with its own connection when the store offers one (see ``heartbeat.LeaseKeeper``), else
        (in-process stores, whose peers share this event loop) from this task."""
        threaded = has_capability(self.store, ThreadedRenewal)
        renewer = cast(ThreadedRenewal, self.store).lease_renewer() if threaded else None
        if renewer is None:
            while True:
                await asyncio.sleep(self.lease_ttl / 3)
                await self._renew_now()
        loop = asyncio.get_running_loop()

        def on_lost(lost: dict[str, int]) -> None:  # called on the keeper's thread
            with contextlib.suppress(RuntimeError):  # the loop is closed: nobody to tell
                loop.call_soon_threadsafe(self._leases_lost, lost)

        exited: asyncio.Future[None] = loop.create_future()

        def on_exit() -> None:  # called on the keeper's thread as it ends
            with contextlib.suppress(RuntimeError):  # the loop is closed: nobody waits
                loop.call_soon_threadsafe(_settle, exited)

        keeper = LeaseKeeper(renewer, self.owner, self.lease_ttl, self._leases, on_lost, on_exit)
        keeper.start()
        self._keeper = keeper
        try:
            await asyncio.Future()  # runs until close() (or a test) cancels the heartbeat
        finally:
            self._keeper = None
            keeper.stop()
            # the thread's end is awaited on the loop: no executor thread to start for a join
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(exited), 10.0)

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


def _settle(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_result(None)
