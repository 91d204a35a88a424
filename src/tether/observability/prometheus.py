"""Prometheus counters and histograms of the runs one process executes (``RunMetrics``).

Fed by observing the runtime's event bus (``rt.bus.observe(metrics.observe)``): step and node
latency, model calls, tokens and cost, tool calls and tool errors by error type (an open circuit
breaker's refusals show as ``CircuitOpenError``), and runs that reached a final status here
(a cancel included; a FAILED that a run retry took back to PLANNED in the same commit is not
one: the run is not finished).
``tether serve`` and ``tether worker --probe-port`` publish them at ``/metrics``. Needs
``prometheus-client`` (the ``server`` extra).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator, Mapping
from typing import Any, Protocol

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import Metric
from prometheus_client.registry import Collector

from tether.core.lifecycle import FINISHED

_FINAL = frozenset(s.value for s in FINISHED)


class ObservedEvent(Protocol):
    """What is read of an event (``tether.store.types.Event``)."""

    @property
    def type(self) -> str: ...
    @property
    def ts(self) -> float: ...
    @property
    def data(self) -> Mapping[str, Any]: ...
    @property
    def run_id(self) -> str: ...


LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)


class RunMetrics:
    """The process's counters and histograms (one registry per app)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self._failing: set[str] = set()
        """Runs whose hop to FAILED is not counted yet: a run retry records FAILED -> PLANNED in
        the same commit, published in the same go; only a FAILED that stays is a run that
        finished (``settle``)."""
        r.register(_Settle(self))  # before the counters: a scrape settles first
        self.step_seconds = Histogram(
            "tether_step_seconds", "Wall time of a run step", buckets=LATENCY_BUCKETS, registry=r
        )
        self.node_seconds = Histogram(
            "tether_node_seconds",
            "Wall time of a node (task) in a step",
            ["node"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.model_calls = Counter(
            "tether_model_calls",
            "Model calls made (a failed one is billed too)",
            ["model"],
            registry=r,
        )
        self.model_tokens = Counter(
            "tether_model_tokens", "Model tokens", ["model", "direction"], registry=r
        )
        self.model_cost = Counter(
            "tether_model_cost", "Model cost (the pricing table's currency)", ["model"], registry=r
        )

        self.tool_calls = Counter(
            "tether_tool_calls", "Tool calls made (replays excluded)", ["tool"], registry=r
        )
        self.tool_errors = Counter(
            "tether_tool_errors",
            "Tool calls that ended in an error, by error type (CircuitOpenError: refused by an "
            "open circuit breaker)",
            ["tool", "error"],
            registry=r,
        )

        self.runs_finished = Counter(
            "tether_runs_finished",
            "Runs that reached a final status in this process",
            ["status"],
            registry=r,
        )

    def observe(self, ev: ObservedEvent) -> None:
        kind = ev.type
        if kind == "lifecycle":  # {from, to, reason}
            to = ev.data.get("to")
            if to == _FAILED:
                self._hold_failed(ev.run_id)
            elif ev.data.get("from") == _FAILED and ev.run_id in self._failing:
                self._failing.discard(ev.run_id)  # a retry scheduled in the same commit
            elif to in _FINAL:
                self.runs_finished.labels(to).inc()
            return
        if kind == "step_finished":  # {tasks: [task id], started: time, took?: [seconds]}
            started = ev.data.get("started")
            step = max(0.0, ev.ts - float(started)) if isinstance(started, int | float) else None
            if step is not None:
                self.step_seconds.observe(step)
            tasks = ev.data.get("tasks") or []
            took = ev.data.get("took") or [step] * len(tasks)  # one task ends with its step
            for task_id, seconds in zip(tasks, took, strict=False):
                if isinstance(seconds, int | float):
                    self.node_seconds.labels(_node_of(str(task_id))).observe(float(seconds))
        elif kind == "model_call":
            model = str(ev.data.get("model") or "?")
            self.model_calls.labels(model).inc()
            self.model_tokens.labels(model, "input").inc(_num(ev.data.get("input_tokens")))
            self.model_tokens.labels(model, "output").inc(_num(ev.data.get("output_tokens")))
            self.model_cost.labels(model).inc(_num(ev.data.get("cost")))
        elif kind == "tool_call":  # tether.tools.observed: {tool, ok, error, attempts, ...}
            tool = str(ev.data.get("tool") or "?")
            if ev.data.get("error") == UNKNOWN_TOOL_ERROR:  # a name a model made up: one label,
                tool = UNKNOWN_TOOL  # not a new series for every name it invents
            self.tool_calls.labels(tool).inc()
            if not ev.data.get("ok", True):
                self.tool_errors.labels(tool, str(ev.data.get("error") or "?")).inc()

    def _hold_failed(self, run_id: str) -> None:
        """Count the run's FAILED once what its commit published is known: at the event loop's
        next turn (a commit's events are published without a pause), or at a scrape."""
        self._failing.add(run_id)
        with contextlib.suppress(RuntimeError):  # no loop (events fed by hand): a scrape will
            asyncio.get_running_loop().call_soon(self.settle)

    def settle(self) -> None:
        """Count the FAILED hops no retry followed."""
        while self._failing:
            self._failing.pop()
            self.runs_finished.labels(_FAILED).inc()


class _Settle(Collector):
    """Settles ``RunMetrics``' held FAILED hops when the registry is collected."""

    def __init__(self, metrics: RunMetrics) -> None:
        self.metrics = metrics

    def collect(self) -> Iterator[Metric]:
        self.metrics.settle()
        return iter(())


_FAILED = "FAILED"

UNKNOWN_TOOL_ERROR = "ToolNotFoundError"
UNKNOWN_TOOL = "(unknown)"
"""The ``tool`` label of calls to a tool no registry holds."""


def _node_of(task_id: str) -> str:
    """The node of a task id ``<step>:<node>:<index>``."""
    parts = task_id.split(":")
    return ":".join(parts[1:-1]) if len(parts) >= 3 else task_id


def _num(x: Any) -> float:
    return float(x) if isinstance(x, int | float) and not isinstance(x, bool) and x > 0 else 0.0
