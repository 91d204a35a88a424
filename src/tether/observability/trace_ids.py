"""A run's place in a trace, stored with the run so any worker continues the same trace.

Every run is one trace (or one subtree of its parent's trace): its ``invoke_workflow`` span's
ids are fixed when the run is created and kept in the run's metadata under ``"trace"``
(``{"trace_id": 32 hex, "span_id": 16 hex, "parent_span_id": 16 hex | None}``). A run created
inside a span (the application's request span, or a parent run's node: a child run) takes
that span's trace and names it as parent; otherwise its ids derive from its run id, so a run
created while tracing was off, or whose metadata says nothing, still gets the same ids in
every process that executes it.

The metadata is the place rather than a column: it is read with the run record on every claim
(no extra query), written in the run's creation insert (no extra write), and the three store
backends need no migration. Nothing needs to find a run by its trace id.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

TRACE_KEY = "trace"
"""The run-metadata key of a run's trace context."""

_HEX32 = re.compile(r"^[0-9a-f]{32}$")
_HEX16 = re.compile(r"^[0-9a-f]{16}$")


@dataclass(frozen=True, slots=True)
class RunTraceIds:
    trace_id: int
    span_id: int
    """The run's ``invoke_workflow`` span."""
    parent_span_id: int | None = None
    """The span the run nests under (its parent run's node, the caller's span), if any."""

    def to_metadata(self) -> dict[str, Any]:
        return {
            "trace_id": f"{self.trace_id:032x}",
            "span_id": f"{self.span_id:016x}",
            "parent_span_id": (
                f"{self.parent_span_id:016x}" if self.parent_span_id is not None else None
            ),
        }

    @property
    def traceparent(self) -> str:
        """The W3C ``traceparent`` of the run's span."""
        return f"00-{self.trace_id:032x}-{self.span_id:016x}-01"


def derived_ids(run_id: str) -> RunTraceIds:
    """Ids that depend on the run id only (the same in every process)."""
    digest = hashlib.sha256(f"tether-trace:{run_id}".encode()).digest()
    trace_id = int.from_bytes(digest[:16], "big") or 1
    span_id = int.from_bytes(digest[16:24], "big") or 1
    return RunTraceIds(trace_id, span_id)


def span_id_for(run_id: str, what: str) -> int:
    """A stable span id for a part of a run (``tether trace --export``'s rebuilt spans)."""
    digest = hashlib.sha256(f"tether-span:{run_id}:{what}".encode()).digest()
    return int.from_bytes(digest[:8], "big") or 1


def from_metadata(raw: Any) -> RunTraceIds | None:
    """The stored ids, or None when absent or malformed (never raises: a run's metadata may
    have been written by anything)."""
    if not isinstance(raw, Mapping):
        return None
    trace, span, parent = raw.get("trace_id"), raw.get("span_id"), raw.get("parent_span_id")
    if not (isinstance(trace, str) and _HEX32.match(trace)):
        return None
    if not (isinstance(span, str) and _HEX16.match(span)):
        return None
    if parent is not None and not (isinstance(parent, str) and _HEX16.match(parent)):
        return None
    tid, sid = int(trace, 16), int(span, 16)
    if tid == 0 or sid == 0:
        return None
    pid = int(parent, 16) if parent is not None else None
    return RunTraceIds(tid, sid, pid or None)


def run_trace_ids(run_id: str, metadata: Mapping[str, Any] | None) -> RunTraceIds:
    """The run's ids: stored in its metadata, else derived from its id."""
    stored = from_metadata((metadata or {}).get(TRACE_KEY))
    return stored if stored is not None else derived_ids(run_id)


def rerun_trace(run_id: str, metadata: Mapping[str, Any] | None) -> dict[str, Any]:
    """The ``"trace"`` metadata of a FAILED run put back to work (retried or resumed). Its
    ``invoke_workflow`` span was exported when it failed; the span of its next execution needs
    an id of its own (the same id twice in a trace is a duplicate span to every backend): it
    nests under the failed one, in the same trace, and the next execution's steps under it."""
    failed = run_trace_ids(run_id, metadata)
    span_id = span_id_for(run_id, f"rerun:{failed.span_id:016x}")
    return RunTraceIds(failed.trace_id, span_id, failed.span_id).to_metadata()


def ids_for_new_run(run_id: str, current: Any) -> RunTraceIds:
    """The ids of a run created now, inside ``current`` (an OpenTelemetry ``SpanContext``, or
    None): nested under it when it is valid, else derived from the run id."""
    own = derived_ids(run_id)
    if current is None or not getattr(current, "is_valid", False):
        return own
    return RunTraceIds(int(current.trace_id), own.span_id, int(current.span_id))
