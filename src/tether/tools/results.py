"""ToolResult: what a call produced, or why it did not; errors stay typed for ``unwrap``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tether.core import serde
from tether.core.errors import ToolError
from tether.core.json_copy import scrub_text


@dataclass(slots=True)
class ToolResult:
    tool: str
    ok: bool
    value: Any = None
    error: ToolError | None = None
    attempts: int = 0
    key: str | None = None

    @property
    def error_info(self) -> dict[str, Any] | None:
        if self.error is None:
            return None
        return {
            "type": type(self.error).__name__,
            "message": str(self.error),
            "retryable": self.error.retryable,
        }

    def unwrap(self) -> Any:
        """The value, or raise the typed ToolError."""
        if self.error is not None:
            raise self.error
        return self.value

    def for_model(self) -> str:
        """Text to hand back to a model: the value as JSON, or the error to re-plan from. Never
        raises: a value JSON cannot write (an object a tool returned outside a run) is given as
        its ``str()``."""
        if self.error is not None:
            return f"error ({type(self.error).__name__}): {self.error}"
        if isinstance(self.value, str):
            return self.value
        try:
            return serde.dumps(self.value).decode()
        except TypeError:  # a value JSON cannot write (outside a run nothing journals it)
            try:
                return scrub_text(str(self.value))
            except Exception as broken:
                kind = type(self.value).__name__
                return f"<a {kind} whose str() raised {type(broken).__name__}>"


@dataclass(slots=True)
class ToolContext:
    """What a tool that declares a ``ctx`` parameter receives."""

    tool: str
    key: str | None
    attempt: int
    tenant: str | None
    run: Any = None
    """The RunContext when the call happens inside a run, else None."""

    @property
    def run_id(self) -> str | None:
        return getattr(self.run, "run_id", None)
