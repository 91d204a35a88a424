"""A run's timeline rebuilt from its stored events (pure: no I/O, no OpenTelemetry).

It works for any run in the store, traced or not: steps come from ``step_finished`` (its
``started`` time and the ``took`` of each task), model calls from ``model_call`` (end time and
latency), tool calls from ``tool_call``; every other event (a policy decision, an approval, a
trip, a retry, a lifecycle hop) is a mark on the span it happened in. ``tether trace`` draws it
(``tether.cli.trace_render``) or exports it as spans (``timeline_export``).

A step that did not finish (escalated, failed, still running) spans its events; a task replayed
from the journal after a crash has no duration of its own (its node bar spans the step).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

RUN, STEP, NODE, MODEL, TOOL = "run", "step", "node", "model", "tool"

NOT_TRIPS = frozenset({"interrupt", "approval"})
"""Escalations that wait for a person by design; every other one (a budget, a loop guard, a
step limit, a policy...) is a trip. A guard's own ``loop_guard_tripped`` event is the same trip."""
RETRY_EVENTS = frozenset({"node_retry", "run_retry_scheduled"})
APPROVAL_EVENTS = frozenset({"approval_requested"})


@dataclass(slots=True)
class Mark:
    ts: float
    name: str
    data: dict[str, Any]


@dataclass(slots=True)
class TimelineSpan:
    key: str
    """Stable within the run: ``run``, ``step:3``, ``node:3:ask:0``, ``model:12``, ``tool:14``."""
    parent: str | None
    kind: str
    name: str
    start: float
    end: float | None
    """None: not ended (the run or step is still going)."""
    attrs: dict[str, Any] = field(default_factory=dict)
    marks: list[Mark] = field(default_factory=list)
    depth: int = 0

    def duration(self, now: float) -> float:
        return max((self.end if self.end is not None else now) - self.start, 0.0)


@dataclass(slots=True)
class Totals:
    input_tokens: int = 0
    output_tokens: int = 0
    cost: float = 0.0
    model_calls: int = 0
    tool_calls: int = 0
    retries: int = 0
    trips: int = 0
    approvals: int = 0


@dataclass(slots=True)
class Timeline:
    run_id: str
    workflow: str
    status: str
    start: float
    end: float | None
    spans: list[TimelineSpan]
    """In tree order: each span right after its parent, siblings by start time."""
    totals: Totals

    def span(self, key: str) -> TimelineSpan | None:
        return next((s for s in self.spans if s.key == key), None)


def task_node(task_id: str) -> str:
    """The node of a task id ``{step}:{node}:{index}``."""
    head, _, rest = task_id.partition(":")
    node, _, _ = rest.rpartition(":")
    return node or rest or head


