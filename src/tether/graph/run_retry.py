"""Run-level retries with backoff, and the dead letter.

A node's ``RetryPolicy`` retries a call in place, within one step. ``RunRetry`` is the outer
loop: a run that still FAILS with a *retryable* error is not left FAILED; in the same commit it
goes FAILED → PLANNED with no owner, claimable from ``now + backoff(attempt)`` on, so any worker
(this one or another, after a restart too) resumes it from its last checkpoint when it is due.
Effects and finished sibling tasks already journaled are replayed, never repeated (their keys
depend on the run, step and task, not on the attempt).

After the last attempt the run stays FAILED, its error kept, with a dead-letter mark
(``metadata["dead_letter"]``, see :func:`is_dead_lettered`) and a ``run_dead_lettered`` event.
A failure that is not retryable fails at once and is not dead-lettered.
``Runtime.retry`` / ``Runtime.requeue`` (CLI ``tether runs retry`` / ``runs requeue``) put a
FAILED run back in the queue with its attempts reset.

The attempt being made is ``metadata["run_attempt"]`` (1 when absent). The waits come from
``tether.core.backoff.Backoff``, the one rule every retry policy of tether shares.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from tether.core.backoff import Backoff, Jitter, Random
from tether.core.errors import ConfigurationError, RunStateError, UserError
from tether.core.lifecycle import RunStatus
from tether.graph.events import lifecycle_events
from tether.observability.trace_ids import TRACE_KEY, rerun_trace
from tether.store.transient import unavailable
from tether.store.types import Commit, Event, RunRecord

if TYPE_CHECKING:
    from tether.graph.builder import Workflow
    from tether.graph.loop import RunLoop

__all__ = [
    "ATTEMPT_KEY",
    "DEAD_LETTER_KEY",
    "MAX_ATTEMPTS_KEY",
    "RunRetry",
    "is_dead_lettered",
    "is_retryable",
]

ATTEMPT_KEY = "run_attempt"
"""Run metadata: the attempt the run is making (1-based; absent = 1)."""
MAX_ATTEMPTS_KEY = "max_attempts"
"""Run metadata: a per-run override of the policy's ``max_attempts`` (``start(max_attempts=)``)."""
DEAD_LETTER_KEY = "dead_letter"
"""Run metadata: ``{"at", "attempts", "error"}`` once the run is dead-lettered, else absent or
None (a requeue clears it)."""

RetryOn = type[BaseException] | tuple[type[BaseException], ...] | Callable[[BaseException], bool]


def is_retryable(exc: BaseException) -> bool:
    """The default ``retry_on``: failures that trying again later can cure.

    Never a ``UserError`` (bad input, a bad route or update, a validation error: the same run
    would fail the same way). A tether ``ToolError``/``ModelError`` says so itself
    (``retryable``: timeouts, transient failures, rate limits); besides those, ``TimeoutError``,
    ``ConnectionError`` and a store that cannot serve now (unreachable, or an SQLite file on a
    full disk, locked, unreadable: ``tether.store.transient.unavailable``) are retryable. Anything
    else (a bug, a plain ``ValueError``) is not: name it in ``retry_on`` to retry it.

    The run's own store failing so never comes here: the run is not failed for it, it stops
    where it is and recovery resumes it once the store serves again (no attempt spent)."""
    if isinstance(exc, UserError):
        return False
    flag = getattr(type(exc), "retryable", None)
    if isinstance(flag, bool):
        return flag
    return isinstance(exc, TimeoutError | ConnectionError) or unavailable(exc)


@dataclass(frozen=True, slots=True)
class RunRetry:
    """Retry a whole run that fails with a retryable error, then dead-letter it.

    ``graph.compile(run_retry=RunRetry(max_attempts=5, initial_interval=2.0))``. The fields
    mean what they mean in the node-level ``RetryPolicy`` (the waits are ``Backoff``'s: jittered
    exponential, ``initial_interval * backoff_factor ** (attempt - 1)`` capped at
    ``max_interval``); ``max_attempts`` counts the first attempt (3 = two retries). ``retry_on``
    is an exception type, a tuple of them, or a predicate; the default :func:`is_retryable`
    takes transient errors only. A ``UserError`` is never retried, whatever ``retry_on`` says.
    A run's own ``start(..., max_attempts=N)`` overrides ``max_attempts``."""

    max_attempts: int = 3
    initial_interval: float = 1.0
    backoff_factor: float = 2.0
    max_interval: float = 300.0
    jitter: Jitter = True
    retry_on: RetryOn = is_retryable
    schedule: Backoff = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "schedule", Backoff.of(self, "RunRetry"))
        on = self.retry_on
        ok = callable(on) or (
            isinstance(on, tuple) and all(isinstance(t, type) for t in on) and on != ()
        )
        if not ok:
            raise ConfigurationError(
                f"RunRetry.retry_on must be an exception type, a non-empty tuple of them or a "
                f"predicate (exc) -> bool, got {on!r}"
            )

    def retries(self, exc: BaseException) -> bool:
        """Whether ``exc`` is worth another attempt (attempts left aside)."""
        if isinstance(exc, UserError):
            return False
        on = self.retry_on
        if isinstance(on, type | tuple):
            return isinstance(exc, on)
        return bool(on(exc))

    def with_max_attempts(self, n: int) -> RunRetry:
        return RunRetry(
            n, self.initial_interval, self.backoff_factor, self.max_interval, self.jitter,
            self.retry_on,
        )  # fmt: skip


