"""Graph vocabulary: START/END, Send, Command, RetryPolicy, node phases."""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from tether.core.backoff import Backoff, Jitter, Random
from tether.core.lifecycle import RunStatus

START = "__start__"
END = "__end__"


class Phase(StrEnum):
    """What kind of work a node does; drives the run lifecycle while it runs."""

    AGENT = "agent"
    PLANNER = "planner"
    TOOL = "tool"
    VALIDATOR = "validator"

    @property
    def status(self) -> RunStatus:
        if self is Phase.TOOL:
            return RunStatus.WAITING_FOR_TOOL
        if self is Phase.VALIDATOR:
            return RunStatus.VALIDATING
        return RunStatus.EXECUTING


@dataclass(frozen=True, slots=True)
class Send:
    """Fan-out: run ``node`` in the next step with ``arg`` as its input instead of the state."""

    node: str
    arg: Any


@dataclass(frozen=True, slots=True)
class Detour:
    """Go to ``node`` only, instead of the task's edges: an interrupt's ``on_timeout`` route
    (``tether.graph.timers``)."""

    node: str


@dataclass(frozen=True, slots=True)
class Command:
    """A node's return value that updates state *and* chooses where to go next."""

    update: dict[str, Any] | None = None
    goto: str | Send | Sequence[str | Send] = ()


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Per-node retry: jittered exponential backoff for the exceptions ``retry_on`` accepts.

    The waits are ``tether.core.backoff.Backoff``'s, shared with ``ToolRetry`` and
    ``ModelRetry``: ``jitter=True`` (or ``"full"``) waits a uniform time in ``[0, base]``,
    ``"equal"`` in ``[base/2, base]``, ``False`` exactly ``base``. Bad settings raise
    ``ConfigurationError`` (a ``ValueError``)."""

    max_attempts: int = 3
    initial_interval: float = 0.05
    backoff_factor: float = 2.0
    max_interval: float = 5.0
    jitter: Jitter = True
    retry_on: (
        type[BaseException] | tuple[type[BaseException], ...] | Callable[[BaseException], bool]
    ) = Exception
    schedule: Backoff = field(init=False, repr=False, compare=False)
    """The waits, computed by the one backoff rule every plane shares."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "schedule", Backoff.of(self, "RetryPolicy"))

    def should_retry(self, exc: BaseException, attempt: int) -> bool:
        if attempt >= self.max_attempts:
            return False
        if isinstance(self.retry_on, type | tuple):
            return isinstance(exc, self.retry_on)
        return bool(self.retry_on(exc))

    def delay(self, attempt: int, rand: Random = random.random) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1-based)."""
        return self.schedule.backoff(attempt, rand)


NO_RETRY = RetryPolicy(max_attempts=1)


@dataclass(slots=True)
class NodeSpec:
    name: str
    fn: Callable[..., Any]
    is_async: bool
    wants_ctx: bool
    phase: Phase = Phase.AGENT
    retry: RetryPolicy = NO_RETRY
    thread: bool = False
    subgraph: Any = None
    metadata: dict[str, Any] = field(default_factory=dict)
    destinations: tuple[str, ...] | None = None
    """Where ``Command(goto=...)`` from this node may go (declared for validation)."""
