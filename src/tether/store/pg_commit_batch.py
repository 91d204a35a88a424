"""Several runs' fenced commits in one PostgreSQL statement (``PostgresStore.commit_batch``).

A worker that claims a batch of never-started runs moves each one into the phase of its first
step before running it (a commit per run: its own round trip, the largest part of what a
trivial run costs). The batch sends those commits as one statement that calls the same commit
function once per run (``FROM (VALUES ...) AS v, LATERAL tether_commit(v...)``): the same
fence, status check, events and hops as ``commit``, one round trip and one transaction for all.
Atomic: a refused commit (a fence lost, a status moved) fails the whole statement and nothing
of it applies; the caller then commits each run by itself.

It never waits for a lock: it first locks every row of the batch ``FOR UPDATE NOWAIT`` and fails
at once (SQLSTATE 55P03) when one is held. The runtime's lease heartbeat renews the same rows in
one statement, in an order of its own; two statements that each wait for the other's rows
deadlock (PostgreSQL aborts one of them after ``deadlock_timeout``), one that never waits cannot.
"""

from __future__ import annotations

from functools import cache

from tether.store import pg_commit, run_head

_WIDTH = len(pg_commit.PARAMS)


@cache
def statement(prefix: str, n: int) -> str:
    """The batch of ``n`` commits (psycopg placeholders: the run ids as one text array, then
    ``pg_commit.params`` of each commit in turn): one row per commit, the run id then the run's
    head (``run_head.HEAD_COLUMNS``)."""
    names = ", ".join(f"a{i}" for i in range(_WIDTH))
    row = "(" + ", ".join(f"%s::{typ}" for _name, typ in pg_commit.PARAMS) + ")"
    args = ", ".join(f"v.a{i}" for i in range(_WIDTH))
    head = ", ".join(f"c.{c}" for c in run_head.HEAD_COLUMNS)
    return (
        f"WITH locked AS MATERIALIZED (SELECT run_id FROM {prefix}runs "
        "WHERE run_id = ANY (%s::text[]) ORDER BY run_id FOR UPDATE NOWAIT) "
        f"SELECT v.a0, {head} FROM (VALUES {', '.join([row] * n)}) AS v({names}), "
        f"LATERAL {prefix}commit({args}) AS c WHERE (SELECT count(*) FROM locked) >= 0"
    )
