"""The one error tree of tether.

Two roots, deliberately apart:

``TetherSignal`` (a ``BaseException``) is *control flow*, not failure. A node that calls
``interrupt()`` raises one; so does a tripped step limit. They derive from ``BaseException`` so a
user's ``except Exception:`` inside a node cannot swallow them (the same reasoning as
``asyncio.CancelledError``)::

    TetherSignal
    ├── Interrupt               a node asked a human for input; the run parks in ESCALATED
    └── EscalationSignal        a guard tripped (step limit, ...); the run parks in ESCALATED

``TetherError`` (an ``Exception``) is everything that went wrong::

    TetherError
    ├── UserError               the caller's input was wrong; the message says how to fix it
    │   ├── GraphDefinitionError    the graph is malformed (build time)
    │   ├── InvalidUpdateError      a node returned an unknown key or a wrongly typed value
    │   ├── InvalidRouteError       a route returned a target the graph does not have
    │   ├── InvalidInputError       run input / resume value / patch does not fit
│   ├── UnstorableValueError    an interrupt payload, ``Send`` argument or journaled call
│   │                           holds what the store cannot hold (``where``)
    │   ├── RunNotFoundError
    │   ├── StepNotFoundError
    │   ├── IdempotencyConflictError  same key, different input
    │   ├── IllegalTransitionError    a lifecycle transition the state machine forbids
    │   ├── RunStateError             the run is not in a state that allows the operation
    │   │   └── WorkflowVersionError    the run started with another version of its workflow
    │   ├── ConfigurationError        bad setting, store URL, missing optional dependency
    │   │   ├── WorkflowConflictError   two different workflows registered under one name
    │   │   └── PiiKeyError             the PII vault's key is missing, malformed, or not the
    │   │                               key the run's vault was sealed with (``reason``)
    │   ├── MessageSignatureError     a signed agent message was refused (``reason``: unsigned,
    │   │                             tampered, unknown sender, wrong recipient, expired, replayed)
    │   └── ApprovalError             an approval was refused (governance approvals)
    │       ├── ApprovalNotFoundError     no approval request with that id
    │       ├── ApprovalStateError        decided already, or this approver decided already
    │       └── ApprovalSignatureError    unknown or ineligible approver, or a signature that
    │                                     does not verify (forged, other intent, expired)
    ├── RunFailedError          a run ended FAILED (carries the node error)
    │   └── NodeError               a node raised after exhausting its retry policy
    ├── ToolError               a tool call went wrong (``retryable`` says if trying again helps)
    │   ├── ToolArgumentsError      arguments did not validate: back to the planner, never retried
    │   ├── ToolNotFoundError       no tool of that name in the registry
    │   ├── ToolTimeoutError        the call ran past the contract's timeout (retried)
    │   ├── ToolTransientError      a transient failure, e.g. HTTP 5xx (retried)
    │   ├── ToolRateLimitedError    HTTP 429 or a local rate limit; ``retry_after`` (retried)
    │   ├── PolicyViolationError    a policy forbids the call (never retried)
    │   ├── ToolDisabledError       a kill switch is on for the tool, its scope or the tenant
    │   ├── CircuitOpenError        the tool's circuit breaker is open
    │   ├── ToolResultTooLargeError the result (or an MCP server's answer) is over
    │   │                           ``max_result_bytes``: dropped, never journaled (not retried)
    │   └── SagaFailedError         a saga step failed; its completed steps were compensated
    ├── ModelError              a model call went wrong (``retryable`` says if trying again helps)
    │   ├── ModelRequestError       the provider refused the request (4xx but 429; never retried)
    │   ├── ModelTimeoutError       no answer within the timeout (retried)
    │   ├── ModelTransientError     HTTP 5xx, dropped connection (retried)
    │   │   └── ModelResponseError      the provider answered something unparseable (retried)
    │   ├── ModelRateLimitedError   HTTP 429; ``retry_after`` seconds honoured (retried)
    │   ├── ModelCircuitOpenError   the provider's circuit breaker is open
    │   ├── ModelUnavailableError   every model of a fallback chain failed (``errors``)
    │   └── StructuredOutputError   the output failed its schema after every repair attempt
    ├── SandboxError            (defined in tools.sandbox) the code sandbox could not be set up
    │   └── WeakIsolationError      no namespaces here and no ``allow_weak_isolation=True``
    └── StoreError              the durable store refused or broke
        ├── LeaseLostError          fencing: this writer no longer owns the run
        └── SchemaVersionError      the database schema is newer than this code
"""

