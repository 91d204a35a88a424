"""What a CLI command checks before it opens a SQLite store: every command reads runs that exist,
so a ``--store`` that names no tether store is said to be wrong instead of being used.

* ``sqlite:x.db`` / ``sqlite:/x.db`` (a slash or two short): the URLs it probably meant;
* a missing file: not created (a typo would otherwise start an empty store);
* a directory, a file that is not SQLite: named as such;
* another application's SQLite database: refused, not given tether's tables by a read command
  (``tether migrate`` adds them when that is wanted).
"""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

from tether.core.errors import ConfigurationError
from tether.store.sqlite import SqliteDialect

_SQLITE_SUFFIXES = (".db", ".sqlite", ".sqlite3")
_SCHEME_LIKE = re.compile(r"[A-Za-z][A-Za-z0-9+.-]+:")  # "sqlite:x.db" (not "C:\\x.db")
_FIX = "pass --store URL or set TETHER_STORE to the store your runs use"


def sqlite_path(url: str) -> str | None:
    """The file a SQLite store URL names (None for in-memory or non-SQLite URLs)."""
    url = url.strip()
    scheme, sep, rest = url.partition("://")
    if not sep:
        if _SCHEME_LIKE.match(url):
            return None  # "sqlite:x.db" is no path: open_store says which forms there are
        return url if url.lower().endswith(_SQLITE_SUFFIXES) else None
    if scheme.lower() != "sqlite":
        return None
    path = rest.partition("?")[0]
    if path in ("", "/", "/:memory:") or not path.startswith("/"):
        return None
    return path[1:]


def check_store_url(url: str, origin: str) -> None:
    """Raise a ConfigurationError saying what is wrong with a SQLite store URL and how to write
    it; return for a usable one (or any other kind of store: opening it says the rest)."""
    raw = url.strip()
    if "://" not in raw and raw.lower().startswith("sqlite:"):
        rel = raw[len("sqlite:") :].lstrip("/")
        raise ConfigurationError(
            f"malformed SQLite URL {raw!r}{_from(origin)}: write sqlite:///{rel} for a path "
            f"relative to the working directory, or sqlite:////{rel} for /{rel}"
        )
    path = sqlite_path(raw)
    if path is None or path.startswith("file:"):
        return
    file = Path(path)
    if not file.exists():
        raise ConfigurationError(f"no tether store at {path!r}{_from(origin)}; {_FIX}")
    if file.is_dir():
        raise ConfigurationError(
            f"store {raw!r}{_from(origin)} names a directory, not a database file; name the "
            f"file, e.g. sqlite:///{path.rstrip('/')}/tether.db"
        )
    tables = _tables(file)
    if tables is None:
        raise ConfigurationError(
            f"{path!r}{_from(origin)} is not a SQLite database (not a tether store); {_FIX}"
        )
    marker = f"{SqliteDialect().prefix}schema_version"
    if tables and marker not in tables:
        shown = ", ".join(sorted(tables)[:5]) + (", ..." if len(tables) > 5 else "")
        raise ConfigurationError(
            f"{path!r}{_from(origin)} is a SQLite database of something else (tables: {shown}), "
            f"not a tether store; {_FIX} (to add tether's tables to this database on purpose: "
            "tether migrate --store URL)"
        )


def _from(origin: str) -> str:
    return "" if origin == "--store" else f" ({origin})"


def _tables(file: Path) -> set[str] | None:
    """The tables of a SQLite file, read without writing to it; None when it is not SQLite.
    A file that cannot be read now (locked, unreadable) yields an empty set: opening the
    store then reports what is wrong."""
    if file.stat().st_size == 0:
        return set()
    try:
        uri = f"{file.resolve().as_uri()}?mode=ro"
        db = sqlite3.connect(uri, uri=True, timeout=5)
        try:
            rows = db.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()
        finally:
            db.close()
    except sqlite3.DatabaseError as exc:
        if "not a database" in str(exc):
            return None
        return set()
    return {str(name) for (name,) in rows}
