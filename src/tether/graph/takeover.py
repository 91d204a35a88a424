"""A lease takeover, said out loud: when a claim took a run from another owner (its lease
expired, or the owner was found dead), the claimer logs it and records a ``lease_takeover``
event on the run naming the old and the new owner (``tether.store.lease_takeovers``), before
it executes the run. ``/metrics`` counts those events (``tether_lease_takeovers_total``).
"""

from __future__ import annotations

import logging
from collections.abc import Collection

from tether.core.clock import Clock
from tether.store.lease_takeovers import TAKEOVER_EVENT
from tether.store.protocol import RunStore
from tether.store.types import Commit, Event, Lease, RunRecord

log = logging.getLogger("tether.runtime")


def took_over(lease: Lease) -> bool:
    """The claim took the run from another owner."""
    return lease.previous_owner is not None and lease.previous_owner != lease.owner


async def record_takeover(
    store: RunStore, lease: Lease, dead: Collection[str], clock: Clock
) -> RunRecord:
    """Log the takeover of ``lease``'s run and record its event (fenced by the new lease);
    returns the run as that write left it. ``dead``: the owners the claim treated as dead."""
    old = lease.previous_owner
    why = "dead" if old in dead else "expired"
    log.warning(
        "run %s: lease taken over from %s by %s (the old owner's lease %s; token %d)",
        lease.run_id,
        old,
        lease.owner,
        "belongs to a dead owner" if why == "dead" else "expired",
        lease.token,
    )
    data = {"from": old, "to": lease.owner, "token": lease.token, "why": why}
    ev = Event(lease.run_id, 0, TAKEOVER_EVENT, clock.now(), None, None, data)
    return await store.commit(lease.run_id, lease.token, Commit(events=[ev], base=lease.run))
