"""tether tool contracts served over MCP by the tests (``--app tests.tools.mcp.app:tools``)."""

from __future__ import annotations

import asyncio

from pydantic import BaseModel

from tether.core.errors import ToolError, ToolRateLimitedError, ToolTransientError
from tether.tools.contract import tool
from tether.tools.registry import ToolRegistry


class Item(BaseModel):
    key: str
    value: int


@tool
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


@tool(scope="destructive")
def delete_file(path: str) -> str:
    """Delete a file (pretend)."""
    return f"deleted {path}"


@tool(scope="write", idempotent=True)
def set_value(key: str, value: int) -> Item:
    """Store a value under a key."""
    return Item(key=key, value=value)


@tool(scope="write")
def count_words(words: list[str]) -> dict[str, int]:
    """Count each word."""
    out: dict[str, int] = {}
    for w in words:
        out[w] = out.get(w, 0) + 1
    return out


@tool
def shout(text: str, punct: str = "!") -> str:
    """Upper-case the text."""
    return text.upper() + punct


@tool(scope="write")
def echo_key(idempotency_key: str | None = None) -> str:
    """Return the idempotency key the call came with."""
    return idempotency_key or "no key"


@tool(scope="write", idempotent=True, idempotency_key=lambda a: f"order-{a['order_id']}")
def charge(order_id: str, cents: int, idempotency_key: str | None = None) -> str:
    """Charge an order; the payment API dedupes on the key. Answers with the key it got."""
    return f"charged {order_id} {cents} key={idempotency_key}"


@tool
def noisy() -> str:
    """Print to stdout (which must not reach the MCP wire) and answer."""
    print("stray output that would corrupt a stdio transport")
    return "still fine"


@tool
def fail(message: str) -> str:
    """Fail with a ToolError."""
    raise ToolError(message)


@tool
def broken(message: str) -> str:
    """Fail with an unexpected exception."""
    raise ValueError(message)


@tool
def throttled() -> str:
    """Rate limited upstream."""
    raise ToolRateLimitedError("slow down", retry_after=2.5)


@tool
def flaky() -> str:
    """A transient upstream failure."""
    raise ToolTransientError("upstream answered 503", status=503)


@tool(timeout=0.2)
async def slow() -> str:
    """Runs past its own timeout."""
    await asyncio.sleep(5)
    return "late"


tools = [
    add,
    delete_file,
    set_value,
    count_words,
    shout,
    echo_key,
    charge,
    noisy,
    fail,
    broken,
    throttled,
    flaky,
    slow,
]
registry = ToolRegistry(tools)
