"""Request bodies and response shapes of the HTTP API (pydantic: validated, in the OpenAPI)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import Path
from pydantic import BaseModel, ConfigDict, Field, model_validator

from tether.core import serde

Status = Literal[
    "RECEIVED",
    "PLANNED",
    "EXECUTING",
    "WAITING_FOR_TOOL",
    "VALIDATING",
    "COMPLETED",
    "ESCALATED",
    "FAILED",
    "CANCELLED",
]
Phase = Literal["queued", "running", "waiting", "finished"]
JsonObject = dict[str, Any]
NAME = Field(min_length=1, max_length=200)


ID_PATTERN = r"^[A-Za-z0-9_.:@-]{1,200}$"
RunId = Annotated[str, Path(pattern=ID_PATTERN, description="a run id")]
ApprovalId = Annotated[str, Path(pattern=ID_PATTERN, description="an approval request id")]
WorkflowName = Annotated[str, Path(min_length=1, max_length=200)]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")

    @model_validator(mode="before")
    @classmethod
    def _storable(cls, data: Any) -> Any:
        """A body tether could not store is refused whole, with where: JSON text may spell a
        lone surrogate (``"\\ud800"``, not UTF-8), ``NaN`` or a 100-digit integer, and each
        would otherwise fail later, at the write, as a 500."""
        bad = serde.unstorable(data)
        if bad is not None:
            where, what = bad
            advice = _SEND.get(what, "send JSON")
            raise ValueError(f"the body holds {what} at body{where}: {advice}")
        return data


_SEND = {
    serde.NONFINITE: "JSON has no such numbers, send null or a finite number",
    serde.SURROGATE: "send text as UTF-8 (a \\ud800-\\udfff escape must be one half of a pair)",
    serde.HUGE_INT: "send it as a string",
    serde.TOO_DEEP: "flatten it, or send the deep part as a JSON string",
}


# -- requests ---------------------------------------------------------------------------------
class SubmitRun(_Body):
    workflow: str = Field(min_length=1, max_length=200, description="a registered workflow")
    input: JsonObject = Field(default_factory=dict, description="the run's input state fields")
    idempotency_key: str | None = Field(
        default=None, min_length=1, max_length=200, description="same key twice: one run"
    )
    thread_id: str | None = Field(default=None, min_length=1, max_length=200)
    queue: str = Field(default="default", min_length=1, max_length=200)
    priority: int = Field(default=0, ge=-(2**31) + 1, le=2**31 - 1)
    budget: JsonObject | None = Field(
        default=None, description='limits for this run, e.g. {"cost": 2.0, "model_calls": 10}'
    )
    metadata: JsonObject = Field(default_factory=dict)


class CancelRun(_Body):
    reason: str = Field(default="", max_length=2000)


class UpgradeRun(_Body):
    dry_run: bool = Field(default=False, description="check only; change nothing")


class ResumeRun(_Body):
    value: Any = Field(default=None, description="the answer to the run's pending interrupt")
    interrupt_id: str | None = Field(default=None, min_length=1, max_length=200)
    max_steps: int | None = Field(default=None, ge=1, le=1_000_000)


class ForkRun(_Body):
    step: int = Field(ge=0, le=2**62)
    patch: JsonObject | None = None


class ApproveBody(_Body):
    approver: str = Field(min_length=1, max_length=200)
    signature: str = Field(
        min_length=1,
        max_length=2000,
        description="ed25519:<expires_at>:<base64url>, made by tether.governance.approvals.sign "
        "(or `tether approvals approve`) over this request's signing payload",
    )
    comment: str = Field(default="", max_length=2000)


class RejectBody(_Body):
    approver: str = Field(min_length=1, max_length=200)
    signature: str = Field(min_length=1, max_length=2000)
    reason: str = Field(default="", max_length=2000)


# -- responses --------------------------------------------------------------------------------
class Usage(BaseModel):
    input_tokens: int = 0
    output_tokens: int = 0
    cost: float = 0.0
    model_calls: int = 0
    tool_calls: int = 0


class MetadataCut(BaseModel):
    """A list item's metadata (escalation, error) was cut to the entries that fit in 4 KiB
    (whole, in order)."""

    bytes: int = Field(description="the size of all of it, as JSON")
    omitted_keys: int = Field(description="how many of its entries the item leaves out")
    href: str = Field(description="GET it for all of it: /v1/runs/{run_id}")


class RunSummary(BaseModel):
    run_id: str
    workflow: str
    status: Status
    phase: Phase
    step: int
    event_seq: int = Field(
        default=0, description="the run's last event; its events are numbered 1..event_seq"
    )
    error: JsonObject | None = Field(
        default=None, description="in a list, at most 4 KiB of it: see error_truncated"
    )
    escalation: JsonObject | None = Field(
        default=None, description="in a list, at most 4 KiB of it: see escalation_truncated"
    )
    usage: Usage | None = Field(
        default=None, description="on GET /v1/runs/{run_id} and in the runs list (not on submit)"
    )
    parent_run_id: str | None = None
    parent_step: int | None = Field(
        default=None, description="a fork: the step of the parent it continues from"
    )
    thread_id: str | None = None
    queue: str
    priority: int
    tenant: str | None = None
    metadata: JsonObject = Field(
        description="in a list, at most 4 KiB of it: see metadata_truncated"
    )
    metadata_truncated: MetadataCut | None = Field(
        default=None,
        description="in a list (and the run-change stream): set when metadata holds only the "
        "entries that fit in 4 KiB; GET href for all of it. Null: metadata is whole",
    )
    escalation_truncated: MetadataCut | None = Field(
        default=None,
        description="like metadata_truncated, for escalation (an interrupt's payload can be "
        "large). Null: escalation is whole",
    )
    error_truncated: MetadataCut | None = Field(
        default=None, description="like metadata_truncated, for error. Null: error is whole"
    )
    created_at: float
    updated_at: float
    current_nodes: list[str] = Field(default_factory=list)
    idempotency_key: str | None = Field(
        default=None, description="the key the run was submitted with (a tenant's as it sent it)"
    )
    input_hash: str | None = Field(
        default=None, description="the hash of the input (a reused key with another input: 409)"
    )
    owner: str | None = Field(
        default=None, description="the worker that holds the run's lease (None: no worker)"
    )
    lease_token: int = Field(default=0, description="the lease's fencing token, +1 per claim")
    lease_expires_at: float = Field(default=0.0, description="when the lease runs out")
    available_at: float = Field(
        default=0.0, description="claimable from this time on (a delayed start or retry); 0: now"
    )


class Run(RunSummary):
    input: Any = None
    state: JsonObject | None = None
    result: Any = None


class RunUpgrade(BaseModel):
    """What an upgrade did (or, with ``dry_run``, would do) to a run."""

    run_id: str
    workflow: str
    status: Status
    from_version: str | None = Field(description="the version the run recorded")
    to_version: str = Field(description="the version of the workflow this server runs")
    changed: bool = Field(description="false: already on it, or a dry run")
    dry_run: bool


class RunPage(BaseModel):
    items: list[RunSummary]
    next_cursor: str | None


class StepItem(BaseModel):
    step: int
    nodes: list[str]
    tasks: list[str]
    created_at: float
    writes: list[JsonObject] = Field(description="[{task_id, node, writes: {field: value}}]")
    snapshot: bool
    next_tasks: list[JsonObject] = Field(
        default_factory=list, description="the tasks this step planned next: [{id, node}]"
    )
    meta: JsonObject = Field(
        default_factory=dict, description="notes of the step (a re-plan, where a fork began)"
    )


class StepPage(BaseModel):
    items: list[StepItem]
    next_cursor: str | None


class TransitionItem(BaseModel):
    seq: int = Field(description="1, 2... in the order the run changed status")
    src: Status | None = Field(description="the status before (None: the run was created)")
    dst: Status = Field(description="the status after")
    created_at: float
    actor: str = Field(
        description="who made the change: api:<key name> (api:local without keys), "
        "worker:<id>, cli:<user>..."
    )
    reason: str = ""


class TransitionPage(BaseModel):
    items: list[TransitionItem]
    next_cursor: str | None


class StateAtStep(BaseModel):
    run_id: str
    step: int
    state: JsonObject


class EventItem(BaseModel):
    seq: int
    kind: str
    data: JsonObject
    created_at: float
    step: int | None = None
    node: str | None = None


class EventPage(BaseModel):
    items: list[EventItem]
    next_cursor: str | None


class InterruptItem(BaseModel):
    run_id: str
    workflow: str
    step: int
    interrupt: JsonObject
    created_at: float


class InterruptList(BaseModel):
    items: list[InterruptItem]
    next_cursor: str | None = None


class Approval(BaseModel):
    approval_id: str
    run_id: str
    tool: str | None
    arguments: Any = None
    reason: str
    required_approvers: int
    votes: list[JsonObject]
    status: str
    deadline: float | None
    created_at: float
    updated_at: float
    intent: JsonObject
    intent_hash: str
    rule: JsonObject


class ApprovalList(BaseModel):
    items: list[Approval]
    next_cursor: str | None = None


class SigningPayload(BaseModel):
    approval_id: str
    decision: Literal["approve", "reject"]
    expires_at: float
    payload: str = Field(description="base64 of the exact bytes an Ed25519 signature covers")
    signature_format: str = "ed25519:<expires_at>:<base64url signature>"


class GraphNode(BaseModel):
    id: str
    label: str
    phase: str | None = None


class GraphEdge(BaseModel):
    source: str
    target: str
    conditional: bool
    label: str | None = None


class WorkflowGraph(BaseModel):
    nodes: list[GraphNode]
    edges: list[GraphEdge]
    entry: list[str]
    phases: dict[str, str]


class WorkflowItem(BaseModel):
    name: str
    version: str
    graph: WorkflowGraph


class WorkflowList(BaseModel):
    items: list[WorkflowItem]


class Health(BaseModel):
    status: str
    detail: str = ""
    version: str | None = Field(
        default=None, description="the tether version the server runs (on /healthz)"
    )
