"""Graph vocabulary: START/END, Send, Command, RetryPolicy, node phases."""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

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
class Command:
    """A node's return value that updates state *and* chooses where to go next."""

    update: dict[str, Any] | None = None
    goto: str | Send | Sequence[str | Send] = ()


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Per-node retry: jittered exponential backoff for the exceptions ``retry_on`` accepts."""

    max_attempts: int = 3
    initial_interval: float = 0.05
    backoff_factor: float = 2.0
    max_interval: float = 5.0
    jitter: bool = True
    retry_on: (
        type[BaseException] | tuple[type[BaseException], ...] | Callable[[BaseException], bool]
    ) = Exception

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("RetryPolicy.max_attempts must be >= 1")
        if self.initial_interval < 0 or self.max_interval < 0:
            raise ValueError("RetryPolicy intervals must be >= 0")

    def should_retry(self, exc: BaseException, attempt: int) -> bool:
        if attempt >= self.max_attempts:
            return False
        if isinstance(self.retry_on, type | tuple):
            return isinstance(exc, self.retry_on)
        return bool(self.retry_on(exc))

    def delay(self, attempt: int) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1-based)."""
        base = min(self.max_interval, self.initial_interval * self.backoff_factor ** (attempt - 1))
        return base * (0.5 + random.random()) if self.jitter else base


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
