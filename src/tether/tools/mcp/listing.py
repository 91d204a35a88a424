"""Reading an MCP server's tool list, and which of its tools can be imported.

A server's listing is input like any other: a name used twice, a name a tool cannot have, a
paging that never ends. :func:`list_tools` reads every page (a cursor seen before, or more than
``MAX_PAGES`` pages, is an error, never a silently short list); :func:`vet` keeps the tools
that can be told apart and called by name, and says why it left out each of the others:

- a name that is empty, has a space at either end, holds a control character (NUL, a newline,
  a lone surrogate...) or is longer than ``MAX_NAME`` characters (the MCP spec's 128): it cannot
  be journaled, shown or sent to a model as it is;
- a name listed twice with two different definitions: a call by that name reaches one of
  them, and which one only the server knows (a read-only ``delete`` beside a destructive
  one would pass policies as a read), so neither is imported. The same definition listed
  twice is imported once.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from mcp_types import METHOD_NOT_FOUND, ListToolsResult, Tool

from tether.core.errors import ConfigurationError
from tether.tools.mcp.results import McpToolError

log = logging.getLogger("tether.tools.mcp.client")

MAX_PAGES = 100
"""Most pages of ``tools/list`` read from one server."""
MAX_NAME = 128
"""Longest tool name imported (the MCP spec's limit)."""


class McpListingError(McpToolError):
    """The server's tool list cannot be read as a list: its paging loops or never ends (not
    retried: asking again gets the same pages)."""


def name_problem(name: object) -> str | None:
    """Why ``name`` cannot name a tool, or None when it can."""
    if not isinstance(name, str) or not name:
        return "its name is empty"
    if name.strip() != name:
        return "its name has a space at an end"
    if not name.isprintable():
        return "its name holds a control character"
    if len(name) > MAX_NAME:
        return f"its name is longer than {MAX_NAME} characters"
    return None


def check_prefix(prefix: object) -> str:
    """An McpToolset's ``prefix``: a string that a tool name may start with."""
    if not isinstance(prefix, str) or (prefix and name_problem(prefix)):
        raise ConfigurationError(
            f"an McpToolset prefix is a name part such as 'fs.' (printable, no space at an "
            f"end), got {prefix!r}"
        )
    return prefix


async def list_tools(
    fetch: Callable[[str | None], Any], target: str, *, max_pages: int = MAX_PAGES
) -> list[Tool]:
    """Every tool of the server, page after page. ``fetch(cursor)`` reads one page."""
    tools: list[Tool] = []
    cursor: str | None = None
    seen: set[str] = set()
    for page in range(1, max_pages + 1):
        try:
            result: ListToolsResult = await fetch(cursor)
        except Exception as exc:
            if getattr(exc, "code", None) == METHOD_NOT_FOUND and page == 1:
                return tools  # a server without tools
            raise
        tools.extend(result.tools)
        cursor = result.next_cursor
        if cursor is None:
            return tools
        if cursor in seen:
            raise McpListingError(
                f"MCP server {target!r} lists its tools in a loop: page {page + 1} would be "
                f"cursor {cursor[:80]!r} again; the server's paging is broken"
            )
        seen.add(cursor)
    raise McpListingError(
        f"MCP server {target!r} lists its tools in more than {max_pages} pages; tether reads "
        "at most that many (ask for a server with fewer tools, or one that pages more per page)"
    )


@dataclass(slots=True)
class Vetted:
    tools: list[Tool] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)
    """Name (with the toolset's prefix) -> why the tool was left out."""


def vet(listed: Iterable[Tool], prefix: str, target: str) -> Vetted:
    out = Vetted()
    first: dict[str, Tool] = {}
    clashing: set[str] = set()
    for t in listed:
        problem = name_problem(t.name)
        if problem is not None:
            out.skipped[f"{prefix}{t.name}"] = problem
            continue
        earlier = first.get(t.name)
        if earlier is None:
            first[t.name] = t
        elif earlier != t:
            clashing.add(t.name)
    for name in clashing:
        out.skipped[f"{prefix}{name}"] = (
            "the server lists two different tools under this name (a call by name would reach "
            "one of them, and only the server knows which)"
        )
    out.tools = [t for name, t in first.items() if name not in clashing]
    for name, why in out.skipped.items():
        log.warning("MCP server %r: tool %r left out: %s", target, name[:200], why)
    return out