from __future__ import annotations

from typing import Any


class TetherSignal(BaseException):
    """Control flow that parks a run; never a failure."""


class Interrupt(TetherSignal):
    """Raised by ``interrupt(payload)`` inside a node; the run waits for a human answer."""

    def __init__(self, payload: Any, index: int = 0) -> None:
        super().__init__(payload)
        self.payload = payload
        self.index = index


class EscalationSignal(TetherSignal):
    """A guard tripped (step limit, budget...): the run is frozen in ESCALATED, state intact."""

    def __init__(self, reason: str, kind: str = "guard", **details: Any) -> None:
        super().__init__(reason)
        self.reason = reason
        self.kind = kind
        self.details = details


class TetherError(Exception):
    """Base of every error tether raises."""


class UserError(TetherError, ValueError):
    """The caller did something wrong; the message says what and how to fix it."""


class GraphDefinitionError(UserError):
    pass


class InvalidUpdateError(UserError):
    pass


class InvalidRouteError(UserError):
    pass


class InvalidInputError(UserError):
    pass


class UnstorableValueError(UserError):
    """A value a node handed over to be kept (an interrupt payload, a ``Send`` argument) or a
    journaled call's request or result holds what the store cannot hold; ``where`` names it
    (``"interrupt payload['scores'][2]"``). State writes and run input have their own errors
    (``InvalidUpdateError``, ``InvalidInputError``)."""

    def __init__(self, message: str, *, where: str = "") -> None:
        super().__init__(message)
        self.where = where


class RunNotFoundError(UserError, LookupError):
    def __init__(self, run_id: str) -> None:
        super().__init__(f"run {run_id!r} not found; list runs with `tether runs list`")
        self.run_id = run_id


class StepNotFoundError(UserError, LookupError):
    def __init__(self, run_id: str, step: int) -> None:
        super().__init__(
            f"run {run_id!r} has no checkpoint at step {step}; "
            f"see `tether runs history {run_id}` for the steps it has"
        )
        self.run_id = run_id
        self.step = step


class IdempotencyConflictError(UserError):
    pass


class IllegalTransitionError(UserError):
    def __init__(self, src: str, dst: str) -> None:
        super().__init__(f"illegal lifecycle transition {src} -> {dst}")
        self.src = src
        self.dst = dst


class RunStateError(UserError):
    pass


class ConfigurationError(UserError):
    pass


class WorkflowVersionError(RunStateError):
    """A run would continue with a workflow whose structure differs from the one it started
    with (``recorded`` and ``current`` are the two versions)."""

    def __init__(self, message: str, *, run_id: str, recorded: str, current: str) -> None:
        super().__init__(message)
        self.run_id = run_id
        self.recorded = recorded
        self.current = current


class RunParkedError(RunStateError):
    """``Workflow.invoke`` ended with the run parked (ESCALATED): it waits in the store for
    ``resume``. ``run_id``, ``escalation``, ``interrupts`` and ``state`` say where it stopped."""

    def __init__(
        self,
        run_id: str,
        escalation: dict[str, Any] | None = None,
        interrupts: list[Any] | None = None,
        state: dict[str, Any] | None = None,
    ) -> None:
        esc = escalation or {}
        answer = ", value)" if interrupts and esc.get("kind") == "interrupt" else ")"
        super().__init__(
            f"run {run_id} is waiting ({esc.get('kind', 'escalated')}): "
            f"{esc.get('reason', '')}; resume it with Runtime(store).resume({run_id!r}{answer}"
        )
        self.run_id = run_id
        self.escalation = esc
        self.interrupts = list(interrupts or [])
        self.state = state


class WorkflowConflictError(ConfigurationError):
    """A runtime was given two different workflows under one name."""


class RunFailedError(TetherError):
    def __init__(self, run_id: str, message: str, error: dict[str, Any] | None = None) -> None:
        super().__init__(f"run {run_id} failed: {message}")
        self.run_id = run_id
        self.error = error or {}


class NodeError(RunFailedError):
    pass


class ToolError(TetherError):
    """A tool call failed. ``retryable`` tells the executor's retry policy whether to try again."""

    retryable = False

    def __init__(self, message: str, *, tool: str | None = None) -> None:
        super().__init__(message)
        self.tool = tool


class ToolArgumentsError(ToolError, UserError):
    def __init__(
        self, message: str, *, tool: str | None = None, errors: list[dict[str, Any]] | None = None
    ) -> None:
        super().__init__(message, tool=tool)
        self.errors = errors or []


