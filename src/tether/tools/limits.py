"""How large a tool call may be: its result (``max_result_bytes``) and its arguments
(``max_args_bytes``), counted as bytes of their JSON encoding (what the journal would keep).

Each tool may set its own (``@tool(max_result_bytes=...)``, ``McpToolset(max_result_bytes=...)``);
a tool that does not takes the executor's (``ToolExecutor(max_result_bytes=...)``, 1 MiB unless
told). ``None`` lifts a limit. The executor checks the arguments after validation and the result
after the tool returns, both before anything is journaled: an oversized result is a
:class:`ToolResultTooLargeError` (not retried), oversized arguments a ``ToolArgumentsError`` for the
model to fix; neither reaches the journal, the run's state or the model.
"""

from __future__ import annotations

import enum
from typing import Any, Literal

from tether.core import serde
from tether.core.errors import ConfigurationError, ToolArgumentsError, ToolResultTooLargeError

KiB = 1024
MiB = 1024 * KiB
DEFAULT_MAX_RESULT_BYTES = 1 * MiB
"""The executor's result limit unless told: far above what a model should be shown at once
(about 250k tokens), far below what would bloat the journal and every replay."""
DEFAULT_MAX_ARGS_BYTES = 1 * MiB
"""The executor's argument limit unless told."""


class Inherit(enum.Enum):
    INHERIT = "inherit"


INHERIT = Inherit.INHERIT
"""A tool's limit left unset: it takes the executor's."""
ToolLimit = int | None | Literal[Inherit.INHERIT]

HOW_TO_RAISE = (
    "raise it for this tool with @tool(max_result_bytes=N) (McpToolset(max_result_bytes=N) for "
    "an MCP server's tools), or for every tool without its own with "
    "ToolExecutor(max_result_bytes=N); None lifts it"
)


def checked_limit(value: Any, what: str, *, inherit: bool = False) -> Any:
    """``value`` when it is a byte count > 0, None (no limit) or, where ``inherit``, INHERIT;
    else a ConfigurationError naming ``what``."""
    if value is None or (inherit and value is INHERIT):
        return value
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ConfigurationError(
            f"{what} must be a number of bytes > 0 (e.g. 4 * 1024 * 1024), or None for no limit; "
            f"got {value!r}"
        )
    return value


def effective(own: ToolLimit, default: int | None) -> int | None:
    """A tool's own limit when it set one, else the executor's ``default``."""
    return default if own is INHERIT else own


def encoded_size(value: Any) -> int:
    """Bytes of ``value`` as the journal would write it (JSON); for a value JSON cannot write (an
    object a tool returned outside a run) the bytes of its ``str()``, as the model would see it."""
    try:
        return len(serde.dumps(value))
    except TypeError:
        try:
            return len(str(value).encode("utf-8", "replace"))
        except Exception:
            return 0


def check_result(tool: str, value: Any, limit: int | None, *, has_effect: bool) -> Any:
    """``value`` when it fits in ``limit``, else ToolResultTooLargeError saying how large it is,
    the limit and how to raise it."""
    if limit is None:
        return value
    size = encoded_size(value)
    if size <= limit:
        return value
    raise result_too_large(tool, size, limit, has_effect=has_effect)


def result_too_large(
    tool: str, size: int, limit: int, *, has_effect: bool, at_least: bool = False, what: str = ""
) -> ToolResultTooLargeError:
    ran = (
        "the call ran (its effect happened: calling it again repeats it)"
        if has_effect
        else "the call ran"
    )
    return ToolResultTooLargeError(
        f"tool {tool!r} returned {'more than ' if at_least else ''}{size} bytes"
        f"{what or ' (JSON-encoded)'}, over its limit of {limit} bytes (max_result_bytes); "
        f"{ran} but its result was dropped, not journaled nor shown. Ask for less (a narrower "
        f"query, a page, a summary), or {HOW_TO_RAISE}",
        tool=tool,
        size=size,
        limit=limit,
    )


def check_args(tool: str, args: dict[str, Any], limit: int | None) -> None:
    """ToolArgumentsError when validated ``args`` are over ``limit`` bytes (JSON): the model
    sent them, so it is the model's to fix; the call never runs."""
    if limit is None:
        return
    size = encoded_size(args)
    if size <= limit:
        return
    msg = (
        f"arguments are {size} bytes (JSON-encoded), over the limit of {limit} bytes "
        "(max_args_bytes): pass less (a reference, a path, a page), or raise it with "
        "@tool(max_args_bytes=N) or ToolExecutor(max_args_bytes=N); None lifts it"
    )
    raise ToolArgumentsError(
        f"invalid arguments for tool {tool!r}: {msg}",
        tool=tool,
        errors=[{"loc": [], "msg": msg, "type": "too_large"}],
    )
