"""The execution body: tool contracts, the effect-safe executor, sagas, sandbox and MCP."""

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
    "KillSwitch",
    "RateLimit",
    "Saga",
    "Scope",
    "ToolContext",
    "ToolContract",
    "ToolExecutor",
    "ToolRegistry",
    "ToolResult",
    "ToolRetry",
    "tool",
]
