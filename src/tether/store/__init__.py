"""Durable storage of runs: the RunStore protocol and its backends.

``open_store(url)`` picks a backend from a URL. ``PostgresStore`` needs the ``postgres`` extra
and is imported on first use, so this package imports without psycopg.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tether.store.memory import MemoryStore
from tether.store.protocol import RunStore
from tether.store.sqlite import SqliteStore
from tether.store.types import (
    Checkpoint,
    Commit,
    EffectRecord,
    Event,
    Lease,
    NodeWrite,
    RunRecord,
    Transition,
)
from tether.store.url import open_store

if TYPE_CHECKING:
    from tether.store.postgres import PostgresStore

__all__ = [
    "Checkpoint",
    "Commit",
    "EffectRecord",
    "Event",
    "Lease",
    "MemoryStore",
    "NodeWrite",
    "PostgresStore",
    "RunRecord",
    "RunStore",
    "SqliteStore",
    "Transition",
    "open_store",
]


def __getattr__(name: str) -> Any:
    if name == "PostgresStore":
        from tether.store.postgres import PostgresStore

        return PostgresStore
    raise AttributeError(f"module 'tether.store' has no attribute {name!r}")