class ToolNotFoundError(ToolError, UserError, LookupError):
    pass


class ToolTimeoutError(ToolError):
    retryable = True


class ToolTransientError(ToolError):
    """Raise it from a tool for a failure worth retrying (a 5xx, a dropped connection)."""

    retryable = True

    def __init__(self, message: str, *, tool: str | None = None, status: int | None = None) -> None:
        super().__init__(message, tool=tool)
        self.status = status


class ToolRateLimitedError(ToolError):
    """Raise it from a tool on HTTP 429; ``retry_after`` (seconds) is honoured before retrying."""

    retryable = True

    def __init__(
        self, message: str, *, tool: str | None = None, retry_after: float | None = None
    ) -> None:
        super().__init__(message, tool=tool)
        self.retry_after = retry_after


class PolicyViolationError(ToolError):
    pass


class ToolDisabledError(ToolError):
    pass


class CircuitOpenError(ToolError):
    def __init__(self, message: str, *, tool: str | None = None, retry_in: float = 0.0) -> None:
        super().__init__(message, tool=tool)
        self.retry_in = retry_in


class ToolResultTooLargeError(ToolError):
    """A tool's result is larger than its ``max_result_bytes`` (``size`` and ``limit``, bytes of
    the JSON-encoded result; ``size`` is a lower bound when the answer was refused unread, as an
    MCP server's is). The result is dropped: it is not journaled, kept in state or shown to the
    model. Not retried: the same call would return as much again."""

    def __init__(
        self,
        message: str,
        *,
        tool: str | None = None,
        size: int | None = None,
        limit: int | None = None,
    ) -> None:
        super().__init__(message, tool=tool)
        self.size = size
        self.limit = limit


class SagaFailedError(ToolError):
    def __init__(
        self,
        message: str,
        *,
        failed_step: str,
        compensated: list[str],
        cause: BaseException | None = None,
        not_compensated: list[str] | None = None,
        compensation_errors: list[BaseException] | None = None,
    ) -> None:
        super().__init__(message, tool=failed_step)
        self.failed_step = failed_step
        self.compensated = compensated
        self.cause = cause
        self.not_compensated = not_compensated or []
        """Steps whose compensation failed (still in effect), with ``compensation_errors``."""
        self.compensation_errors = compensation_errors or []


class ModelError(TetherError):
    """A model call failed. ``retryable`` tells retry wrappers whether trying again can help."""

    retryable = False

    def __init__(self, message: str, *, model: str | None = None, status: int | None = None):
        super().__init__(message)
        self.model = model
        self.status = status
        self.usage: Any = None
        """The tokens (an ``llm.types.Usage``) the failed call had consumed, when it is known:
        an answer received and refused is billed by the provider, so retries carry it on and
        a budget charges it."""


class ModelRequestError(ModelError, UserError):
    """The provider refused the request itself (bad key, unknown model, malformed input)."""


class ModelTimeoutError(ModelError):
    retryable = True


class ModelTransientError(ModelError):
    retryable = True

    def __init__(
        self,
        message: str,
        *,
        model: str | None = None,
        status: int | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message, model=model, status=status)
        self.retry_after = retry_after
        """Seconds the server said to wait before calling again (a 503's ``Retry-After``)."""


class ModelResponseError(ModelTransientError):
    """The provider's answer could not be parsed (malformed JSON, missing fields)."""


class ModelRateLimitedError(ModelError):
    retryable = True

    def __init__(
        self,
        message: str,
        *,
        model: str | None = None,
        status: int | None = 429,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message, model=model, status=status)
        self.retry_after = retry_after


class ModelCircuitOpenError(ModelError):
    def __init__(self, message: str, *, model: str | None = None, retry_in: float = 0.0):
        super().__init__(message, model=model)
        self.retry_in = retry_in


class ModelUnavailableError(ModelError):
    """Every model in a fallback chain failed; ``errors`` holds each one's error in order."""

    def __init__(self, message: str, *, errors: list[ModelError]) -> None:
        super().__init__(message)
        self.errors = errors


class StructuredOutputError(ModelError):
    """The model's output did not validate against the schema after every repair attempt."""

    def __init__(
        self,
        message: str,
        *,
        model: str | None = None,
        attempts: int = 0,
        errors: list[str] | None = None,
        last_output: str = "",
    ) -> None:
        super().__init__(message, model=model)
        self.attempts = attempts
        self.errors = errors or []
        self.last_output = last_output


