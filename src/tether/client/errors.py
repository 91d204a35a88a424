"""What a server's answer means as a tether error.

A ``tether serve`` server answers a refused request with RFC 9457 problem JSON
(``{type, title, status, detail, instance, errors?}``). The client raises the error of the
tether tree that the same mistake raises in process, so code written against a ``Runtime``
handles a remote one unchanged:

====================  =====================================================================
HTTP status           raised
====================  =====================================================================
400, 413, 422         ``InvalidInputError`` (``errors``: the field problems the server listed)
401, 403              :class:`AuthError` (no key, a wrong key, or a key without the scope);
                      a refused approver signature: ``ApprovalSignatureError``
404 on a run          ``RunNotFoundError``; on an approval ``ApprovalNotFoundError``; on a
                      step ``StepNotFoundError``; else :class:`NotFoundError`
409                   ``IdempotencyConflictError`` (same key, other input or parameters:
                      ``fields`` names them),
                      ``ApprovalStateError`` (decided already), ``WorkflowVersionError``
                      (an upgrade the new shape cannot take), else ``RunStateError``
429                   :class:`ServerBusyError` (``retry_after`` seconds, when the server said)
5xx                   :class:`ServerError`
no answer             :class:`ServerUnavailableError` (refused, reset, timed out)
====================  =====================================================================
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import unquote

from tether.core.errors import (
    ApprovalNotFoundError,
    ApprovalSignatureError,
    ApprovalStateError,
    IdempotencyConflictError,
    InvalidInputError,
    RunNotFoundError,
    RunStateError,
    StepNotFoundError,
    TetherError,
    UserError,
    WorkflowVersionError,
)

__all__ = [
    "AuthError",
    "NotFoundError",
    "ServerBusyError",
    "ServerError",
    "ServerUnavailableError",
    "error_from_problem",
]


class AuthError(UserError):
    """The server refused the credentials: 401 (no API key, or one it does not know) or 403
    (the key lacks the scope the operation needs: read, submit, approve or admin)."""

    def __init__(self, message: str, *, status: int, problem: Mapping[str, Any] | None = None):
        super().__init__(message)
        self.status = status
        self.problem = dict(problem or {})


class NotFoundError(UserError, LookupError):
    """A 404 on something that is neither a run, a step nor an approval (a workflow...)."""

    def __init__(self, message: str, *, problem: Mapping[str, Any] | None = None) -> None:
        super().__init__(message)
        self.problem = dict(problem or {})


class ServerError(TetherError):
    """The server failed on a valid request (5xx), or answered something that is not the
    contract (``status`` 0 when there was no usable status)."""

    retryable = True

    def __init__(
        self, message: str, *, status: int = 0, problem: Mapping[str, Any] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.problem = dict(problem or {})


class ServerBusyError(ServerError):
    """429: the server (or the run's queue) is at its limit; try again after ``retry_after``
    seconds (None: the server did not say)."""

    def __init__(
        self,
        message: str,
        *,
        retry_after: float | None = None,
        problem: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(message, status=429, problem=problem)
        self.retry_after = retry_after


class ServerUnavailableError(ServerError):
    """No answer: the connection was refused, dropped, or timed out (after the client's
    retries, for calls that are safe to repeat)."""


def _text(problem: Mapping[str, Any], status: int) -> str:
    detail = problem.get("detail") or problem.get("title") or f"HTTP {status}"
    lines = [str(detail)]
    for err in problem.get("errors") or []:
        if isinstance(err, Mapping):
            raw = err.get("loc") or ""
            loc = raw if isinstance(raw, str) else ".".join(str(p) for p in raw)
            line = f"{loc}: {err.get('msg', '')}" if loc else str(err.get("msg", ""))
            if line not in lines[0]:  # tether's detail names the first few already
                lines.append(line)
    return "; ".join(x for x in lines if x)


def error_from_problem(
    status: int,
    problem: Mapping[str, Any],
    *,
    method: str = "",
    path: str = "",
    retry_after: float | None = None,
) -> TetherError:
    """The tether error for one refused request. ``path`` (``/v1/runs/ID/...``) tells what a
    404 is about when the problem's ``type`` does not."""
    text = _text(problem, status)
    where = f" ({method} {path})" if method else ""
    kind = str(problem.get("type") or "").lower()
    parts = [p for p in path.split("?")[0].split("/") if p]
    if "approval-signature" in kind:
        return ApprovalSignatureError(text)
    if status in (401, 403):
        hint = (
            "pass an API key with api_key= (CLI: --api-key or TETHER_API_KEY)"
            if status == 401
            else "use a key with the scope this operation needs (read, submit, approve, admin)"
        )
        return AuthError(f"{text}{where}; {hint}", status=status, problem=problem)
    if status == 404:
        return _not_found(kind, parts, text, where, problem)
    if status == 409:
        if "idempot" in kind:
            conflict = IdempotencyConflictError(text)
            fields = problem.get("fields")  # the parameters asked otherwise than the first time
            named = [str(f) for f in fields] if isinstance(fields, list) else []
            conflict.fields = named  # type: ignore[attr-defined]
            return conflict
        if "approval" in kind or (len(parts) > 1 and parts[1] == "approvals"):
            return ApprovalStateError(text)
        if "workflow-version" in kind:
            run_id = unquote(parts[2]) if len(parts) > 2 and parts[1] == "runs" else ""
            return WorkflowVersionError(text, run_id=run_id, recorded="", current="")
        return RunStateError(text)
    if status == 429:
        return ServerBusyError(
            f"{text}{where}; try again later", retry_after=retry_after, problem=problem
        )
    if 400 <= status < 500:
        err = InvalidInputError(text)
        err.errors = list(problem.get("errors") or [])  # type: ignore[attr-defined]
        return err
    return ServerError(f"server error {status}: {text}{where}", status=status, problem=problem)


def _not_found(
    kind: str, parts: list[str], text: str, where: str, problem: Mapping[str, Any]
) -> TetherError:
    # parts: ["v1", "runs", RUN_ID, ...] or ["v1", "approvals", ID, ...]
    section = parts[1] if len(parts) > 1 else ""
    ident = unquote(parts[2]) if len(parts) > 2 else ""  # the id, not its URL spelling
    if "approval" in kind and section == "approvals" and ident:
        return ApprovalNotFoundError(ident)
    if "step" in kind and section == "runs" and ident:
        step = problem.get("step")
        err = StepNotFoundError(ident, step if type(step) is int else -1)
        err.args = (text,)  # the server's words: the step asked for and the steps the run has
        return err
    if section == "runs" and ident and ("run-not-found" in kind or not kind):
        return RunNotFoundError(ident)
    if section == "approvals" and ident and not kind:
        return ApprovalNotFoundError(ident)
    return NotFoundError(f"{text}{where}", problem=problem)
