"""``open_store(url)``: one string picks the backend.

* ``memory://``                              in-process (tests, demos)
* ``sqlite:///relative/path.db``             SQLite file, relative to the working directory
* ``sqlite:////absolute/path.db``            SQLite file, absolute path (four slashes)
* ``sqlite:///:memory:`` or ``sqlite://``    private in-memory SQLite (``sqlite:///``, with an
  empty path, is refused: an unset variable would otherwise lose every run)
* ``path/to/file.db`` (``.db``/``.sqlite``/``.sqlite3``)   a bare SQLite path
* ``postgresql://user@host:5432/db?schema=name`` (or ``postgres://``)   PostgreSQL

SQLite and PostgreSQL take ``?durability=process|power-loss``; PostgreSQL also ``?retry_for=30``
(seconds an operation is retried in place while the server is unreachable; 0: never). The
store is returned unopened: call ``await store.setup()`` before use.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from tether.core.clock import SYSTEM_CLOCK, Clock
from tether.core.errors import ConfigurationError
from tether.store.memory import MemoryStore
from tether.store.protocol import RunStore
from tether.store.sqlite import SqliteStore

_SCHEME_LIKE = re.compile(r"[A-Za-z][A-Za-z0-9+.-]+:")  # "sqlite:x.db" (not "C:\\x.db")
_SQLITE_SUFFIXES = (".db", ".sqlite", ".sqlite3")
_FORMS = (
    "memory://, sqlite:///relative/path.db, sqlite:////absolute/path.db, a bare path ending "
    ".db/.sqlite, or postgresql://user@host:5432/dbname?schema=name"
)


def open_store(url_or_store: str | RunStore, *, clock: Clock = SYSTEM_CLOCK) -> RunStore:
    """The RunStore a URL names (a store passed in is returned as is)."""
    if not isinstance(url_or_store, str):
        return url_or_store
    url = url_or_store.strip()
    scheme, sep, rest = url.partition("://")
    if not sep:
        if _SCHEME_LIKE.match(url) is None and url.lower().endswith(_SQLITE_SUFFIXES):
            return SqliteStore(url, clock=clock)
        raise ConfigurationError(f"cannot tell which store {url!r} names; use {_FORMS}")
    scheme = scheme.lower()
    if scheme == "memory":
        return MemoryStore(clock=clock)
    if scheme == "sqlite":
        return _sqlite(rest, clock)
    if scheme in ("postgresql", "postgres"):
        return _postgres(url, clock)
    raise ConfigurationError(f"unknown store URL scheme {scheme!r} in {url!r}; use {_FORMS}")


def _sqlite(rest: str, clock: Clock) -> RunStore:
    path, _, query = rest.partition("?")
    opts = dict(parse_qsl(query))
    durability = opts.pop("durability", "process")
    if opts:
        raise ConfigurationError(
            f"unknown SQLite store option(s) {sorted(opts)}; the only one is "
            "durability=process|power-loss"
        )
    if path == "/":  # "sqlite:///" + an empty path: most likely an unset variable
        raise ConfigurationError(
            "'sqlite:///' names no file (an empty path: an unset variable?); a file is "
            "sqlite:///relative/path.db or sqlite:////absolute/path.db, a private in-memory "
            "database sqlite:///:memory: (or memory:// for tether's in-process store)"
        )
    if path in ("", "/:memory:"):
        path = ":memory:"
    elif path.startswith("/"):
        path = path[1:]
    else:
        raise ConfigurationError(
            f"malformed SQLite URL 'sqlite://{rest}': use sqlite:///relative/path.db or "
            "sqlite:////absolute/path.db"
        )
    if durability not in ("process", "power-loss"):
        raise ConfigurationError(
            f"unknown SQLite durability {durability!r}; use durability=process or power-loss"
        )
    return SqliteStore(
        path, durability="power-loss" if durability == "power-loss" else "process", clock=clock
    )


def _seconds(key: str, value: str) -> float:
    try:
        seconds = float(value)
    except ValueError:
        seconds = -1.0
    if not seconds >= 0 or seconds == float("inf"):
        raise ConfigurationError(f"{key} must be a number of seconds >= 0, not {value!r}")
    return seconds


def _postgres(url: str, clock: Clock) -> RunStore:
    from tether.store.postgres import PostgresStore

    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    opts: dict[str, Any] = {}
    rest: list[tuple[str, str]] = []
    for key, value in query:
        if key == "schema":
            opts["schema"] = value
        elif key == "pool_size":
            if not value.isdigit() or int(value) < 1:
                raise ConfigurationError(f"pool_size must be a positive integer, not {value!r}")
            opts["pool_size"] = int(value)
        elif key == "durability":
            if value not in ("process", "power-loss"):
                raise ConfigurationError(
                    f"unknown Postgres durability {value!r}; use durability=process or power-loss"
                )
            opts["durability"] = value
        elif key == "retry_for":
            opts["retry_for"] = _seconds(key, value)
        else:
            rest.append((key, value))
    dsn = urlunsplit(parts._replace(query=urlencode(rest)))
    return PostgresStore(dsn, clock=clock, **opts)
