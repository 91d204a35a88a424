"""One-node workflows run on a SQLite store, for the tests of tool calls inside runs."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypedDict

from tether import END, START, Graph, RetryPolicy, Runtime
from tether.graph.builder import Workflow
from tether.store.sqlite import SqliteStore


class Out(TypedDict, total=False):
    out: Any


def one_node(
    name: str, fn: Callable[..., Awaitable[dict[str, Any]]], retry: RetryPolicy | None = None
) -> Workflow:
    graph = Graph(Out, name=name)
    graph.add_node("act", fn, retry=retry)
    graph.add_edge(START, "act").add_edge("act", END)
    return graph.compile()


def sqlite_runtime(tmp_path: Path, *workflows: Workflow) -> Runtime:
    return Runtime(SqliteStore(tmp_path / "runs.db"), workflows=list(workflows), recover=False)


async def until(condition: Callable[[], bool]) -> None:
    """Wait for ``condition`` (a state another task reaches), checking between loop turns."""
    while not condition():
        await asyncio.sleep(0.001)
