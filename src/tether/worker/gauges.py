"""Prometheus gauge families computed before a scrape (the store is async; a collector's
``collect()`` is not), shared by ``tether serve``'s and a worker's ``/metrics``."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator, Sequence

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from tether.core.breaker import BreakerState, live_breakers
from tether.store.queue_limits import QueueStats


def gauge(
    name: str, doc: str, labels: Sequence[str], rows: Iterable[tuple[Sequence[str], float]]
) -> Metric:
    """A gauge family with one sample per ``(label values, value)``."""
    g = GaugeMetricFamily(name, doc, labels=list(labels))
    for values, value in rows:
        g.add_metric(list(values), value)
    return g


STORE_TIMEOUT = 5.0
"""Seconds a scrape waits for what the store says; then it answers without it
(``store_up(False)``), well within a scraper's timeout."""


def store_up(up: bool) -> Metric:
    """``tether_store_up``: whether the store answered this scrape."""
    return gauge("tether_store_up", "1 when the store answered this scrape", [], [([], float(up))])


MAX_QUEUE_SERIES = 100
"""Queues with series of their own in a scrape: a client names a run's queue (any string), so
the rest add up under ``OTHER_QUEUES``."""
OTHER_QUEUES = "(other)"


def bounded_queues(stats: Iterable[QueueStats], limit: int = MAX_QUEUE_SERIES) -> list[QueueStats]:
    """The ``limit`` queues with the most ACTIVE runs (then the longest wait, then by name),
    and one ``OTHER_QUEUES`` row adding up the others (its oldest wait the oldest of theirs)."""
    ranked = sorted(
        stats,
        key=lambda q: (-q.depth, q.oldest_waiting_at is None, q.oldest_waiting_at or 0.0, q.queue),
    )
    if len(ranked) <= limit:
        return ranked
    keep = [q for q in ranked if q.queue != OTHER_QUEUES][:limit]  # a queue named "(other)"
    kept = {q.queue for q in keep}  # adds up with the others
    rest = [q for q in ranked if q.queue not in kept]
    oldest = [q.oldest_waiting_at for q in rest if q.oldest_waiting_at is not None]
    other = QueueStats(
        OTHER_QUEUES,
        waiting=sum(q.waiting for q in rest),
        delayed=sum(q.delayed for q in rest),
        running=sum(q.running for q in rest),
        oldest_waiting_at=min(oldest) if oldest else None,
    )
    return [*keep, other]


def queue_gauges(stats: Iterable[QueueStats], now: float) -> list[Metric]:
    """``tether_queue_depth`` {queue, state} and ``tether_queue_oldest_age_seconds`` {queue}:
    at most ``MAX_QUEUE_SERIES`` queues and ``OTHER_QUEUES`` (``bounded_queues``)."""
    stats = bounded_queues(stats)
    return [
        gauge(
            "tether_queue_depth",
            "ACTIVE runs per queue: waiting (claimable), delayed, running (leased)",
            ["queue", "state"],
            (
                ([q.queue, state], float(n))
                for q in stats
                for state, n in (
                    ("waiting", q.waiting),
                    ("delayed", q.delayed),
                    ("running", q.running),
                )
            ),
        ),
        gauge(
            "tether_queue_oldest_age_seconds",
            "How long the oldest waiting run of each queue has waited",
            ["queue"],
            (([q.queue], q.oldest_age(now)) for q in stats),
        ),
    ]


class Families(Collector):
    """A scrape's families, computed beforehand (the store is async; collect() is not)."""

    def __init__(self, families: Iterable[Metric]) -> None:
        self.families = list(families)

    def collect(self) -> Iterator[Metric]:
        yield from self.families


def breaker_gauge() -> Metric:
    """``tether_breaker_state{kind,name,state}``: how many circuit breakers of this process
    (tools, model providers) of that kind and name are in each state: 1 for the state a lone
    breaker is in, 0 for the others. Breakers share a name (each tool executor has its own per
    tool): one series each, never the same series twice in a scrape."""
    counts: dict[tuple[str, str], Counter[BreakerState]] = {}
    for b in live_breakers():
        counts.setdefault((b.kind, b.name), Counter())[b.state] += 1
    return gauge(
        "tether_breaker_state",
        "Circuit breakers of this process (tools, model providers) by kind and name: how many "
        "are in each state",
        ["kind", "name", "state"],
        (
            ([kind, name, state.value], float(counts[kind, name][state]))
            for kind, name in sorted(counts)
            for state in BreakerState
        ),
    )
