"""Several runs' fenced commits in one PostgreSQL statement (``PostgresStore.commit_batch``).

A worker that claims a batch of never-started runs moves each one into the phase of its first
step before running it (a commit per run: its own round trip, the largest part of what a
trivial run costs). The batch sends those commits as one statement that calls the same commit
function once per run (``FROM unnest(...) AS v, LATERAL tether_commit(v...)``): the same
fence, status check, events and hops as ``commit``, one round trip and one transaction for all.
Atomic: a refused commit (a fence lost, a status moved) fails the whole statement and nothing
of it applies; the caller then commits each run by itself.

The statement is one text for any batch size: each parameter of the commit function travels as
one array of the batch's values (an array-valued one as an array of array literals, cast back
per row). A ``VALUES`` row per commit made a new text of up to 481 placeholders per size, which
psycopg parses afresh every time (too long for its cache: 11 ms of the worker's CPU for 16
runs, more than the batch saved) and the server parses and plans again.

It never waits for a lock: it first locks every row of the batch ``FOR UPDATE NOWAIT`` and fails
at once (SQLSTATE 55P03) when one is held. The runtime's lease heartbeat renews the same rows in
one statement, in an order of its own; two statements that each wait for the other's rows
deadlock (PostgreSQL aborts one of them after ``deadlock_timeout``), one that never waits cannot.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import cache
from typing import Any

from tether.store import pg_commit, run_head
from tether.store.pg_commit import text_array

_WIDTH = len(pg_commit.PARAMS)


def _sent_as(typ: str) -> str:
    """The array type a column of the commit function's ``typ`` parameters travels as."""
    return "text[]" if typ.endswith("[]") else f"{typ}[]"  # arrays of arrays: of literals


def _numbers(values: Sequence[Any]) -> str:
    return "{" + ",".join(["NULL" if v is None else repr(v) for v in values]) + "}"


def _flags(values: Sequence[Any]) -> str:
    return "{" + ",".join(["NULL" if v is None else ("t" if v else "f") for v in values]) + "}"


def _blobs(values: Sequence[Any]) -> str:
    return "{" + ",".join(["NULL" if v is None else f'"\\\\x{v.hex()}"' for v in values]) + "}"


def _column(typ: str) -> Callable[[Sequence[Any]], str]:
    """How the batch's values of a ``typ`` parameter are written as one array literal."""
    if typ in ("bigint", "double precision"):
        return _numbers
    if typ == "boolean":
        return _flags
    if typ == "bytea":
        return _blobs
    return text_array  # text, and the literals of array parameters (``pg_commit.params``)


_COLUMNS = tuple(_column(typ) for _name, typ in pg_commit.PARAMS)


@cache
def statement(prefix: str) -> str:
    """The batch (psycopg placeholders: the run ids as one text array, then ``params``): one
    row per commit, the run id then the run's head (``run_head.HEAD_COLUMNS``)."""
    names = ", ".join(f"a{i}" for i in range(_WIDTH))
    arrays = ", ".join(f"%s::{_sent_as(typ)}" for _name, typ in pg_commit.PARAMS)
    args = ", ".join(
        f"v.a{i}::{typ}" if typ.endswith("[]") else f"v.a{i}"
        for i, (_name, typ) in enumerate(pg_commit.PARAMS)
    )
    head = ", ".join(f"c.{c}" for c in run_head.HEAD_COLUMNS)
    return (
        f"WITH locked AS MATERIALIZED (SELECT run_id FROM {prefix}runs "
        "WHERE run_id = ANY (%s::text[]) ORDER BY run_id FOR UPDATE NOWAIT) "
        f"SELECT v.a0, {head} FROM unnest({arrays}) AS v({names}), "
        f"LATERAL {prefix}commit({args}) AS c WHERE (SELECT count(*) FROM locked) >= 0"
    )


def params(rows: Sequence[Sequence[Any]]) -> list[Any]:
    """``statement``'s parameters for the commits whose ``pg_commit.params`` are ``rows``."""
    columns = list(zip(*rows, strict=True))
    ids = text_array(columns[0])
    out: list[Any] = [ids, ids]  # the rows to lock, then the commits' run ids
    for i in range(1, _WIDTH):
        values = columns[i]
        # a column of NULLs travels as NULL: unnest pads it with NULLs to the batch's length
        out.append(None if values.count(None) == len(values) else _COLUMNS[i](values))
    return out
