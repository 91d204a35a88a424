"""Helpers shared by every bench script (tether's and the anchors'): standard library only.

Each system's script imports this module, so the workloads' constants, the payloads and the way
bytes and step times are measured are the same for all of them.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import random
import sqlite3
import statistics
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

# -- the workloads (identical for every system) ---------------------------------------------
CYCLE_STEPS = 1000  # per_step_us: a -> b -> a ... node executions
GROWTH_STEPS = 200  # growth_200x1kb: steps, each appending one message
GROWTH_MSG_BYTES = 1024
CONC_RUNS = 200  # concurrency_200x20_10ms
CONC_STEPS = 20
CONC_SLEEP_S = 0.01

PG_DEFAULT = "postgresql://postgres@127.0.0.1:5432/test"


def pg_base_url() -> str:
    """The Postgres server every system uses (``TETHER_BENCH_PG`` overrides the default)."""
    return os.environ.get("TETHER_BENCH_PG", PG_DEFAULT)


def with_query(url: str, **params: str) -> str:
    """``url`` with query parameters added (or replaced)."""
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query))
    query.update(params)
    return urlunsplit(parts._replace(query=urlencode(query, quote_via=quote)))  # libpq: %20, not +


def reset_pg_schema(url: str, schema: str) -> None:
    """Drop and re-create ``schema`` on the server at ``url`` (needs psycopg)."""
    import psycopg  # imported lazily: only the Postgres workloads need it

    with psycopg.connect(url, autocommit=True, connect_timeout=5) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        conn.execute(f'CREATE SCHEMA "{schema}"')


def drop_pg_schema(url: str, schema: str) -> None:
    """Drop ``schema`` (best effort, used to clean up after a workload)."""
    import psycopg

    with (
        contextlib.suppress(Exception),
        psycopg.connect(url, autocommit=True, connect_timeout=5) as conn,
    ):
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def payload(i: int) -> str:
    """A deterministic message of exactly ``GROWTH_MSG_BYTES`` hex digits drawn at random (seed
    ``i``): as incompressible as hex text is (deflate halves it, no more), so a store that
    compresses gains no more here than on real text, where it gains more. (It used to repeat one
    64-digit digest, which deflate shrinks 16 times: a compressing store would have looked far
    better than it is.)"""
    digits = random.Random(i).randbytes((GROWTH_MSG_BYTES + 1) // 2).hex()
    return digits[:GROWTH_MSG_BYTES]


def sqlite_bytes(path: str | Path) -> int:
    """Bytes on disk of a SQLite database: ``PRAGMA wal_checkpoint(TRUNCATE)`` first, then the
    size of the main file plus its ``-wal`` (empty after a truncating checkpoint unless a reader
    held it open). ``-shm`` is excluded: it is a shared-memory index, not data."""
    path = Path(path)
    conn = sqlite3.connect(path)
    try:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        conn.close()
    total = path.stat().st_size
    wal = path.with_name(path.name + "-wal")
    if wal.exists():
        total += wal.stat().st_size
    return total


def remove_sqlite(path: str | Path) -> None:
    """Delete a SQLite database and its ``-wal``/``-shm`` companions."""
    path = Path(path)
    for p in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        p.unlink(missing_ok=True)


def enable_wal(path: str | Path) -> None:
    """Create (if needed) the database at ``path`` in WAL mode (persistent in the file)."""
    conn = sqlite3.connect(path)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
    finally:
        conn.close()


def step_time_ratio(stamps: Sequence[float], n: int = 10, *, robust: bool = False) -> float:
    """Given ``k + 1`` timestamps bounding ``k`` steps, mean of the last ``n`` step durations
    divided by the mean of the first ``n`` (``robust``: medians instead of means, so that one
    periodic pause, e.g. a WAL checkpoint, landing in either window does not decide it)."""
    durations = [b - a for a, b in itertools.pairwise(stamps)]
    if len(durations) < 2 * n:
        raise ValueError(f"need at least {2 * n} steps, got {len(durations)}")
    agg = statistics.median if robust else statistics.fmean
    return float(agg(durations[-n:]) / agg(durations[:n]))


def growth_ratios(stamp_lists: Sequence[Sequence[float]]) -> tuple[float, float]:
    """Median over the repeats of the step-time ratio: (means, as reported; medians, extra)."""
    return (
        median([step_time_ratio(st) for st in stamp_lists]),
        median([step_time_ratio(st, robust=True) for st in stamp_lists]),
    )


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values))


def rnd(value: float | None, digits: int = 2) -> float | None:
    return None if value is None else round(value, digits)


def emit(result: dict[str, Any]) -> None:
    """Print the script's one JSON object on stdout (the harness reads the last line)."""
    sys.stdout.write(json.dumps(result) + "\n")
    sys.stdout.flush()


def error_note(measure: str, exc: BaseException) -> str:
    return f"{measure}: not measured ({type(exc).__name__}: {exc})".strip()
