"""Shared limits and queue statistics (``tether.store.queue_limits``) of the SQL backends:
schema v10, its statements and the limited claim, written once for SQLite and PostgreSQL.

The limited claim is one ``UPDATE`` whose candidates skip every key already at its limit and
are admitted in claim order while each key still has room (a row number per queue, workflow
and tenant against the room left): conservative, so never above a limit. Counting the running
runs and claiming must not interleave with another claimer's: on PostgreSQL the statement runs
after a transaction-scoped advisory lock (the statement's snapshot is taken once the lock is
held, so it sees every claim committed before); SQLite runs one writer at a time anyway.

Its work does not grow with the backlog (schema v24): the candidates are read in claim order
from indexes, like the plain claim's (``claim_order.candidates``: owned runs whose lease expired
or whose owner is dead from the range of ``tether_runs_claim``, unowned ones from the queue's
index ``tether_runs_queued``), each branch stopping after ``lookahead`` runs of keys with room;
the running count of each limit reads the range of live leases of ``tether_runs_claim``. Sorting
every claimable run took 100-250 ms a claim of 16 with 100,000 runs queued and one tenant
limit set (on PostgreSQL and on SQLite), now 3-8 ms on PostgreSQL and about 1 ms on SQLite.
What it still passes over, row by row, besides what the plain claim does: the runs of a key
already full that come first in claim order (a tenant at its limit with a deep backlog of its
own is read through on each claim until that tenant has room again).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from tether.core.clock import Clock
from tether.core.errors import QueueFullError
from tether.store import claim_order
from tether.store.queue_limits import LIMITS_TTL, QueueLimit, QueueStats, check_limit
from tether.store.sql_base import ACTIVE_VALUES, Dialect, Statements

ORDER = "rk, priority DESC, created_at, run_id"
LOOKAHEAD = 4
"""Candidates read per free slot: some may be refused by a limit."""


def migration(d: Dialect) -> list[str]:
    """Schema v10: ``queue_limits`` (limits shared by every worker), and an index to count a
    tenant's runs."""
    p, r = d.prefix, d.real
    return [
        f"""CREATE TABLE {p}queue_limits (
            kind TEXT NOT NULL,
            key TEXT NOT NULL,
            max_running INTEGER,
            max_depth INTEGER,
            updated_at {r} NOT NULL,
            PRIMARY KEY (kind, key)
        )""",
        f"CREATE INDEX tether_runs_tenant ON {p}runs (tenant, status)",
    ]


def _in(n: int) -> str:
    return "(" + ", ".join("?" * n) + ")"


def _statements(d: Dialect) -> dict[str, str]:
    p, r = d.prefix, d.real
    act = _in(len(ACTIVE_VALUES))
    return {
        "put": (
            f"INSERT INTO {p}queue_limits (kind, key, max_running, max_depth, updated_at) "
            f"VALUES (?, ?, CAST(? AS INTEGER), CAST(? AS INTEGER), CAST(? AS {r})) "
            "ON CONFLICT (kind, key) DO UPDATE SET max_running = excluded.max_running, "
            "max_depth = excluded.max_depth, updated_at = excluded.updated_at"
        ),
        "delete": f"DELETE FROM {p}queue_limits WHERE kind = ? AND key = ?",
        "list": (
            f"SELECT kind, key, max_running, max_depth FROM {p}queue_limits ORDER BY kind, key"
        ),
        # parameters: statuses, now (lease), now (available_at)
        "stats": (
            "SELECT queue, "
            "SUM(CASE WHEN owner IS NOT NULL AND lease_expires_at > ? THEN 1 ELSE 0 END), "
            "SUM(CASE WHEN (owner IS NULL OR lease_expires_at <= ?) AND available_at <= ? "
            "THEN 1 ELSE 0 END), "
            "MIN(CASE WHEN (owner IS NULL OR lease_expires_at <= ?) AND available_at <= ? "
            "THEN created_at END), COUNT(*) "
            f"FROM {p}runs WHERE status IN {act} GROUP BY queue ORDER BY queue"
        ),
        "depth": f"SELECT COUNT(*) FROM {p}runs WHERE status IN {act} AND queue = ?",
    }