def _num(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _short_model(name: Any) -> str:
    text = str(name or "model")
    return text.split(":", 1)[-1] or text


class _Builder:
    def __init__(self, run: Any, events: list[Any], now: float) -> None:
        self.run = run
        self.events = events
        self.now = now
        self.spans: dict[str, TimelineSpan] = {}
        self.kids: dict[str | None, list[TimelineSpan]] = {}
        """The spans under each span's key: each event finds its node among its step's, not
        among every span of the run (a 20,000-event run took 14 s to draw, quadratically)."""
        self.totals = Totals()

    def add(self, span: TimelineSpan) -> TimelineSpan:
        old = self.spans.get(span.key)
        if old is not None:
            self.kids[old.parent].remove(old)
        self.spans[span.key] = span
        self.kids.setdefault(span.parent, []).append(span)
        return span

    def build(self) -> Timeline:
        run, events = self.run, self.events
        status = getattr(run.status, "value", str(run.status))
        finished = status in ("COMPLETED", "FAILED", "CANCELLED", "ESCALATED")
        start = float(run.created_at or (events[0].ts if events else self.now))
        last = max((e.ts for e in events), default=start)
        end = last if finished else None
        root = self.add(
            TimelineSpan(
                RUN,
                None,
                RUN,
                f"invoke_workflow {run.workflow}",
                start,
                end,
                {"run_id": run.run_id, "status": status, "steps": int(run.step)},
            )
        )
        self._steps(root)
        for ev in events:
            if ev.type == "model_call":
                self._model(ev)
            elif ev.type == "tool_call":
                self._tool(ev)
            elif ev.type != "step_finished":
                self._mark(ev)
        for span in self.spans.values():  # a call's latency may reach before its step's start
            if span.parent is not None and span.kind in (STEP, NODE):
                kids = self.kids.get(span.key)
                if kids:
                    span.start = min(span.start, *(k.start for k in kids))
        return Timeline(
            run.run_id, str(run.workflow), status, start, end, self._ordered(), self.totals
        )

    # -- steps and nodes -----------------------------------------------------------------------
    def _steps(self, root: TimelineSpan) -> None:
        by_step: dict[int, list[Any]] = {}
        for ev in self.events:
            if ev.step is not None:
                by_step.setdefault(int(ev.step), []).append(ev)
        boundary = root.start
        for step in sorted(by_step):
            evs = by_step[step]
            fin = next((e for e in evs if e.type == "step_finished"), None)
            if fin is not None:
                started = _num(fin.data.get("started"))
                s_start = started if started is not None else boundary
                span = self.add(
                    TimelineSpan(f"step:{step}", RUN, STEP, f"step {step}", s_start, fin.ts)
                )
                tasks = [str(t) for t in fin.data.get("tasks") or []]
                took = fin.data.get("took")
                timed = isinstance(took, list)  # runs from before tasks were timed: not
                took = took if isinstance(took, list) else []
                for i, tid in enumerate(tasks):
                    secs = _num(took[i]) if i < len(took) else None
                    n_end = s_start + secs if secs is not None else fin.ts
                    node = task_node(tid)
                    attrs: dict[str, Any] = {"task_id": tid}
                    if secs is None and timed:  # done before a crash, read from the journal
                        attrs["replayed"] = True
                    self.add(
                        TimelineSpan(
                            f"node:{tid}", span.key, NODE, f"node {node}", s_start, n_end, attrs
                        )
                    )
                boundary = fin.ts
            else:  # not finished: escalated, failed, or still running
                first = min(e.ts - (_num(e.data.get("latency")) or 0.0) for e in evs)
                last = max(e.ts for e in evs)
                open_end = None if self.run_open() else last
                span = self.add(
                    TimelineSpan(
                        f"step:{step}",
                        RUN,
                        STEP,
                        f"step {step}",
                        first,
                        open_end,
                        {"finished": False},
                    )
                )

    def run_open(self) -> bool:
        status = getattr(self.run.status, "value", str(self.run.status))
        return status not in ("COMPLETED", "FAILED", "CANCELLED", "ESCALATED")

    def _node_of(self, ev: Any) -> str | None:
        """The span a call or mark made by ``ev``'s node belongs to."""
        if ev.step is None:
            return None
        step_key = f"step:{ev.step}"
        if step_key not in self.spans:
            return None
        if ev.node is None:
            return step_key
        name = f"node {ev.node}"
        named = [s for s in self.kids.get(step_key, ()) if s.kind == NODE and s.name == name]
        if not named:  # an unfinished step: its node spans come from its events
            span = self.add(
                TimelineSpan(
                    f"node:{ev.step}:{ev.node}",
                    step_key,
                    NODE,
                    f"node {ev.node}",
                    ev.ts,
                    ev.ts,
                    {"finished": False},
                )
            )
            return span.key
        for s in named:  # the task whose time covers the event (a fan-out runs one node often)
            if s.end is not None and s.start <= ev.ts <= s.end + 1e-6:
                return s.key
        return named[0].key

    def _grow(self, key: str, start: float, end: float) -> None:
        span = self.spans[key]
        if span.attrs.get("finished") is False and span.end is not None:
            span.start, span.end = min(span.start, start), max(span.end, end)

    # -- calls -------------------------------------------------------------------------------
    def _model(self, ev: Any) -> None:
        d = ev.data
        latency = _num(d.get("latency")) or 0.0
        parent = self._node_of(ev) or RUN
        self._grow(parent, ev.ts - latency, ev.ts)
        tin, tout = int(d.get("input_tokens") or 0), int(d.get("output_tokens") or 0)
        cost = _num(d.get("cost"))
        t = self.totals
        t.model_calls += 1
        t.input_tokens += tin
        t.output_tokens += tout
        t.cost += cost or 0.0
        attrs: dict[str, Any] = {
            "model": d.get("model"),
            "input_tokens": tin,
            "output_tokens": tout,
            "cost": cost,
            "ttft": _num(d.get("ttft")),
            "finish_reason": d.get("finish_reason"),
        }
        cache = d.get("cache")
        if isinstance(cache, Mapping) and cache.get("hit"):
            attrs["cache_hit"] = True
        if d.get("attempts"):
            attrs["attempts"] = d.get("attempts")
        if d.get("error"):  # a call that returned no answer (cut, refused, cancelled)
            attrs["error"] = str(d.get("error"))
            attrs["error_type"] = str(d.get("error_type") or str(d["error"]).split(":")[0])
        self.add(
            TimelineSpan(
                f"model:{ev.seq}",
                parent,
                MODEL,
                f"chat {_short_model(d.get('model'))}",
                ev.ts - latency,
                ev.ts,
                {k: v for k, v in attrs.items() if v is not None},
            )
        )

    def _tool(self, ev: Any) -> None:
        d = ev.data
        latency = _num(d.get("latency")) or 0.0
        parent = self._node_of(ev) or RUN
        self._grow(parent, ev.ts - latency, ev.ts)
        retries = int(d.get("retries") or 0)
        self.totals.tool_calls += 1
        self.totals.retries += retries
        attrs = {
            "tool": d.get("tool"),
            "scope": d.get("scope"),
            "ok": bool(d.get("ok")),
            "attempts": int(d.get("attempts") or 0),
            "retries": retries,
            "error": d.get("error"),
        }
        self.add(
            TimelineSpan(
                f"tool:{ev.seq}",
                parent,
                TOOL,
                f"execute_tool {d.get('tool')}",
                ev.ts - latency,
                ev.ts,
                {k: v for k, v in attrs.items() if v is not None},
            )
        )

    # -- marks -------------------------------------------------------------------------------
    def _mark(self, ev: Any) -> None:
        t = self.totals
        if ev.type in RETRY_EVENTS:
            t.retries += 1
        if ev.type == "escalated" and ev.data.get("kind") not in NOT_TRIPS:
            t.trips += 1
        if ev.type in APPROVAL_EVENTS:
            t.approvals += 1
        key = self._node_of(ev) or RUN
        self._grow(key, ev.ts, ev.ts)
        self.spans[key].marks.append(Mark(ev.ts, ev.type, dict(ev.data)))

    # -- order -------------------------------------------------------------------------------
    def _ordered(self) -> list[TimelineSpan]:
        kids = self.kids
        out: list[TimelineSpan] = []

        def walk(parent: str | None, depth: int) -> None:
            for s in sorted(kids.get(parent, []), key=_order):
                s.depth = depth
                out.append(s)
                walk(s.key, depth + 1)

        walk(None, 0)
        return out


_KIND_ORDER = {RUN: 0, STEP: 1, NODE: 2, MODEL: 3, TOOL: 3}


def _order(s: TimelineSpan) -> tuple[Any, ...]:
    step = int(s.key.split(":")[1]) if s.kind == STEP else 0
    return (_KIND_ORDER[s.kind], step, s.start, s.key)


def build_timeline(run: Any, events: Iterable[Any], now: float) -> Timeline:
    """The timeline of ``run`` (a ``RunRecord``) from its ``events`` (in ``seq`` order);
    ``now`` ends what is still open (a live run)."""
    ordered = sorted(events, key=lambda e: (e.seq if e.seq else 0, e.ts))
    return _Builder(run, ordered, now).build()
