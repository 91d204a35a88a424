"""What the client returns: plain dataclasses read from the server's JSON.

Each keeps the JSON it was read from in ``raw`` (fields a newer server adds are there), and is
built leniently: a missing field takes its default, an unknown status stays a string.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from tether.core.lifecycle import FINISHED, PARKED, RunStatus

__all__ = [
    "Approval",
    "Event",
    "HistoryStep",
    "Page",
    "Run",
    "StateAt",
    "Transition",
    "WorkflowInfo",
]

SETTLED = FINISHED | PARKED
"""Statuses in which a run no longer moves on its own: ``wait`` returns on them."""


def _status(value: Any) -> RunStatus | str:
    try:
        return RunStatus(str(value))
    except ValueError:
        return str(value)


def _f(value: Any) -> float:
    return float(value) if isinstance(value, int | float) else 0.0


def _int_or_none(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _obj_or_none(value: Any) -> dict[str, Any] | None:
    return dict(value) if isinstance(value, Mapping) else None


@dataclass(slots=True)
class Run:
    """A run as the server reports it (``GET /v1/runs/{id}``). A list's items (summaries)
    have no ``input``, ``state`` or ``result``: those are None there; they have their
    ``usage`` (``input_tokens``, ``output_tokens``, ``cost``, ``model_calls``, ``tool_calls``),
    and at most 4 KiB each of ``metadata``, ``escalation`` and ``error``: when one was cut,
    ``metadata_truncated`` (``escalation_truncated``, ``error_truncated``) says so (``{"bytes",
    "omitted_keys", "href"}``) and ``client.get(run_id)`` has all of it."""

    run_id: str
    workflow: str
    status: RunStatus | str
    phase: str | None = None
    step: int = 0
    event_seq: int = 0
    input: Any = None
    state: dict[str, Any] | None = None
    result: Any = None
    error: dict[str, Any] | None = None
    escalation: dict[str, Any] | None = None
    usage: dict[str, Any] = field(default_factory=dict)
    parent_run_id: str | None = None
    parent_step: int | None = None
    thread_id: str | None = None
    queue: str = "default"
    priority: int = 0
    tenant: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    metadata_truncated: dict[str, Any] | None = None
    escalation_truncated: dict[str, Any] | None = None
    error_truncated: dict[str, Any] | None = None
    created_at: float = 0.0
    updated_at: float = 0.0
    current_nodes: list[str] = field(default_factory=list)
    idempotency_key: str | None = None
    input_hash: str | None = None
    owner: str | None = None
    lease_token: int = 0
    lease_expires_at: float = 0.0
    available_at: float = 0.0
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Run:
        return cls(
            run_id=str(data.get("run_id", "")),
            workflow=str(data.get("workflow", "")),
            status=_status(data.get("status", "")),
            phase=data.get("phase"),
            step=int(data.get("step") or 0),
            event_seq=int(data.get("event_seq") or 0),
            input=data.get("input"),
            state=data.get("state"),
            result=data.get("result"),
            error=data.get("error"),
            escalation=data.get("escalation"),
            usage=dict(data.get("usage") or {}),
            parent_run_id=data.get("parent_run_id"),
            parent_step=_int_or_none(data.get("parent_step")),
            thread_id=data.get("thread_id"),
            queue=str(data.get("queue") or "default"),
            priority=int(data.get("priority") or 0),
            tenant=data.get("tenant"),
            metadata=dict(data.get("metadata") or {}),
            metadata_truncated=_obj_or_none(data.get("metadata_truncated")),
            escalation_truncated=_obj_or_none(data.get("escalation_truncated")),
            error_truncated=_obj_or_none(data.get("error_truncated")),
            created_at=_f(data.get("created_at")),
            updated_at=_f(data.get("updated_at")),
            current_nodes=[str(n) for n in data.get("current_nodes") or []],
            idempotency_key=data.get("idempotency_key"),
            input_hash=data.get("input_hash"),
            owner=data.get("owner"),
            lease_token=int(data.get("lease_token") or 0),
            lease_expires_at=_f(data.get("lease_expires_at")),
            available_at=_f(data.get("available_at")),
            raw=dict(data),
        )

    @property
    def tokens(self) -> int:
        """Model tokens the run used, input and output (0 when the server reports no usage)."""
        return int(self.usage.get("input_tokens") or 0) + int(self.usage.get("output_tokens") or 0)

    @property
    def cost(self) -> float:
        """What its model calls cost (the pricing table's currency; 0.0 when unreported)."""
        return _f(self.usage.get("cost"))

    @property
    def settled(self) -> bool:
        """Finished (COMPLETED, FAILED, CANCELLED) or parked waiting for a human."""
        return self.status in SETTLED

    @property
    def finished(self) -> bool:
        return self.status in FINISHED

    @property
    def interrupts(self) -> list[dict[str, Any]]:
        """Pending interrupts (id, node, payload) when the run waits for an answer."""
        if self.status is RunStatus.ESCALATED and self.escalation:
            return list(self.escalation.get("interrupts") or [])
        return []


@dataclass(slots=True)
class Event:
    """One event of a run's log: ``seq`` orders them (resume a stream after it)."""

    seq: int
    kind: str
    data: dict[str, Any] = field(default_factory=dict)
    created_at: float = 0.0
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Event:
        payload = data.get("data")
        return cls(
            seq=int(data.get("seq") or 0),
            kind=str(data.get("kind") or data.get("type") or ""),
            data=dict(payload) if isinstance(payload, Mapping) else {"value": payload},
            created_at=_f(data.get("created_at")),
            raw=dict(data),
        )


@dataclass(slots=True)
class HistoryStep:
    """One committed step: the nodes that ran and what they wrote."""

    step: int
    nodes: list[str] = field(default_factory=list)
    created_at: float = 0.0
    writes: Any = None
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> HistoryStep:
        return cls(
            step=int(data.get("step") or 0),
            nodes=[str(n) for n in data.get("nodes") or []],
            created_at=_f(data.get("created_at")),
            writes=data.get("writes"),
            raw=dict(data),
        )


@dataclass(slots=True)
class Transition:
    """One change of a run's status (``src`` None: the run was created), who made it
    (``actor``: ``api:<key name>``, ``worker:<id>``...) and why."""

    seq: int
    src: RunStatus | str | None
    dst: RunStatus | str
    created_at: float = 0.0
    actor: str = ""
    reason: str = ""
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Transition:
        src = data.get("src")
        return cls(
            seq=int(data.get("seq") or 0),
            src=None if src is None else _status(src),
            dst=_status(data.get("dst", "")),
            created_at=_f(data.get("created_at")),
            actor=str(data.get("actor") or ""),
            reason=str(data.get("reason") or ""),
            raw=dict(data),
        )


@dataclass(slots=True)
class StateAt:
    run_id: str
    step: int
    state: dict[str, Any]

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> StateAt:
        return cls(str(data.get("run_id", "")), int(data.get("step") or 0), data.get("state") or {})


@dataclass(slots=True)
class RunUpgrade:
    """What ``upgrade`` did (or, with ``dry_run``, would do) to a run."""

    run_id: str
    workflow: str
    status: str
    from_version: str | None
    to_version: str
    changed: bool
    dry_run: bool

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> RunUpgrade:
        before = data.get("from_version")
        return cls(
            str(data.get("run_id", "")),
            str(data.get("workflow", "")),
            str(data.get("status", "")),
            None if before is None else str(before),
            str(data.get("to_version", "")),
            bool(data.get("changed")),
            bool(data.get("dry_run")),
        )


@dataclass(slots=True)
class Approval:
    """An approval request of a governed call, and the votes on it."""

    approval_id: str
    run_id: str
    status: str
    tool: str | None = None
    arguments: Any = None
    reason: str = ""
    required_approvers: Any = None
    votes: list[Any] = field(default_factory=list)
    deadline: float | None = None
    created_at: float = 0.0
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Approval:
        deadline = data.get("deadline")
        return cls(
            approval_id=str(data.get("approval_id", "")),
            run_id=str(data.get("run_id", "")),
            status=str(data.get("status", "")),
            tool=data.get("tool"),
            arguments=data.get("arguments"),
            reason=str(data.get("reason") or ""),
            required_approvers=data.get("required_approvers"),
            votes=list(data.get("votes") or []),
            deadline=float(deadline) if isinstance(deadline, int | float) else None,
            created_at=_f(data.get("created_at")),
            raw=dict(data),
        )


@dataclass(slots=True)
class WorkflowInfo:
    """A workflow the server knows, with its graph (nodes, edges, entry) for display."""

    name: str
    version: str = ""
    graph: dict[str, Any] = field(default_factory=dict)
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> WorkflowInfo:
        return cls(
            str(data.get("name", "")),
            str(data.get("version") or ""),
            dict(data.get("graph") or {}),
            dict(data),
        )


@dataclass(slots=True)
class Page:
    """One page of a listing and the cursor of the next (None: the last page)."""

    items: list[Any]
    next_cursor: str | None = None