def limited_claim(
    d: Dialect, n_workflows: int | None, n_exclude: int, n_dead: int, n_queues: int | None
) -> str:
    """The claim under limits. Parameters: statuses, now, dead owners (the running count);
    then the candidates as ``claim_order.candidates`` reads them with the lookahead as their
    limit: now, dead owners, now, workflows, queues, excluded runs, lookahead (owned runs);
    now, workflows, queues, excluded runs, lookahead (unowned runs); lookahead (the merge);
    then the limit; the claimer and the new expiry."""
    p = d.prefix
    act = _in(len(ACTIVE_VALUES))
    alive = f" AND r.owner NOT IN {_in(n_dead)}" if n_dead else ""
    running = (
        f"(SELECT COUNT(*) FROM {p}runs r WHERE r.status IN {act} AND r.owner IS NOT NULL "
        f"AND r.lease_expires_at > ?{alive} AND "
        "((l.kind = 'queue' AND r.queue = l.key) OR (l.kind = 'workflow' AND r.workflow = l.key)"
        " OR (l.kind = 'tenant' AND r.tenant = l.key)))"
    )

    def hits(q: str, w: str, t: str) -> str:
        return (
            f"((lim.kind = 'queue' AND lim.key = {q}) OR (lim.kind = 'workflow' AND "
            f"lim.key = {w}) OR (lim.kind = 'tenant' AND lim.key = {t}))"
        )

    full = hits(f"{p}runs.queue", f"{p}runs.workflow", f"{p}runs.tenant")
    over = (
        "((lim.kind = 'queue' AND lim.key = k.queue AND k.nq > lim.room) OR "
        "(lim.kind = 'workflow' AND lim.key = k.workflow AND k.nw > lim.room) OR "
        "(lim.kind = 'tenant' AND lim.key = k.tenant AND k.nt > lim.room))"
    )
    # in claim order from the indexes, passing over the runs of every key already full
    cands = claim_order.candidates(
        p,
        d.skip_locked,
        n_workflows,
        n_exclude,
        n_dead,
        n_queues,
        indexed_by=d.name == "sqlite",
        fields=", queue, workflow, tenant",
        also=f" AND NOT EXISTS (SELECT 1 FROM lim WHERE lim.room <= 0 AND {full})",
        out="run_id, queue, workflow, tenant, rk, priority, created_at, owner",
    )
    win = f"ORDER BY {ORDER}"
    return (
        f"WITH lim AS MATERIALIZED (SELECT l.kind, l.key, l.max_running - {running} AS room "
        f"FROM {p}queue_limits l WHERE l.max_running IS NOT NULL), "
        f"cand AS MATERIALIZED ({cands}), "
        "k AS (SELECT run_id, queue, workflow, tenant, rk, priority, created_at, "
        f"ROW_NUMBER() OVER (PARTITION BY queue {win}) AS nq, "
        f"ROW_NUMBER() OVER (PARTITION BY workflow {win}) AS nw, "
        f"ROW_NUMBER() OVER (PARTITION BY tenant {win}) AS nt FROM cand), "
        f"ok AS (SELECT run_id FROM k WHERE NOT EXISTS (SELECT 1 FROM lim WHERE {over}) "
        f"ORDER BY {ORDER} LIMIT ?) "
        f"UPDATE {p}runs SET owner = ?, lease_token = lease_token + 1, lease_expires_at = ? "
        "WHERE run_id IN (SELECT run_id FROM ok) "
        "RETURNING run_id, lease_token, lease_expires_at, priority, created_at, "
        f"(SELECT cand.owner FROM cand WHERE cand.run_id = {p}runs.run_id)"
    )


