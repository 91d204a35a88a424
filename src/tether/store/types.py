"""Records the RunStore persists. Plain dataclasses; values are JSON-like (see core.serde)."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from operator import attrgetter
from typing import Any

from tether.core.lifecycle import RunStatus


@dataclass(slots=True)
class RunRecord:
    run_id: str
    workflow: str
    status: RunStatus
    input: Any = None
    step: int = 0
    """Last committed step (0 = the input checkpoint)."""
    result: Any = None
    error: dict[str, Any] | None = None
    escalation: dict[str, Any] | None = None
    """Why the run is ESCALATED: {"kind": "interrupt"|"step_limit"|..., "reason": ...,
    "interrupts": [...]}."""
    parent_run_id: str | None = None
    parent_step: int | None = None
    idempotency_key: str | None = None
    input_hash: str | None = None
    owner: str | None = None
    lease_token: int = 0
    lease_expires_at: float = 0.0
    created_at: float = 0.0
    updated_at: float = 0.0
    event_seq: int = 0
    metadata: dict[str, Any] = field(default_factory=dict)
    thread_id: str | None = None
    """The conversation thread the run is a turn of (``start(..., thread_id=)``), else None."""
    queue: str = "default"
    """The named queue the run waits in (``submit(..., queue=)``); a runtime serves a set."""
    priority: int = 0
    """Higher is claimed first; FIFO (``created_at``) within one priority."""
    tenant: str | None = None
    """Whose run it is, for per-tenant limits (None: no tenant)."""
    available_at: float = 0.0
    """The run is claimable only from this time on (a delayed start, a retry's backoff, a
    durable sleep); 0: at once."""

    def __copy__(self) -> RunRecord:
        """A shallow copy, five times faster than ``copy.copy``'s generic path for a slotted
        class (stores hand out a copy of a run on every commit)."""
        return RunRecord(*_run_values(self))


_run_values = attrgetter(*(f.name for f in fields(RunRecord)))
"""Every field of a run, in ``__init__``'s order."""


@dataclass(slots=True)
class Checkpoint:
    """What one committed step changed, plus what to run next.

    ``delta`` is the ordered list of writes applied at this step:
    ``[task_id, node, {field: value}]``.
    ``snapshot`` (every so often) is the whole state *after* this step, so reading state at a
    step replays at most the deltas since the nearest snapshot.
    """

    run_id: str
    step: int
    delta: list[Any]
    next_tasks: list[dict[str, Any]]
    snapshot: dict[str, Any] | None = None
    barriers: dict[str, list[str]] = field(default_factory=dict)
    created_at: float = 0.0
    meta: dict[str, Any] = field(default_factory=dict)
    delta_blob: bytes | None = field(default=None, repr=False, compare=False)
    """``delta`` as ``serde.dumps`` wrote it, when the writer has it already (the run loop
    measures each step's delta so): the store writes these bytes instead of encoding the
    delta again. Set only together with ``delta``, never read back from a store."""


@dataclass(slots=True)
class NodeWrite:
    """Journal of one finished (or interrupted) task of a step that is not yet committed."""

    run_id: str
    step: int
    task_id: str
    node: str
    status: str  # "done" | "interrupted"
    writes: dict[str, Any] | None = None
    goto: list[Any] | None = None
    interrupt: Any = None
    resume: list[Any] = field(default_factory=list)
    created_at: float = 0.0
    events: list[Event] = field(default_factory=list)
    """The task's events not yet in a commit (their ``seq`` is assigned when one commits
    them): a run continued after a crash mid-step commits them with the step, since the task
    is not run again. A commit of the step that keeps its writes stores them emptied."""


@dataclass(slots=True)
class EffectRecord:
    run_id: str
    key: str
    kind: str
    status: str  # "pending" | "done" | "failed"
    request: Any = None
    result: Any = None
    error: dict[str, Any] | None = None
    attempts: int = 1
    created_at: float = 0.0
    updated_at: float = 0.0


@dataclass(slots=True)
class Event:
    run_id: str
    seq: int
    type: str
    ts: float
    step: int | None = None
    node: str | None = None
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class Transition:
    run_id: str
    seq: int
    src: RunStatus | None
    dst: RunStatus
    ts: float
    actor: str
    reason: str = ""


@dataclass(slots=True)
class Lease:
    run_id: str
    owner: str
    token: int
    expires_at: float
    run: RunRecord | None = None
    """The run as the claim left it, when the store returns it with the lease (PostgreSQL's
    claim does: no read after it); None: read it (``get_run``)."""
    previous_owner: str | None = None
    """``claim_runs``: the owner whose lease the claim took over (it expired, or its owner was
    found dead); None: nobody held the run (or the store could not tell)."""


@dataclass(slots=True)
class Commit:
    """One atomic write to a run: optional checkpoint, status change, events and run fields.

    Fenced: applied only if the run's lease token still equals the writer's token.
    """

    checkpoint: Checkpoint | None = None
    status: RunStatus | None = None
    transitions: list[tuple[RunStatus, RunStatus, str, str]] = field(default_factory=list)
    """(src, dst, actor, reason) in order; the last dst must equal ``status``."""
    events: list[Event] = field(default_factory=list)
    result: Any = None
    set_result: bool = False
    error: dict[str, Any] | None = None
    set_error: bool = False
    escalation: dict[str, Any] | None = None
    set_escalation: bool = False
    metadata: dict[str, Any] | None = None
    clear_node_writes_for_step: int | None = None
    release_lease: bool = False
    available_at: float | None = None
    """Set the run's ``available_at`` (when not None). With ``release_lease=True`` it parks an
    ACTIVE run until that time: no owner, claimable by any worker from then on."""
    node_writes: list[NodeWrite] = field(default_factory=list)
    """Journal entries to upsert (by run, step, task) in the same transaction: a resume
    records its answer and the run's move back to work at once, never one without the
    other (``put_node_write``'s semantics, fenced with the commit)."""
    base: RunRecord | None = field(default=None, repr=False, compare=False)
    """The run as the writer last read it (or got it back from ``commit``) under this token:
    a fenced commit then reads back and returns only the run's small columns (status, step,
    lease, counters) and takes ``input``/``result``/``metadata``... from ``base``, so a step
    costs what it changes, not the size of the run's input. The store checks ``base`` (same
    token, same ``event_seq``) and reads the whole run when it does not match."""