def check_max_attempts(n: object) -> int:
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ConfigurationError(
            f"max_attempts must be an int >= 1 (1 = no retry), got {n!r}"
        )  # fmt: skip
    return n


def policy_for(wf: Workflow, run: RunRecord) -> RunRetry | None:
    """The run's retry policy: its workflow's, with the run's own ``max_attempts``; a run given
    ``max_attempts`` whose workflow has none gets the default ``RunRetry`` with it."""
    override = run.metadata.get(MAX_ATTEMPTS_KEY)
    policy = wf.run_retry
    if override is None:
        return policy
    return (policy or RunRetry()).with_max_attempts(int(override))


def attempt_of(run: RunRecord) -> int:
    return int(run.metadata.get(ATTEMPT_KEY) or 1)


def is_dead_lettered(run: RunRecord) -> bool:
    """Whether ``run`` is FAILED in the dead letter (out of retryable attempts)."""
    return run.status is RunStatus.FAILED and bool(run.metadata.get(DEAD_LETTER_KEY))


@dataclass(frozen=True, slots=True)
class Decision:
    """What a failure does to the run: ``"retry"`` (after ``delay`` seconds), ``"dead_letter"``
    or ``"fail"`` (not retryable, or no policy)."""

    kind: str
    attempt: int
    max_attempts: int = 1
    delay: float = 0.0


def decide(
    policy: RunRetry | None, run: RunRecord, exc: BaseException, rand: Random = random.random
) -> Decision:
    """Pure: the fate of ``run`` failing with ``exc`` under ``policy``."""
    attempt = attempt_of(run)
    if policy is None or not policy.retries(exc):
        return Decision("fail", attempt)
    n = policy.max_attempts
    if attempt >= n:
        return Decision("dead_letter", attempt, n)
    return Decision("retry", attempt, n, policy.schedule.backoff(attempt, rand))


def failure_brief(err: Mapping[str, Any]) -> dict[str, Any]:
    return {k: err.get(k) for k in ("type", "message", "node", "step")}


def failure_commit(loop: RunLoop, exc: BaseException, err: dict[str, Any]) -> tuple[Commit, str]:
    """The commit that ends ``loop``'s run after ``exc`` (its ``error_dict`` is ``err``), and the
    fate decided: ``"retry"`` (FAILED → PLANNED in the same commit, lease released, claimable
    from ``now + backoff``), ``"dead_letter"`` (FAILED, marked) or ``"fail"`` (FAILED)."""
    d = decide(policy_for(loop.wf, loop.run), loop.run, exc)
    now = loop.rt.clock.now()
    commit = Commit(error=err, set_error=True, release_lease=True)
    node, step = err.get("node"), err.get("step")
    commit.transitions = loop.transitions(RunStatus.FAILED, f"{err['type']} in {node}")
    commit.status = RunStatus.FAILED
    if d.kind == "retry":
        loop.status = RunStatus.FAILED
        due = now + d.delay
        reason = f"retry {d.attempt + 1}/{d.max_attempts} in {d.delay:.3g}s"
        commit.transitions += loop.transitions(RunStatus.PLANNED, reason)
        loop.status = loop.run.status
        commit.status = RunStatus.PLANNED
        commit.available_at = due
        commit.metadata = {ATTEMPT_KEY: d.attempt + 1}
        loop.parked_until = due  # a runtime that claims nothing takes it back itself when due
        data = {
            "attempt": d.attempt,
            "next_attempt": d.attempt + 1,
            "max_attempts": d.max_attempts,
            "delay": d.delay,
            "available_at": due,
            "error": failure_brief(err),
        }
        loop.emit("run_retry_scheduled", data, node, step)
    elif d.kind == "dead_letter":
        commit.metadata = {
            DEAD_LETTER_KEY: {"at": now, "attempts": d.attempt, "error": err["type"]}
        }
        data = {"attempts": d.attempt, "max_attempts": d.max_attempts, "error": failure_brief(err)}
        loop.emit("run_dead_lettered", data, node, step)
    return commit, d.kind


def requeue_commit(run: RunRecord, now: float, actor: str) -> Commit:
    """An administrative commit taking a FAILED run back to PLANNED, claimable at once by any
    worker, its attempts and dead-letter mark reset (its error stays until it completes)."""
    if run.status is not RunStatus.FAILED:
        raise RunStateError(
            f"run {run.run_id} is {run.status.value}; only a FAILED run can be retried "
            "(an ESCALATED one is resumed: tether runs resume)"
        )
    was_dead = is_dead_lettered(run)
    reason = "requeued from the dead letter" if was_dead else "requeued after failure"
    trs = [(RunStatus.FAILED, RunStatus.PLANNED, actor, reason)]
    events = lifecycle_events(run.run_id, now, trs)
    events.append(
        Event(
            run.run_id,
            0,
            "run_requeued",
            now,
            None,
            None,
            {"actor": actor, "dead_letter": was_dead, "attempts": attempt_of(run)},
        )
    )
    commit = Commit(
        status=RunStatus.PLANNED,
        transitions=list(trs),
        events=events,
        metadata={
            ATTEMPT_KEY: 1,
            DEAD_LETTER_KEY: None,
            "replans": 0,
            TRACE_KEY: rerun_trace(run.run_id, run.metadata),  # its failed span was exported
        },
    )
    commit.available_at = now
    return commit
