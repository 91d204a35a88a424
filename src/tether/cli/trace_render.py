"""``tether trace``'s drawing: a run's timeline (``tether.observability.timeline``) as rows of
bars on one time axis, with durations, tokens, cost, retries, trips and approvals.

Pure: it returns rich ``Text`` for a given width and a given ``now``, so the same run always
draws the same (``tests/cli/test_trace_render.py`` keeps a snapshot).
"""

from __future__ import annotations

import math
from typing import Any

from rich.console import Group
from rich.text import Text

from tether.observability.timeline import MODEL, NODE, RUN, STEP, TOOL, Mark, Timeline, TimelineSpan

LABEL = 30
"""Width of the label column."""
DURATION = 9
"""Width of the duration column."""

STYLES = {RUN: "bold", STEP: "cyan", NODE: "blue", MODEL: "magenta", TOOL: "green"}
MARK_STYLES = {
    "escalated": "bold yellow",
    "loop_guard_tripped": "bold red",
    "budget_soft_limit": "yellow",
    "policy_decision": "yellow",
    "approval_requested": "yellow",
    "node_failed": "bold red",
    "node_retry": "red",
    "run_retry_scheduled": "red",
}
QUIET_MARKS = frozenset({"effect_replayed"})
"""Marks drawn only in the counts, not as rows."""
LIFECYCLE_SHOWN = frozenset({"ESCALATED", "FAILED", "CANCELLED"})
"""Lifecycle hops drawn as rows: into these states, and out of ESCALATED (a resume)."""


def fmt_duration(seconds: float) -> str:
    if seconds < 0.001:
        return f"{seconds * 1e6:.0f} µs"
    if seconds < 1:
        return f"{seconds * 1e3:.1f} ms"
    if seconds < 60:
        return f"{seconds:.2f} s"
    if seconds < 3600:
        return f"{int(seconds // 60)}m{int(seconds % 60):02d}s"
    return f"{int(seconds // 3600)}h{int(seconds % 3600 // 60):02d}m"


def fmt_cost(cost: float) -> str:
    return f"${cost:.4f}" if cost < 1 else f"${cost:.2f}"


def _cells(tl: Timeline, start: float, end: float, bar: int, now: float) -> tuple[int, int]:
    t0 = tl.start
    total = max((tl.end if tl.end is not None else now) - t0, 1e-9)
    a = math.floor((start - t0) / total * bar)
    b = math.ceil((end - t0) / total * bar)
    a = min(max(a, 0), bar - 1)
    return a, min(max(b, a + 1), bar)


def _bar(tl: Timeline, span: TimelineSpan, bar: int, now: float) -> Text:
    end = span.end if span.end is not None else now
    a, b = _cells(tl, span.start, end, bar, now)
    glyph = "█" if span.end is not None else "▒"
    text = Text(" " * a)
    text.append(glyph * (b - a), style=STYLES.get(span.kind, ""))
    text.append(" " * (bar - b))
    return text


def _label(span: TimelineSpan) -> str:
    name = span.name
    if span.kind == NODE:
        name = name.removeprefix("node ")
    elif span.kind == TOOL:
        name = "tool " + name.removeprefix("execute_tool ")
    elif span.kind == RUN:
        name = "run"
    text = "  " * span.depth + name
    return text if len(text) <= LABEL else text[: LABEL - 1] + "…"


def span_details(span: TimelineSpan) -> str:
    a = span.attrs
    if span.kind == MODEL:
        parts = [f"{a.get('input_tokens', 0)}→{a.get('output_tokens', 0)} tok"]
        if a.get("cost") is not None:
            parts.append(fmt_cost(float(a["cost"])))
        if a.get("ttft") is not None:
            parts.append(f"ttft {fmt_duration(float(a['ttft']))}")
        if a.get("cache_hit"):
            parts.append("cache hit")
        if a.get("finish_reason") not in (None, "stop"):
            parts.append(str(a["finish_reason"]))
        if a.get("error"):  # no answer came back (cut, refused, cancelled): still billed
            parts.append(f"error {a.get('error_type') or a['error']}")
        return "  ".join(parts)
    if span.kind == TOOL:
        parts = [str(a.get("scope") or "")]
        parts.append("ok" if a.get("ok") else f"error {a.get('error') or ''}".strip())
        if a.get("retries"):
            parts.append(f"{a['retries']} retr{'y' if a['retries'] == 1 else 'ies'}")
        return "  ".join(p for p in parts if p)
    if span.kind == NODE:
        if a.get("replayed"):
            return "replayed from the journal"
        if a.get("finished") is False:
            return "unfinished"
    if span.kind == STEP and a.get("finished") is False:
        return "unfinished"
    return ""


