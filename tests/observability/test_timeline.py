"""The timeline rebuilt from stored events: steps, nodes, calls, and the marks counted as
retries, trips and approvals (hand-made events whose right answers are known)."""

from __future__ import annotations

from typing import Any

import pytest

from tether.core.lifecycle import RunStatus
from tether.observability.timeline import build_timeline, task_node
from tether.store.types import Event, RunRecord

T0 = 1000.0


def _ev(
    seq: int, type: str, at: float, step: int | None = None, node: str | None = None, **data: Any
) -> Event:
    return Event("r1", seq, type, T0 + at, step, node, data)


EVENTS = [
    _ev(1, "lifecycle", 0.0, **{"from": "PLANNED", "to": "EXECUTING", "reason": "started"}),
    _ev(
        2,
        "model_call",
        0.5,
        1,
        "agent",
        model="openai:gpt-4o",
        input_tokens=100,
        output_tokens=20,
        cost=0.01,
        latency=0.4,
    ),
    _ev(3, "policy_decision", 0.6, 1, "agent", decision="allow", rule="reads"),
    _ev(
        4,
        "tool_call",
        0.9,
        1,
        "agent",
        tool="refund",
        scope="write",
        ok=False,
        attempts=3,
        retries=2,
        latency=0.3,
        error="ToolTransientError",
    ),
    _ev(
        5, "step_finished", 1.0, 1, tasks=["1:agent:0"], keys=["x"], started=T0 + 0.05, took=[0.95]
    ),
    _ev(6, "node_retry", 1.2, 2, "agent", attempt=1, error="boom"),
    _ev(7, "approval_requested", 1.3, 2, "agent", approval_id="a1", required=1),
    _ev(8, "loop_guard_tripped", 1.35, 2, "agent", guard="stutter", reason="again"),
    _ev(9, "escalated", 1.4, 2, None, kind="loop_guard", reason="again"),
    _ev(10, "lifecycle", 1.4, **{"from": "EXECUTING", "to": "ESCALATED", "reason": "x"}),
]


def _run(status: RunStatus) -> RunRecord:
    return RunRecord("r1", "wf", status, step=1, created_at=T0)


def test_steps_nodes_calls_and_totals() -> None:
    tl = build_timeline(_run(RunStatus.ESCALATED), EVENTS, now=T0 + 5)
    keys = [(s.key, s.depth) for s in tl.spans]
    assert keys == [
        ("run", 0),
        ("step:1", 1),
        ("node:1:agent:0", 2),
        ("model:2", 3),
        ("tool:4", 3),
        ("step:2", 1),
        ("node:2:agent", 2),
    ]
    step1 = tl.span("step:1")
    assert step1 is not None and (step1.start, step1.end) == (T0 + 0.05, T0 + 1.0)
    node = tl.span("node:1:agent:0")
    assert node is not None and node.end == T0 + 0.05 + 0.95
    model = tl.span("model:2")
    assert model is not None and model.start == T0 + 0.5 - 0.4 and model.parent == node.key
    assert [m.name for m in node.marks] == ["policy_decision"]
    t = tl.totals
    assert (t.input_tokens, t.output_tokens, t.model_calls, t.tool_calls) == (100, 20, 1, 1)
    assert t.cost == 0.01
    assert t.retries == 2 + 1  # the tool's two retries and the node's
    assert t.trips == 1  # the loop guard's escalation (its own event is the same trip)
    assert t.approvals == 1
    step2 = tl.span("step:2")
    assert step2 is not None and step2.attrs == {"finished": False}
    assert step2.end == T0 + 1.4  # the run is parked: its unfinished step ends at its last event
    assert [m.name for m in step2.marks] == ["escalated"]
    assert tl.end == T0 + 1.4


def test_a_live_run_stays_open() -> None:
    tl = build_timeline(_run(RunStatus.EXECUTING), EVENTS[:6], now=T0 + 3)
    assert tl.end is None
    step2 = tl.span("step:2")
    assert step2 is not None and step2.end is None and step2.duration(T0 + 3) == pytest.approx(1.8)


def test_task_node_names() -> None:
    assert task_node("3:search:0") == "search"
    assert task_node("3:ns:inner:12") == "ns:inner"


def test_a_model_call_that_returned_no_answer_shows_its_error() -> None:
    """A failed model call (a stream cut mid-way, a refused answer) was drawn and exported as
    an ordinary call: '0→0 tok', no error, status unset, where the live span said ERROR."""
    from tether.cli.trace_render import span_details
    from tether.observability.timeline_export import export_spans
    from tether.observability.trace_ids import RunTraceIds

    failed = _ev(
        2,
        "model_call",
        0.5,
        1,
        "agent",
        model="openai:gpt-4o",
        input_tokens=8,
        output_tokens=125,
        estimated=True,
        latency=0.4,
        error="ModelResponseError: the stream ended before its answer did",
        error_type="ModelResponseError",
    )
    tl = build_timeline(_run(RunStatus.FAILED), [EVENTS[0], failed], T0 + 2)
    (model,) = [s for s in tl.spans if s.kind == "model"]
    assert span_details(model).endswith("error ModelResponseError")
    assert "8→125 tok" in span_details(model)
    (span,) = [s for s in export_spans(tl, RunTraceIds(1, 2, None), T0 + 2) if s.name == model.name]
    assert span.error == "ModelResponseError: the stream ended before its answer did"
    assert span.attributes["error.type"] == "ModelResponseError"


class _CountingSpans(dict[str, Any]):
    """The builder's spans, counting the entries read by walks over all of them."""

    visited = 0

    def values(self) -> Any:
        for span in super().values():
            self.visited += 1
            yield span


def test_a_long_run_is_built_in_time_linear_in_its_events() -> None:
    """Each event looked for its node among every span of the run: 20,000 events took 14 s
    to draw, growing with the square of the run's length."""
    from tether.observability.timeline import _Builder

    steps = 400
    events: list[Event] = []
    for step in range(1, steps + 1):
        at = float(step)
        events += [
            _ev(0, "model_call", at + 0.1, step, "agent", model="m", latency=0.05),
            _ev(0, "tool_call", at + 0.2, step, "agent", tool="t", ok=True, latency=0.05),
            *(_ev(0, "note", at + 0.3, step, "agent", k=k) for k in range(3)),
            _ev(0, "step_finished", at + 0.5, step, tasks=[f"{step}:agent:0"], started=at),
        ]
    events = [
        Event("r1", seq, e.type, e.ts, e.step, e.node, e.data) for seq, e in enumerate(events, 1)
    ]
    builder = _Builder(_run(RunStatus.COMPLETED), events, T0 + steps + 1)
    builder.spans = spans = _CountingSpans()
    tl = builder.build()
    assert len(tl.spans) == 1 + 4 * steps and tl.totals.model_calls == steps
    assert all(len(s.marks) == 3 for s in tl.spans if s.kind == "node")
    assert spans.visited <= 4 * len(tl.spans)  # a few walks over the spans, not one per event