class MessageSignatureError(UserError):
    """A signed agent message (``tether.governance.messages``) was refused; ``reason`` says
    why: ``unsigned``, ``malformed``, ``unknown_sender``, ``bad_signature`` (tampered or signed
    by another key), ``wrong_recipient``, ``expired``, ``future`` or ``replayed``."""

    def __init__(self, message: str, *, reason: str, sender: str | None = None) -> None:
        super().__init__(message)
        self.reason = reason
        self.sender = sender


class ContextBudgetError(UserError):
    """A prompt cannot fit its token budget without dropping what must stay verbatim (the
    system prompt, the goal, pinned items, the latest turn): ``tokens`` needed, ``budget``."""

    def __init__(self, message: str, *, tokens: int, budget: int) -> None:
        super().__init__(message)
        self.tokens = tokens
        self.budget = budget


class ApprovalError(UserError):
    """An approval operation was refused (``tether.governance.approvals``)."""


class ApprovalNotFoundError(ApprovalError, LookupError):
    def __init__(self, approval_id: str) -> None:
        super().__init__(
            f"approval {approval_id!r} not found; list requests with `tether approvals list`"
        )
        self.approval_id = approval_id


class ApprovalStateError(ApprovalError):
    """The request is no longer pending, or this approver already decided on it."""


class ApprovalSignatureError(ApprovalError):
    """The approver is unknown or not eligible, or the signature does not verify: forged,
    made over another intent (other arguments, another request), or expired."""


class PiiKeyError(ConfigurationError):
    """The PII vault (``tether.governance.pii_vault``) cannot use its key; ``reason`` says why:
    ``missing`` (no key passed and no ``TETHER_PII_KEY``), ``malformed`` (not 32 bytes in
    url-safe base64), ``wrong_key`` (the run's vault was sealed with another key) or
    ``tampered`` (a stored value does not decrypt under the right key)."""

    def __init__(self, message: str, *, reason: str, run_id: str | None = None) -> None:
        super().__init__(message)
        self.reason = reason
        self.run_id = run_id


class StoreError(TetherError):
    pass


class StoreFileLostError(StoreError):
    """The file a SQLite store has open is no longer the one at its path: it (or its directory)
    was deleted, another file was moved over it, or its WAL was deleted. SQLite would go on
    writing to the deleted file, where nothing is kept once the process ends, so the store
    refuses every operation from then on (HTTP: 503)."""


class LeaseLostError(StoreError):
    """The writer's fencing token is stale: another owner holds the run now."""

    def __init__(
        self,
        run_id: str,
        token: int | None,
        *,
        holder: str | None = None,
        holder_token: int | None = None,
        message: str | None = None,
    ) -> None:
        super().__init__(
            message
            or f"lease on run {run_id!r} lost (fencing token {token} is stale): another worker "
            "owns this run now, so this write was rejected and nothing was applied"
        )
        self.run_id = run_id
        self.token = token
        self.holder = holder
        """The owner holding the run when the loss was noticed (None: nobody, or unknown)."""
        self.holder_token = holder_token


class SchemaVersionError(StoreError):
    pass


class QueueFullError(TetherError):
    """Backpressure: ``submit`` refused a run because its queue holds ``limit`` runs already
    (its depth limit, ``tether queues limit``). Nothing was written: submit it again later,
    or raise the limit. HTTP maps it to 429."""

    retryable = True

    def __init__(self, queue: str, depth: int, limit: int) -> None:
        super().__init__(
            f"queue {queue!r} is full: {depth} runs wait or run in it and its depth limit is "
            f"{limit}; the run was not submitted. Submit it again once workers have caught up, "
            f"or raise the limit (tether queues limit {queue} --max-depth N)"
        )
        self.queue = queue
        self.depth = depth
        self.limit = limit


def missing_dependency(extra: str, package: str) -> ConfigurationError:
    return ConfigurationError(
        f"this feature needs the optional dependency {package!r}; "
        f"install it with: pip install 'tether[{extra}]'"
    )


class TraceExportError(TetherError):
    """A trace exporter did not take the spans it was handed (the OTLP collector is down,
    unreachable or answered with an error): ``sent`` of ``total`` went. Exporting a run's
    rebuilt spans again sends the same spans, so trying again once the collector is up is safe."""

    def __init__(self, message: str, *, sent: int, total: int) -> None:
        super().__init__(message)
        self.sent = sent
        self.total = total
