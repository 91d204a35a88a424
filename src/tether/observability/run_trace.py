"""The spans of one execution of one run in this process.

A run is one trace: ``invoke_workflow {workflow}`` is its root (or nests under the span the
run was created in), ``step {n}`` spans are its children, and each step's nodes are
``invoke_agent {node}`` (agent and planner phases) or ``node {node}`` (tool and validator
phases) spans below their step. Model calls (``chat {model}``) and tool calls
(``execute_tool {name}``) nest under the node that makes them, child runs under the node that
starts them.

The run may execute in several processes (a worker dies, another resumes it hours later): the
root's ids are fixed with the run (``trace_ids``), every process parents its steps to them,
and the process that ends the run (COMPLETED, FAILED, CANCELLED) exports the root span itself,
from the run's creation to its end. The run's events (policy decisions, approvals, budget and
loop-guard trips, retries, lifecycle hops...) become span events of the span they happen in.

The run loop (``tether.graph.loop``) makes one :class:`RunTrace` per execution when tracing is
on (``start_run_trace`` returns None otherwise, and the loop then does nothing extra).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

from tether.core.lifecycle import FINISHED, RunStatus
from tether.observability import semconv as sc
from tether.observability.pinned_ids import pinned
from tether.observability.span_scope import active, enter, leave
from tether.observability.span_values import event_attributes
from tether.observability.trace_ids import RunTraceIds, run_trace_ids
from tether.observability.tracing import GRAPH_SCOPE, WORKFLOW_SCOPE, capture_content, tracer

SPAN_EVENTS_SKIPPED = frozenset(
    {"model_call", "tool_call", "step_finished", "step_started", "node_started", "node_finished"}
)
"""Run events a span already stands for."""

AGENT_PHASES = frozenset({"agent", "planner"})
"""Node phases whose nodes are agents (``invoke_agent`` spans)."""


def start_run_trace(run: Any, workflow: str, worker: str) -> RunTrace | None:
    """The spans of this execution of ``run`` (a ``RunRecord``), or None when tracing is off."""
    t = tracer(GRAPH_SCOPE)
    if t is None:
        return None
    return RunTrace(t, run, workflow, worker)


def remote_parent(trace_id: int, span_id: int) -> Any:
    """An OpenTelemetry context whose current span is the (remote) span ``span_id``."""
    from opentelemetry import trace as ot
    from opentelemetry.context import Context

    span = ot.NonRecordingSpan(
        ot.SpanContext(
            trace_id, span_id, is_remote=True, trace_flags=ot.TraceFlags(ot.TraceFlags.SAMPLED)
        )
    )
    return ot.set_span_in_context(span, Context())


def mark_failed(span: Any, error_type: str, message: str) -> None:
    from opentelemetry.trace import Status, StatusCode

    span.set_attribute(sc.ERROR_TYPE, error_type)
    span.set_status(Status(StatusCode.ERROR, message[:500]))


class RunTrace:
    """Opens and ends the spans of one execution of one run (see the module docstring)."""

    __slots__ = (
        "_base",
        "_loose",
        "_parent",
        "_resumed",
        "_step",
        "ids",
        "run_id",
        "tracer",
        "worker",
        "workflow",
    )

    def __init__(self, tracer: Any, run: Any, workflow: str, worker: str) -> None:
        self.tracer = tracer
        self.run_id: str = run.run_id
        self.workflow = workflow
        self.worker = worker
        self.ids: RunTraceIds = run_trace_ids(run.run_id, run.metadata)
        self._parent = remote_parent(self.ids.trace_id, self.ids.span_id)
        self._base: dict[str, Any] = {sc.RUN_ID: run.run_id}
        self._resumed = run.step > 0
        self._step: Any = None
        self._loose: list[tuple[str, dict[str, Any], int]] = []

    # -- steps and nodes --------------------------------------------------------------------
    def start_step(self, step: int, nodes: Sequence[str]) -> None:
        self.end_step(None)
        attrs = {**self._base, sc.STEP: step, sc.WORKER: self.worker, sc.NODES: ",".join(nodes)}
        if self._resumed:  # the first step this process runs of a run that ran before
            attrs[sc.RESUMED] = True
            self._resumed = False
        self._step = self.tracer.start_span(
            sc.span_name(sc.STEP_SPAN, step), context=self._parent, attributes=attrs
        )

    def end_step(self, status: RunStatus | None, error: Mapping[str, Any] | None = None) -> None:
        span, self._step = self._step, None
        if span is None:
            return
        if status is not None:
            span.set_attribute(sc.RUN_STATUS, status.value)
        if error:
            mark_failed(span, str(error.get("type", "Error")), str(error.get("message", "")))
        span.end()

    async def run_node(
        self,
        step: int,
        task: Mapping[str, Any],
        phase: str,
        call: Callable[[], Awaitable[Any]],
    ) -> Any:
        """Run one task (``call``) inside its node span; returns its outcome."""
        from opentelemetry import trace as ot

        node = str(task["node"])
        agent = phase in AGENT_PHASES
        attrs = {**self._base, sc.NODE: node, sc.PHASE: phase, sc.TASK_ID: str(task["id"])}
        if agent:
            attrs[sc.OPERATION_NAME] = sc.OP_INVOKE_AGENT
            attrs[sc.AGENT_NAME] = node
            name = sc.span_name(sc.OP_INVOKE_AGENT, node)
        else:
            name = sc.span_name(sc.NODE_SPAN, node)
        parent = ot.set_span_in_context(self._step) if self._step is not None else self._parent
        span = self.tracer.start_span(name, context=parent, attributes=attrs)
        entered = enter(self.run_id, span)
        try:
            out = await call()
        except BaseException as exc:
            leave(entered)
            mark_failed(span, type(exc).__qualname__, str(exc))
            span.end()
            raise
        leave(entered)
        span.set_attribute(sc.OUTCOME, str(getattr(out, "kind", "done")))
        span.set_attribute(sc.ATTEMPTS, int(getattr(out, "attempts", 1)))
        err = getattr(out, "error", None)
        if err is not None:
            mark_failed(span, type(err).__qualname__, str(err))
        span.end()
        return out

    # -- events -----------------------------------------------------------------------------
    def event(self, type: str, data: Mapping[str, Any]) -> None:
        """A run event as a span event of the span it happens in (a tool call, a node, the
        step; before any step, the run's own span when this process ends the run)."""
        if type in SPAN_EVENTS_SKIPPED:
            return
        attrs = event_attributes(data, capture_content())
        span = active(self.run_id)
        if span is None or not span.is_recording():
            span = self._step
        if span is None:
            self._loose.append((type, attrs, time.time_ns()))
            return
        span.add_event(type, attrs)

    # -- commits and the end ------------------------------------------------------------------
    def committed(self, status: RunStatus | None, ends_step: bool, run: Any) -> None:
        """After each commit of the run: a checkpoint or a release ends the open step; an
        end of the run (COMPLETED, FAILED, CANCELLED) exports its ``invoke_workflow`` span."""
        if ends_step:
            failed = status is RunStatus.FAILED
            self.end_step(status, run.error if failed else None)
        if status is not None and status in FINISHED:
            self.finish(run, status)

    def close(self, error: BaseException | None = None) -> None:
        """The execution stopped here (lease lost, drained, crashed): end the open step."""
        span, self._step = self._step, None
        if span is None:
            return
        if error is not None:
            mark_failed(span, type(error).__qualname__, str(error))
        span.end()

    def finish(self, run: Any, status: RunStatus) -> None:
        emit_workflow_span(run, self.workflow, status, self.ids, self._loose)
        self._loose = []


def emit_workflow_span(
    run: Any,
    workflow: str,
    status: RunStatus,
    ids: RunTraceIds | None = None,
    events: Sequence[tuple[str, dict[str, Any], int]] = (),
) -> None:
    """Export the run's ``invoke_workflow`` span with its fixed ids, from its creation to now."""
    t = tracer(WORKFLOW_SCOPE)
    if t is None:
        return
    from opentelemetry.context import Context
    from opentelemetry.trace import SpanKind

    ids = ids or run_trace_ids(run.run_id, run.metadata)
    parent = (
        remote_parent(ids.trace_id, ids.parent_span_id)
        if ids.parent_span_id is not None
        else Context()
    )
    attrs: dict[str, Any] = {
        sc.OPERATION_NAME: sc.OP_INVOKE_WORKFLOW,
        sc.WORKFLOW_NAME: workflow,
        sc.RUN_ID: run.run_id,
        sc.RUN_STATUS: status.value,
        sc.RUN_STEPS: int(run.step),
    }
    for key, value in (
        (sc.PARENT_RUN_ID, run.parent_run_id),
        (sc.TENANT, run.tenant),
        (sc.CONVERSATION_ID, run.thread_id),
    ):
        if value is not None:
            attrs[key] = value
    end = time.time_ns()
    start = int(run.created_at * 1e9) if run.created_at else end
    with pinned(ids.trace_id, ids.span_id):
        span = t.start_span(
            sc.span_name(sc.OP_INVOKE_WORKFLOW, workflow),
            context=parent,
            kind=SpanKind.INTERNAL,
            attributes=attrs,
            start_time=min(start, end),
        )
    for name, event_attrs, ts in events:
        span.add_event(name, event_attrs, timestamp=ts)
    if status is RunStatus.FAILED:
        err = run.error or {}
        mark_failed(span, str(err.get("type", "Error")), str(err.get("message", "")))
    span.end(end_time=end)


def trace_metadata_for_new_run(run_id: str) -> dict[str, Any] | None:
    """The ``"trace"`` metadata of a run created now (``trace_ids``), or None when tracing is
    off: nested under the current span (the caller's, or the parent run's node)."""
    if tracer(GRAPH_SCOPE) is None:
        return None
    from opentelemetry import trace as ot

    from tether.observability.trace_ids import ids_for_new_run

    return ids_for_new_run(run_id, ot.get_current_span().get_span_context()).to_metadata()
