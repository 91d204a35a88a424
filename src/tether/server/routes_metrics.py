"""``GET /metrics``: Prometheus text (see ``tether.server.metrics``).

A tenant's key sees its own runs by status; the queues, workers, lease takeovers and this
process's counters (shared by every tenant) need the ``admin`` scope (or local mode).
"""

import asyncio
import time
from typing import Annotated

from fastapi import APIRouter, Depends
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, Metric

from tether.core.lifecycle import RunStatus
from tether.evaluation import kpi_metrics
from tether.server.keys import Principal
from tether.server.metrics import (
    STORE_TIMEOUT,
    Families,
    breaker_gauge,
    gauge,
    queue_gauges,
    store_up,
)
from tether.server.problems import API_PROBLEMS
from tether.server.services import Services
from tether.server.strict_query import known_query
from tether.store.lease_takeovers import LeaseTakeovers
from tether.store.queue_limits import QueueControl
from tether.store.run_counts import RunCounts
from tether.store.server_clock import store_now
from tether.store.transient import unavailable
from tether.store.workers import WorkerRegistry, worker_state


class TakeoverCount:
    """``tether_lease_takeovers_total``: the store's count of ``lease_takeover`` events, which
    goes down when retention purges old runs with their events. A counter that goes down is a
    reset to Prometheus (``increase()`` would report every takeover left as new), so the events
    purged while this process serves are added back: the count only grows. (A server started
    after a purge begins again from the store's count.)"""

    def __init__(self) -> None:
        self.last: int | None = None
        self.purged = 0

    def total(self, stored: int) -> int:
        if self.last is not None and stored < self.last:
            self.purged += self.last - stored
        self.last = stored
        return stored + self.purged


async def store_gauges(
    services: Services, who: Principal, takeovers: TakeoverCount | None = None
) -> list[Metric]:
    store = services.runtime.store
    out: list[Metric] = []
    if isinstance(store, RunCounts):
        counts = await store.count_runs(tenant=who.tenant)
        out.append(
            gauge(
                "tether_runs",
                "Runs in the store by status",
                ["status"],
                (([s.value], float(counts.get(s.value, 0))) for s in RunStatus),
            )
        )
    if not who.allows("admin"):
        return out
    now = store_now(store)
    if isinstance(store, QueueControl):
        out += queue_gauges(await store.queue_stats(), now)
    out.append(breaker_gauge())
    if isinstance(store, WorkerRegistry):
        rows = await store.list_workers()
        states: dict[str, int] = {"running": 0, "silent": 0, "stopped": 0}
        in_flight = 0
        for w in rows:
            state = worker_state(w, now)
            states[state] += 1
            in_flight += w.in_flight if state == "running" else 0
        out.append(
            gauge(
                "tether_workers",
                "Registered workers by state (silent: missed two heartbeats)",
                ["state"],
                (([k], float(v)) for k, v in states.items()),
            )
        )
        out.append(
            gauge(
                "tether_worker_runs_in_flight",
                "Runs running workers execute",
                [],
                [([], in_flight)],
            )
        )
    if isinstance(store, LeaseTakeovers):
        stored = await store.count_takeovers()
        family = CounterMetricFamily(
            "tether_lease_takeovers",
            "Runs a worker took over from another owner (its lease expired, or it was found "
            "dead): the lease_takeover events in the store, whichever process recorded them",
        )
        family.add_metric([], float(stored if takeovers is None else takeovers.total(stored)))
        out.append(family)
    return out


KPI_WINDOW = 3600.0
"""The agent KPIs in ``/metrics`` cover the runs created in the last hour..."""
KPI_MAX_RUNS = 500
"""...at most this many (newest first): a scrape stays cheap; ``GET /v1/kpis`` for more."""
KPI_REFRESH = 30.0
"""Seconds a computed set of KPI gauges is served again before it is recomputed."""


def router(services: Services) -> APIRouter:
    store = services.runtime.store
    kpi_cache: list[tuple[float, bytes]] = []
    takeovers = TakeoverCount()

    async def kpi_text() -> bytes:
        """The KPI gauges, recomputed at most every ``KPI_REFRESH`` seconds: each costs a few
        reads per run, and scrapers ask every few seconds."""
        now = time.monotonic()
        if not kpi_cache or now - kpi_cache[0][0] >= KPI_REFRESH:
            since = store_now(store) - KPI_WINDOW
            text = (await kpi_metrics(store, since=since, max_runs=KPI_MAX_RUNS)).encode()
            kpi_cache[:] = [(now, text)]
        return kpi_cache[0][1]

    r = APIRouter(tags=["probes"], responses=API_PROBLEMS, dependencies=[Depends(known_query)])
    read = services.require("read")

    @r.get(
        "/metrics",
        response_class=Response,
        responses={200: {"content": {CONTENT_TYPE_LATEST: {"schema": {"type": "string"}}}}},
    )
    async def metrics(who: Annotated[Principal, Depends(read)]) -> Response:
        """Prometheus metrics (runs by status of the caller's tenant; queues, workers and this
        process's latency histograms and model usage with the admin scope). While the store
        cannot answer, the process's own counters are still served, with ``tether_store_up``
        0: a scrape during an outage is when they matter."""
        try:
            async with asyncio.timeout(STORE_TIMEOUT):
                families = await store_gauges(services, who, takeovers)
                kpis = await kpi_text() if who.allows("admin") else b""
            up = True
        except Exception as exc:
            if not unavailable(exc) and not isinstance(exc, TimeoutError):
                raise
            families, kpis, up = [], (kpi_cache[0][1] if kpi_cache else b""), False
        families.append(store_up(up))
        reg = CollectorRegistry(auto_describe=False)
        reg.register(Families(families))
        text = generate_latest(reg)
        if who.allows("admin"):
            text += generate_latest(services.metrics.registry)
            text += kpis
        return Response(text, media_type=CONTENT_TYPE_LATEST)

    return r
