"""The lease keeper: renews all of a runtime's leases, in one statement, from a thread of its own.

A heartbeat on the event loop falls behind exactly when it matters: many runs stepping at once,
or one node blocking the loop (CPU-bound work, a blocking call) for longer than the lease TTL,
and live runs expire under their owner. The keeper renews on its own thread and its own database
connection (``ThreadedRenewal.lease_renewer``), ``ttl / 3`` apart, so only the death of the
process (or of the database) lets a lease run out. The flip side: a lease now tells a dead
process from a live one, not a stuck event loop from a busy one; a process whose loop is wedged
for good keeps its runs until it exits or an operator cancels them.

The runtime's lease table is a plain ``dict`` owned by the event loop; the keeper only copies it
(``dict.copy`` is one C call under the GIL, never a torn read). Leases found lost are reported
once per (run, token) through ``on_lost``, which the runtime points at
``loop.call_soon_threadsafe``.
"""

from __future__ import annotations

import _thread
import logging
import threading
from collections.abc import Callable

from tether.core.errors import LeaseLostError
from tether.core.lifecycle import FINISHED, PARKED, RunStatus
from tether.store.protocol import LeaseRenewer
from tether.store.types import RunRecord

log = logging.getLogger("tether.runtime")


class LeaseKeeper:
    def __init__(
        self,
        renewer: LeaseRenewer,
        owner: str,
        ttl: float,
        leases: dict[str, int],
        on_lost: Callable[[dict[str, int]], None],
        on_exit: Callable[[], None] | None = None,
    ) -> None:
        self.renewer = renewer
        self._on_exit = on_exit
        self.owner = owner
        self.ttl = ttl
        self.interval = ttl / 3
        self._leases = leases
        self._on_lost = on_lost
        self._reported: dict[str, int] = {}
        self._wake = threading.Event()
        self._stopping = False
        self.renewals = 0
        """Renewal rounds done (each one statement per 256 leases); tests wait on it."""
        self._exited = threading.Event()

    def start(self) -> None:
        """Start the keeper's thread (a daemon: it ends with the process) without waiting for
        it to be scheduled, as ``threading.Thread.start`` does: on a busy machine that wait
        cost a fresh process's first operation (a resume) milliseconds, while the thread
        needs nothing from its starter and has ``ttl / 3`` before its first renewal."""
        _thread.start_new_thread(self._run, ())

    def wake(self) -> None:
        """Renew now (after a claim), not at the next tick."""
        self._wake.set()

    def stop(self) -> None:
        self._stopping = True
        self._wake.set()

    def join(self, timeout: float) -> bool:
        """Wait until the thread has ended (after ``stop``); False on a timeout."""
        return self._exited.wait(timeout)

    def _run(self) -> None:
        try:
            while not self._stopping:
                self._wake.wait(self.interval)
                self._wake.clear()
                if self._stopping:
                    break
                self.renew_once()
        finally:
            try:
                self.renewer.close()
            finally:
                try:
                    if self._on_exit is not None:
                        self._on_exit()
                finally:
                    self._exited.set()

    def renew_once(self) -> None:
        held = self._leases.copy()
        for run_id, token in list(self._reported.items()):
            if held.get(run_id) != token:
                del self._reported[run_id]  # the runtime let go of it: forget the report
        leases = {r: t for r, t in held.items() if self._reported.get(r) != t}
        try:
            lost = self.renewer.renew_leases(self.owner, leases, self.ttl)
        except Exception as exc:
            # the lease outlives one failed round (ttl / 3 apart): say so, try again next tick
            log.warning("renewing %d lease(s) of %s failed: %s", len(leases), self.owner, exc)
            return
        self.renewals += 1
        if lost:
            report = {r: leases[r] for r in lost}
            self._reported.update(report)
            self._on_lost(report)


def lease_lost(owner: str, run_id: str, token: int, rec: RunRecord | None) -> LeaseLostError:
    """Log a lease ``owner`` lost (one line: the run, who holds it now, the tokens) and build
    the error a ``wait()`` in the losing process raises. ``rec``: the run as read after the
    loss (None when it could not be read)."""
    holder = rec.owner if rec is not None else None
    holder_token = rec.lease_token if rec is not None else None
    settled = rec is not None and holder is None and rec.status in FINISHED | PARKED
    # a cancel bumps the token too; any other settle under a new token was a takeover
    taken = rec is not None and rec.lease_token != token and rec.status is not RunStatus.CANCELLED
    if rec is not None and settled and not taken:
        # not a takeover: the run was cancelled (or otherwise settled) by someone else
        log.info(
            "run %s: lease (token %s) ended, the run was made %s elsewhere (token %s)",
            run_id,
            token,
            rec.status.value,
            holder_token,
        )
        why = f"it was made {rec.status.value} elsewhere"
    else:
        if rec is None:
            now = "unknown"
            why = "the run could not be read (deleted, or the store is unreachable)"
        elif holder:
            now = holder
            why = f"worker {holder} holds it now (token {holder_token})"
        elif settled:  # taken over, and settled by the taker before this runtime looked
            made = rec.status.value
            now = f"another owner, which made it {made}"
            why = f"another worker took it over (token {holder_token}) and made it {made}"
        else:
            now = "nobody (expired or released)"
            why = "its lease expired and nobody holds it now"
        log.warning(
            "run %s: lease lost to %s (token %s; ours was %s); stopped executing it here",
            run_id,
            now,
            holder_token,
            token,
        )
    return LeaseLostError(
        run_id,
        token,
        holder=holder,
        holder_token=holder_token,
        message=(
            f"run {run_id!r}: this runtime ({owner}) lost its lease (fencing token {token}) "
            f"and stopped executing it: {why}; none of its later writes applied. Call wait() "
            "again to follow the run from the store until it finishes wherever it runs. If this "
            "worker was alive, its leases could not be renewed within lease_ttl (a store outage "
            "or a stalled process): raise lease_ttl"
        ),
    )