def mark_text(mark: Mark) -> str | None:
    """One line for a mark, or None when it is not drawn as a row."""
    d: dict[str, Any] = mark.data
    name = mark.name
    if name in QUIET_MARKS:
        return None
    if name == "lifecycle":
        src, dst = d.get("from"), d.get("to")
        if dst not in LIFECYCLE_SHOWN and src != "ESCALATED":
            return None
        why = f" ({d['reason']})" if d.get("reason") else ""
        return f"{src} → {dst}{why}"
    if name == "escalated":
        return f"escalated: {d.get('kind')}: {d.get('reason', '')}".rstrip(": ")
    if name == "policy_decision":
        return f"policy {d.get('action')} {d.get('tool')}: {d.get('rule')}: {d.get('reason', '')}"
    if name == "interrupt":
        return f"waiting for human input ({d.get('id')})"
    if name == "approval_requested":
        return f"approval {d.get('approval_id', '')} requested (needs {d.get('required', 1)})"
    if name == "loop_guard_tripped":
        return f"loop guard {d.get('guard', '')} tripped: {d.get('reason', '')}"
    if name == "budget_soft_limit":
        return f"budget {d.get('dimension')} at {d.get('percent')}% of {d.get('limit')}"
    if name == "guard_model_decision":
        return f"guard model {d.get('action')} {d.get('tool')}: {d.get('reason', '')}"
    if name == "node_retry":
        return f"retry after attempt {d.get('attempt')}: {d.get('error', '')}"
    if name == "node_failed":
        return f"failed: {d.get('type')}: {d.get('message', '')}"
    keys = [k for k, v in d.items() if isinstance(v, str | int | float | bool) and v is not None]
    brief = ", ".join(f"{k}={d[k]}" for k in keys[:4])
    return f"{name}{': ' + brief if brief else ''}"


def _shorten(text: str, width: int) -> str:
    return text if len(text) <= width else text[: max(width - 1, 0)] + "…"


def header(tl: Timeline, now: float) -> Text:
    t = tl.totals
    end = tl.end if tl.end is not None else now
    line = Text()
    line.append(f"run {tl.run_id}", style="bold")
    line.append(f"  {tl.workflow}  ")
    line.append(tl.status, style="bold")
    line.append(f"  {fmt_duration(max(end - tl.start, 0.0))}")
    steps = sum(1 for s in tl.spans if s.kind == STEP)
    line.append(f"  {steps} steps  {t.model_calls} model calls  {t.tool_calls} tool calls")
    line.append(f"\ntokens {t.input_tokens}→{t.output_tokens}  cost {fmt_cost(t.cost)}")
    line.append(f"  retries {t.retries}  trips {t.trips}  approvals {t.approvals}")
    return line


def render_timeline(tl: Timeline, *, width: int = 100, now: float) -> Group:
    """The timeline drawn ``width`` columns wide; ``now`` ends the bars still open."""
    bar = max((width - LABEL - DURATION - 2) // 2, 10)
    detail_w = max(width - LABEL - bar - DURATION - 3, 0)
    rows: list[Text] = [header(tl, now), Text("")]
    for span in tl.spans:
        row = Text(f"{_label(span):<{LABEL}} ", style=STYLES.get(span.kind, ""))
        row.append_text(_bar(tl, span, bar, now))
        row.append(f" {fmt_duration(span.duration(now)):>{DURATION}}")
        details = span_details(span)
        if details:
            row.append(" " + _shorten(details, detail_w), style="dim")
        rows.append(row)
        for mark in span.marks:
            text = mark_text(mark)
            if text is None:
                continue
            a, _ = _cells(tl, mark.ts, mark.ts, bar, now)
            line = Text(f"{'  ' * (span.depth + 1) + '! ' + mark.name:<{LABEL}.{LABEL}} ")
            line.append(" " * a + "▲" + " " * (bar - a - 1), style="yellow")
            line.append(" " * (DURATION + 1))
            line.append(" " + _shorten(text, detail_w), style=MARK_STYLES.get(mark.name, "yellow"))
            rows.append(line)
    return Group(*rows)
