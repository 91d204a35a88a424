"""A worker's own HTTP endpoint (``tether worker --probe-port``, ``Worker(probe_port=...)``):
liveness, readiness and Prometheus metrics of the worker process.

- ``GET /healthz``: 200 while the worker's event loop answers (a liveness probe: restart the
  process when it stops answering). The JSON body describes the worker.
- ``GET /readyz``: 200 once the worker is registered and claiming runs; 503 (problem JSON) while
  it starts, while it drains after SIGTERM, and while its registry heartbeat has been failing
  for longer than ``stale_after`` (the store is unreachable: other workers would take its runs).
- ``GET /metrics``: Prometheus text. This process's counters and histograms
  (``tether.observability.prometheus.RunMetrics``: steps, nodes, model tokens and cost, tool
  calls and errors, runs finished here), the worker's own gauges (runs in flight,
  concurrency, draining, seconds since the last heartbeat, its circuit breakers' states), and
  the depth of the queues it serves, read from the store at scrape time (the same
  ``tether_queue_depth`` / ``tether_queue_oldest_age_seconds`` as ``tether serve``'s
  ``/metrics``: scale workers on them).

With ``probe_token`` set, ``/metrics`` and the worker's description need that bearer token
(``tether.worker.probe_token``); without one the endpoint has no authentication: bind it to
loopback or a cluster-internal address (it shows queue names and counts, never run data).
Needs the ``server`` extra.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING, Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import Metric
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tether.observability.prometheus import RunMetrics
from tether.store.queue_limits import QueueControl
from tether.store.transient import is_transient
from tether.worker.gauges import (
    STORE_TIMEOUT,
    Families,
    breaker_gauge,
    gauge,
    queue_gauges,
    store_up,
)
from tether.worker.probe_token import presented

if TYPE_CHECKING:
    from tether.worker.worker import Worker

log = logging.getLogger("tether.worker")

PROBLEM = "application/problem+json"


class WorkerProbes:
    """The endpoint's app and the state it reports, for one ``Worker``."""

    def __init__(self, worker: Worker) -> None:
        self.worker = worker
        self.metrics = RunMetrics()
        worker.runtime.bus.observe(self.metrics.observe)
        self.app = Starlette(
            routes=[
                Route("/healthz", self.healthz, methods=["GET"]),
                Route("/readyz", self.readyz, methods=["GET"]),
                Route("/metrics", self.scrape, methods=["GET"]),
            ]
        )

    # -- state ------------------------------------------------------------------------------
    def heartbeat_age(self) -> float | None:
        """Seconds since the last registry heartbeat written (or since the worker registered);
        None when the store keeps no worker registry."""
        beat = self.worker.beat
        if beat is None:
            return None
        return time.monotonic() - beat.last_ok

    def describe(self) -> dict[str, Any]:
        w = self.worker
        inc = w.runtime.incarnation
        age = self.heartbeat_age()
        return {
            "worker_id": w.worker_id,
            "owner": w.owner,
            "host": inc.host,
            "pid": inc.pid,
            "queues": w.queues,
            "workflows": w.workflow_names,
            "concurrency": w.concurrency,
            "in_flight": w.runtime.in_flight,
            "draining": w.stopping,
            "heartbeat_age_s": None if age is None else round(age, 3),
        }

    def not_ready(self) -> str | None:
        """Why the worker is not ready, or None."""
        w = self.worker
        if w.stopping:
            return "draining: it stopped claiming runs and hands back the ones it holds"
        if not w.ready.is_set():
            return "starting: not registered and claiming yet"
        age = self.heartbeat_age()
        if age is not None and age > w.stale_after:
            return (
                f"no heartbeat written for {age:.1f} s (over {w.stale_after:g} s): the store is "
                "unreachable and other workers may take over its runs"
            )
        return None

    # -- routes -----------------------------------------------------------------------------
    def _allowed(self, request: Request) -> bool:
        token = self.worker.probe_token
        return token is None or presented(request.headers.get("authorization"), token)

    def _shown(self, request: Request) -> dict[str, Any]:
        """The worker's description, for a caller allowed to see it."""
        return self.describe() if self._allowed(request) else {}

    async def healthz(self, request: Request) -> Response:
        return JSONResponse({"status": "ok", **self._shown(request)})

    async def readyz(self, request: Request) -> Response:
        why = self.not_ready()
        if why is None:
            return JSONResponse({"status": "ready", **self._shown(request)})
        shown = self._shown(request)
        who = f"worker {self.worker.worker_id}" if shown else "the worker"
        return _problem(503, "Service Unavailable", f"{who} is not ready: {why}", shown)

    async def scrape(self, request: Request) -> Response:
        if not self._allowed(request):
            detail = (
                "this worker's metrics need its probe token: send `Authorization: Bearer "
                "<token>` (tether worker --probe-token)"
            )
            headers = {"WWW-Authenticate": 'Bearer realm="tether-worker"'}
            return _problem(401, "Unauthorized", detail, headers=headers)
        reg = CollectorRegistry(auto_describe=False)
        reg.register(Families(await self.families()))
        text = generate_latest(reg) + generate_latest(self.metrics.registry)
        return Response(text, media_type=CONTENT_TYPE_LATEST)

    async def families(self) -> list[Metric]:
        w = self.worker
        d = self.describe()
        age = self.heartbeat_age()
        out = [
            gauge(
                "tether_worker_info",
                "This worker (always 1): its id, host and the queues it serves",
                ["worker_id", "host", "queues"],
                [([w.worker_id, d["host"], ",".join(w.queues or ["*"])], 1.0)],
            ),
            gauge(
                "tether_worker_runs_in_flight",
                "Runs this worker executes now",
                [],
                [([], d["in_flight"])],
            ),
            gauge(
                "tether_worker_concurrency",
                "Runs this worker executes at most at once",
                [],
                [([], w.concurrency)],
            ),
            gauge(
                "tether_worker_draining",
                "1 while the worker drains (SIGTERM): it claims no more runs",
                [],
                [([], 1.0 if w.stopping else 0.0)],
            ),
            gauge(
                "tether_worker_ready",
                "1 when /readyz answers 200",
                [],
                [([], 0.0 if self.not_ready() else 1.0)],
            ),
        ]
        out.append(breaker_gauge())
        if age is not None:
            out.append(
                gauge(
                    "tether_worker_heartbeat_age_seconds",
                    "Seconds since this worker last wrote its registry heartbeat",
                    [],
                    [([], age)],
                )
            )
        store = w.store
        if isinstance(store, QueueControl):
            try:
                stats = await asyncio.wait_for(store.queue_stats(), STORE_TIMEOUT)
            except Exception as exc:  # a scrape during an outage still shows the process
                if not is_transient(exc) and not isinstance(exc, TimeoutError):
                    log.exception("reading queue depth for /metrics failed")
                out.append(store_up(False))
                return out
            served = None if w.queues is None else set(w.queues)
            mine = (q for q in stats if served is None or q.queue in served)
            out += queue_gauges(mine, w.clock.now())
            out.append(store_up(True))
        return out


def _problem(
    status: int,
    title: str,
    detail: str,
    extra: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    """An RFC 9457 problem answer (the server's ``problems`` module would load FastAPI)."""
    body = {"type": "about:blank", "title": title, "status": status, "detail": detail}
    return JSONResponse({**body, **(extra or {})}, status, headers, media_type=PROBLEM)
