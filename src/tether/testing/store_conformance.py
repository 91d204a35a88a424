"""The RunStore conformance suite: one set of tests every backend must pass.

Use it by subclassing and providing a ``store_factory`` fixture that opens (and sets up) store
instances on one shared database, built with the suite's ``clock`` fixture (a ``FakeClock``)::

    from tether.testing.store_conformance import StoreConformance

    class TestMyStore(StoreConformance):
        @pytest_asyncio.fixture
        async def store_factory(self, clock, tmp_path):
            opened = []

            async def factory():
                store = MyStore(tmp_path / "db", clock=clock)
                await store.setup()
                opened.append(store)
                return store

            yield factory
            for store in opened:
                await store.close()

A backend that cannot share its data between instances (the in-memory store) returns the same
instance every time. Needs pytest and pytest-asyncio.
"""

from __future__ import annotations

from tether.testing.store_conformance_api_keys import ApiKeyConformance
from tether.testing.store_conformance_approvals import ApprovalConformance
from tether.testing.store_conformance_audit import AuditConformance
from tether.testing.store_conformance_control import ControlConformance
from tether.testing.store_conformance_history import HistoryConformance
from tether.testing.store_conformance_leases import LeaseConformance
from tether.testing.store_conformance_purge import PurgeConformance
from tether.testing.store_conformance_queries import QueryConformance
from tether.testing.store_conformance_queues import QueueConformance, QueueLimitConformance
from tether.testing.store_conformance_runs import RunConformance
from tether.testing.store_conformance_takeovers import TakeoverConformance
from tether.testing.store_conformance_threads import ThreadConformance
from tether.testing.store_conformance_timers import TimerConformance
from tether.testing.store_conformance_usage import UsageConformance
from tether.testing.store_conformance_workers import WorkerConformance
from tether.testing.store_helpers import StoreFactory

__all__ = ["StoreConformance", "StoreFactory"]


class StoreConformance(
    AuditConformance,
    RunConformance,
    LeaseConformance,
    HistoryConformance,
    PurgeConformance,
    ControlConformance,
    QueryConformance,
    UsageConformance,
    TakeoverConformance,
    QueueConformance,
    QueueLimitConformance,
    ThreadConformance,
    TimerConformance,
    WorkerConformance,
    ApprovalConformance,
    ApiKeyConformance,
):
    """Every RunStore semantic of ``tether.store.protocol`` and the control plane of
    ``tether.store.control``, checked against one backend."""
