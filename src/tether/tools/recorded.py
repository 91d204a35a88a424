"""A tool call's failure as the run's journal recorded it, raised again when the node re-runs.

Inside a run a failed call is journaled with its error (``RunContext.journaled``); a node that
runs again in the same attempt (resumed after an interrupt, recovered after a crash) gets the
same failure back instead of a second call, the way it gets a recorded result back. The error is
rebuilt from its record: the same ``ToolError`` class, message and tool.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tether.core.errors import (
    CircuitOpenError,
    PolicyViolationError,
    ToolDisabledError,
    ToolError,
    ToolRateLimitedError,
    ToolResultTooLargeError,
    ToolTimeoutError,
    ToolTransientError,
)

_CLASSES: dict[str, type[ToolError]] = {
    cls.__name__: cls
    for cls in (
        ToolError,
        ToolTimeoutError,
        ToolTransientError,
        ToolRateLimitedError,
        PolicyViolationError,
        ToolDisabledError,
        CircuitOpenError,
        ToolResultTooLargeError,
    )
}
_CLASSES["_LimitExhausted"] = ToolRateLimitedError  # the local rate limit, past the retry loop


def replayed_error(tool: str) -> Callable[[dict[str, Any]], BaseException]:
    """Rebuilds ``tool``'s recorded error (``error_dict``'s ``type`` and ``message``)."""

    def rebuild(error: dict[str, Any]) -> BaseException:
        kind = str(error.get("type") or "ToolError")
        message = str(error.get("message") or f"tool {tool!r} failed")
        cls = _CLASSES.get(kind)
        if cls is None:  # another ToolError subclass (the tool's own): the base class, named
            return ToolError(f"{kind}: {message}", tool=tool)
        return cls(message, tool=tool)

    return rebuild
