"""Prometheus metrics of ``tether serve``.

Two kinds. **Gauges read from the store at scrape time** (a few aggregate queries, nothing
per run): runs by status (of the caller's tenant), queue depth by state and the age of the
oldest waiting run per queue, workers by state and the runs they hold. **Counters and
histograms of this process** (``tether.observability.prometheus.RunMetrics``, observing the
server's runtime: the runs the embedded worker executes): step and node latency, model calls,
tokens and cost, tool calls and tool errors by error type (an open circuit breaker's refusals
show as ``CircuitOpenError``), runs finished here by status.
"""

from tether.observability.prometheus import LATENCY_BUCKETS, RunMetrics
from tether.worker.gauges import (
    STORE_TIMEOUT,
    Families,
    breaker_gauge,
    gauge,
    queue_gauges,
    store_up,
)

__all__ = [
    "LATENCY_BUCKETS",
    "STORE_TIMEOUT",
    "Families",
    "RunMetrics",
    "breaker_gauge",
    "gauge",
    "queue_gauges",
    "store_up",
]
