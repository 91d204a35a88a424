"""Tools and scripted models shared by the pattern tests."""

from __future__ import annotations

from tether.tools import ToolExecutor, tool

CITIES = {"paris": 2_100_000, "lyon": 520_000, "marseille": 870_000}


@tool(scope="read", idempotent=True)
def population(city: str) -> int:
    """Population of a French city."""
    return CITIES[city.lower()]


@tool(scope="read", idempotent=True)
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


def executor() -> ToolExecutor:
    return ToolExecutor([population, add])
