"""The execution body: tool contracts, the effect-safe executor, sagas, sandbox and MCP.

The tool errors are re-exported here: raise ``ToolTransientError`` / ``ToolRateLimitedError``
from a tool to have the executor retry it, ``PolicyViolationError`` to stop it for good.
``ToolResultTooLargeError`` is what a result over ``max_result_bytes`` becomes.
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
    ToolResultTooLargeError,
    ToolTimeoutError,
    ToolTransientError,
)
from tether.tools.breaker import BreakerState, CircuitBreaker
from tether.tools.contract import ToolContract, tool
from tether.tools.executor import ToolExecutor
from tether.tools.killswitch import KillSwitch
from tether.tools.limits import DEFAULT_MAX_ARGS_BYTES, DEFAULT_MAX_RESULT_BYTES
from tether.tools.policies import BreakerPolicy, RateLimit, Scope, ToolRetry
from tether.tools.registry import ToolRegistry
from tether.tools.results import ToolContext, ToolResult
from tether.tools.saga import Saga

__all__ = [
    "DEFAULT_MAX_ARGS_BYTES",
    "DEFAULT_MAX_RESULT_BYTES",
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
    "ToolResultTooLargeError",
    "ToolRetry",
    "ToolTimeoutError",
    "ToolTransientError",
    "tool",
]
