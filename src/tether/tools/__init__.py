"""The execution body: tool contracts, the effect-safe executor, sagas, sandbox and MCP.

The tool errors are re-exported here: raise ``ToolTransientError`` / ``ToolRateLimitedError``
from a tool to have the executor retry it, ``PolicyViolationError`` to stop it for good.
"""

from tether.core.errors import (
    CircuitOpenError,
    PolicyViolationError,
    SagaFailedError,
    ToolArgumentsError,
    ToolDisabledError,
    ToolError,
    ToolNotFoundError,
    ToolRateLimitedError,
    ToolTimeoutError,
    ToolTransientError,
)
from tether.tools.breaker import BreakerState, CircuitBreaker
from tether.tools.contract import ToolContract, tool
from tether.tools.executor import ToolExecutor
from tether.tools.killswitch import KillSwitch
from tether.tools.policies import BreakerPolicy, RateLimit, Scope, ToolRetry
from tether.tools.registry import ToolRegistry
from tether.tools.results import ToolContext, ToolResult
from tether.tools.saga import Saga

__all__ = [
    "BreakerPolicy",
    "BreakerState",
    "CircuitBreaker",
    "CircuitOpenError",
    "KillSwitch",
    "PolicyViolationError",
    "RateLimit",
    "Saga",
    "SagaFailedError",
    "Scope",
    "ToolArgumentsError",
    "ToolContext",
    "ToolContract",
    "ToolDisabledError",
    "ToolError",
    "ToolExecutor",
    "ToolNotFoundError",
    "ToolRateLimitedError",
    "ToolRegistry",
    "ToolResult",
    "ToolRetry",
    "ToolTimeoutError",
    "ToolTransientError",
    "tool",
]
