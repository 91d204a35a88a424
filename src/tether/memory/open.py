"""``open_memory(url)``: the memory store a run store URL names, unopened (``await setup()``).

* ``memory://``                          in-process (tests, demos)
* ``sqlite:///path.db``, ``path.db``      the memory tables inside that SQLite file, beside the
  run store's (one file to back up); the vector index is kept at ``path.db-memory.N.usearch``
* ``sqlite:///:memory:``                 a private in-memory SQLite database
* ``postgresql://...``                    that database (needs pgvector; ``?schema=`` honoured,
  the run store's own options ignored)

A RunStore object is accepted too: its database is used.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from tether.core.clock import SYSTEM_CLOCK, Clock
from tether.core.errors import ConfigurationError
from tether.llm.embeddings import Embedder
from tether.memory.episodic_memory_backend import InProcessEpisodic
from tether.memory.kg_memory_backend import InProcessKnowledgeGraph
from tether.memory.protocol import MemoryBackend

_RUN_STORE_OPTIONS = ("durability", "retry_for", "pool_size")
_FORMS = "memory://, sqlite:///path.db, a bare path ending .db/.sqlite, or postgresql://..."


class InProcessMemory(InProcessEpisodic):
    """In-process episodic memory with its knowledge graph at ``.kg``."""

    def __init__(
        self,
        *,
        embedder: Embedder | None = None,
        clock: Clock = SYSTEM_CLOCK,
        functional_relations: Collection[str] = (),
    ) -> None:
        super().__init__(embedder=embedder, clock=clock)
        self.kg = InProcessKnowledgeGraph(clock=clock, functional_relations=functional_relations)

    async def setup(self) -> None:
        return None


def open_memory(
    url_or_store: Any,
    *,
    embedder: Embedder | None = None,
    clock: Clock = SYSTEM_CLOCK,
    functional_relations: Collection[str] = (),
) -> MemoryBackend:
    """The memory backend a store URL (or a RunStore) names; call ``await m.setup()``."""
    opts: dict[str, Any] = {
        "embedder": embedder,
        "clock": clock,
        "functional_relations": functional_relations,
    }
    if not isinstance(url_or_store, str):
        return _from_store(url_or_store, opts)
    url = url_or_store.strip()
    scheme, sep, rest = url.partition("://")
    scheme = scheme.lower()
    if not sep:
        if url.lower().endswith((".db", ".sqlite", ".sqlite3")):
            return _sqlite(url, opts)
        raise ConfigurationError(f"cannot tell which memory store {url!r} names; use {_FORMS}")
    if scheme == "memory":
        return InProcessMemory(**opts)
    if scheme == "sqlite":
        path = rest.partition("?")[0]
        if path in ("", "/", "/:memory:"):
            return _sqlite(":memory:", opts)
        if not path.startswith("/"):
            raise ConfigurationError(
                f"malformed SQLite URL {url!r}: use sqlite:///relative/path.db or "
                "sqlite:////absolute/path.db"
            )
        return _sqlite(path[1:], opts)
    if scheme in ("postgresql", "postgres"):
        return _postgres(url, opts)
    raise ConfigurationError(f"unknown memory store URL scheme {scheme!r} in {url!r}; use {_FORMS}")


def _sqlite(path: str, opts: dict[str, Any]) -> MemoryBackend:
    from tether.memory.sqlite_episodic import SqliteMemory

    return SqliteMemory(path, **opts)


def _postgres(url: str, opts: dict[str, Any]) -> MemoryBackend:
    from tether.memory.pg_episodic import PgMemory

    parts = urlsplit(url)
    schema: str | None = None
    durability = "process"
    rest: list[tuple[str, str]] = []
    for key, value in parse_qsl(parts.query, keep_blank_values=True):
        if key == "schema":
            schema = value
        elif key == "durability":  # the run store's option means the same here
            durability = value
        elif key not in _RUN_STORE_OPTIONS:
            rest.append((key, value))
    dsn = urlunsplit(parts._replace(query=urlencode(rest)))
    where = urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2], query=""))
    return PgMemory(dsn, schema=schema, where=where, durability=durability, **opts)


def _from_store(store: Any, opts: dict[str, Any]) -> MemoryBackend:
    path = getattr(store, "path", None)
    if type(store).__name__ == "SqliteStore" and isinstance(path, str):
        if path.startswith("file:") or path == ":memory:":
            raise ConfigurationError(
                "this run store is a private in-memory SQLite database; its memory tables "
                "cannot share it: open_memory('sqlite:///:memory:') or give the store a file"
            )
        return _sqlite(path, opts)
    if type(store).__name__ == "MemoryStore":
        return InProcessMemory(**opts)
    raise ConfigurationError(
        f"cannot open a memory store on {type(store).__name__}; pass its URL instead ({_FORMS})"
    )