def claim_lock_key(prefix: str) -> int:
    """The advisory lock limited claims take on PostgreSQL (one per schema): ``pg_claim``."""
    digest = hashlib.sha256(f"tether-claim:{prefix}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


class SqlQueueLimits:
    """``QueueControl`` over a ``SqlStore``; ``SqlStore.claim_runs`` asks ``_limited()``."""

    clock: Clock
    _sql: Statements
    _limits_cache: tuple[float, list[QueueLimit]] | None = None

    if TYPE_CHECKING:  # provided by SqlStore

        async def _fetch(self, sql: str, params: Sequence[Any]) -> list[Any]: ...

        async def _execute(self, sql: str, params: Sequence[Any]) -> int: ...

    def _limit_sql(self, name: str) -> str:
        d = self._sql.dialect
        return self._sql.memoized(("limits", name), lambda: _statements(d)[name])

    async def set_queue_limit(
        self,
        kind: str,
        key: str,
        *,
        max_running: int | None = None,
        max_depth: int | None = None,
    ) -> None:
        lim = check_limit(kind, key, max_running, max_depth)
        if max_running is None and max_depth is None:
            await self._execute(self._limit_sql("delete"), (kind, key))
        else:
            params = (kind, key, lim.max_running, lim.max_depth, self.clock.now())
            await self._execute(self._limit_sql("put"), params)
        self._limits_cache = None

    async def queue_limits(self) -> list[QueueLimit]:
        rows = await self._fetch(self._limit_sql("list"), ())
        return [QueueLimit(r[0], r[1], r[2], r[3]) for r in rows]

    async def _cached_limits(self) -> list[QueueLimit]:
        cached = self._limits_cache
        if cached is None or time.monotonic() - cached[0] > LIMITS_TTL:
            cached = self._limits_cache = (time.monotonic(), await self.queue_limits())
        return cached[1]

    async def _limited(self) -> bool:
        """Whether claims must count running runs (some ``max_running`` limit exists)."""
        return any(lim.max_running is not None for lim in await self._cached_limits())

    async def _claim_limited(
        self,
        now: float,
        dead: Sequence[str],
        workflows: Sequence[str] | None,
        queues: Sequence[str] | None,
        exclude: Sequence[str],
        limit: int,
        owner: str,
        expires: float,
    ) -> list[Any]:
        """The claim under limits, serialised with other claimers, in one round trip: on
        PostgreSQL the ``claim_limited`` function (``store.pg_claim``); SQLite runs one writer
        at a time, so the statement alone is atomic."""
        d, ahead = self._sql.dialect, limit * LOOKAHEAD
        if d.name == "postgres":
            from tether.store import pg_claim

            text = self._sql.memoized(("limited-claim-fn",), lambda: pg_claim.call(d.prefix))
            args = pg_claim.params(
                now, dead, workflows, queues, exclude, ahead, limit, owner, expires
            )
            return await self._fetch(text, args)
        shape = (
            None if workflows is None else len(workflows),
            len(exclude),
            len(dead),
            None if queues is None else len(queues),
        )
        text = self._sql.memoized(("limited-claim", *shape), lambda: limited_claim(d, *shape))
        served = (now, *(workflows or ()), *(queues or ()), *exclude, ahead)
        params = (
            *ACTIVE_VALUES, now, *dead,  # the running count
            now, *dead, *served, *served, ahead,  # the candidates (owned, unowned, merged)
            limit, owner, expires,
        )  # fmt: skip
        return await self._fetch(text, params)

    async def queue_stats(self) -> list[QueueStats]:
        now = self.clock.now()
        rows = await self._fetch(
            self._limit_sql("stats"), (now, now, now, now, now, *ACTIVE_VALUES)
        )
        out = []
        for queue, running, waiting, oldest, total in rows:
            running, waiting = int(running or 0), int(waiting or 0)
            delayed = int(total) - running - waiting
            out.append(QueueStats(queue, waiting, delayed, running, oldest))
        return out

    async def check_queue_room(self, queue: str) -> None:
        for lim in await self._cached_limits():
            if lim.kind == "queue" and lim.key == queue and lim.max_depth is not None:
                row = await self._fetch(self._limit_sql("depth"), (*ACTIVE_VALUES, queue))
                depth = int(row[0][0])
                if depth >= lim.max_depth:
                    raise QueueFullError(queue, depth, lim.max_depth)
