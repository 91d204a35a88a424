"""Timers and cron schedules (``tether.store.timers``) of the SQL backends: schema v9 (v19: the
queue, priority and tenant of a schedule's runs; v20: its time zone) and its statements,
written once for SQLite and PostgreSQL (mixed into ``SqlStore``).

Claiming due timers is one ``WITH c AS MATERIALIZED (SELECT ... FOR UPDATE SKIP LOCKED)
UPDATE ... RETURNING``: on PostgreSQL concurrent claimers pass over each other's rows, and the outer
``WHERE`` re-checks the claim on the row it locked; SQLite runs one writer at a time.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from tether.core.clock import Clock
from tether.core.serde import dumps, loads
from tether.store.sql_base import Dialect, Statements
from tether.store.timers import Schedule, Timer, schedule_taken

TIMER_COLUMNS = (
    "timer_id",
    "run_id",
    "kind",
    "fire_at",
    "payload",
    "created_at",
    "claimed_by",
    "claim_expires_at",
    "fired_at",
)
SCHEDULE_COLUMNS = (
    "name",
    "cron",
    "workflow",
    "input",
    "next_fire_at",
    "enabled",
    "last_slot",
    "created_at",
    "updated_at",
    "queue",
    "priority",
    "tenant",
    "timezone",
)


def migration(d: Dialect) -> list[str]:
    """Schema v9: ``timers`` (durable timers: interrupt timeouts, later approval deadlines)
    and ``schedules`` (cron)."""
    p, b, r = d.prefix, d.blob, d.real
    return [
        f"""CREATE TABLE {p}timers (
            timer_id TEXT PRIMARY KEY,
            run_id TEXT,
            kind TEXT NOT NULL,
            fire_at {r} NOT NULL,
            payload {b} NOT NULL,
            created_at {r} NOT NULL,
            claimed_by TEXT,
            claim_expires_at {r} NOT NULL DEFAULT 0,
            fired_at {r}
        )""",
        f"CREATE INDEX tether_timers_due ON {p}timers (fire_at) WHERE fired_at IS NULL",
        f"CREATE INDEX tether_timers_run ON {p}timers (run_id, kind)",
        f"""CREATE TABLE {p}schedules (
            name TEXT PRIMARY KEY,
            cron TEXT NOT NULL,
            workflow TEXT NOT NULL,
            input {b},
            next_fire_at {r} NOT NULL,
            enabled INTEGER NOT NULL DEFAULT 1,
            last_slot {r},
            created_at {r} NOT NULL,
            updated_at {r} NOT NULL
        )""",
    ]


def placement_migration(d: Dialect) -> list[str]:
    """Schema v19: a schedule's ``queue``, ``priority`` and ``tenant``, given to every run it
    starts (schedules written before start theirs on the default queue, with no tenant)."""
    p = d.prefix
    return [
        f"ALTER TABLE {p}schedules ADD COLUMN queue TEXT NOT NULL DEFAULT 'default'",
        f"ALTER TABLE {p}schedules ADD COLUMN priority INTEGER NOT NULL DEFAULT 0",
        f"ALTER TABLE {p}schedules ADD COLUMN tenant TEXT",
    ]


def timezone_migration(d: Dialect) -> list[str]:
    """Schema v20: a schedule's ``timezone``, the IANA zone its expression's wall clock is
    read in (schedules written before read theirs in UTC, as they always did)."""
    return [f"ALTER TABLE {d.prefix}schedules ADD COLUMN timezone TEXT NOT NULL DEFAULT 'UTC'"]


def _in(n: int) -> str:
    return "(" + ", ".join(["?"] * n) + ")"


def _statements(d: Dialect, n_kinds: int, n_workflows: int = -1) -> dict[str, str]:
    p, r = d.prefix, d.real
    # n_workflows >= 0: leave out the timers of runs of other workflows (not those of no run,
    # or of a run gone: their handler finds that out)
    theirs = (
        ""
        if n_workflows < 0
        else f"AND NOT EXISTS (SELECT 1 FROM {p}runs r WHERE r.run_id = {p}timers.run_id"
        + (f" AND r.workflow NOT IN {_in(n_workflows)}) " if n_workflows else ") ")
    )
    tcols, scols = ", ".join(TIMER_COLUMNS), ", ".join(SCHEDULE_COLUMNS)
    due = f"fired_at IS NULL AND fire_at <= CAST(? AS {r}) AND claim_expires_at <= CAST(? AS {r})"
    # the same timetable: the schedule keeps its next slot (every worker re-scheduling at start)
    same = "s.cron = excluded.cron AND s.timezone = excluded.timezone"
    return {
        "add": (
            f"INSERT INTO {p}timers ({tcols}) VALUES (?, ?, ?, CAST(? AS {r}), ?, "
            f"CAST(? AS {r}), NULL, 0, NULL) ON CONFLICT (timer_id) DO NOTHING RETURNING timer_id"
        ),
        # materialized: PostgreSQL may otherwise run a LIMIT sub-select more than once
        "claim": (
            f"WITH c AS MATERIALIZED (SELECT timer_id FROM {p}timers WHERE {due} "
            f"AND kind IN {_in(n_kinds)} {theirs}ORDER BY fire_at, timer_id "
            f"LIMIT CAST(? AS INTEGER){d.skip_locked}) "
            f"UPDATE {p}timers SET claimed_by = ?, claim_expires_at = CAST(? AS {r}) "
            f"WHERE timer_id IN (SELECT timer_id FROM c) AND {due} RETURNING {tcols}"
        ),
        "finish": (
            f"UPDATE {p}timers SET fired_at = CAST(? AS {r}) "
            "WHERE timer_id = ? AND claimed_by = ? AND fired_at IS NULL"
        ),
        "release": (
            f"UPDATE {p}timers SET claimed_by = NULL, claim_expires_at = 0 "
            "WHERE timer_id = ? AND claimed_by = ? AND fired_at IS NULL"
        ),
        "purge": f"DELETE FROM {p}timers WHERE fired_at < CAST(? AS {r})",
        "cancel_all": f"DELETE FROM {p}timers WHERE run_id = ? AND fired_at IS NULL",
        "cancel_kind": f"DELETE FROM {p}timers WHERE run_id = ? AND kind = ? AND fired_at IS NULL",
        "list_all": f"SELECT {tcols} FROM {p}timers ORDER BY fire_at, timer_id",
        "list_pending": (
            f"SELECT {tcols} FROM {p}timers WHERE fired_at IS NULL ORDER BY fire_at, timer_id"
        ),
        "list_run": f"SELECT {tcols} FROM {p}timers WHERE run_id = ? ORDER BY fire_at, timer_id",
        "list_run_pending": (
            f"SELECT {tcols} FROM {p}timers WHERE run_id = ? AND fired_at IS NULL "
            "ORDER BY fire_at, timer_id"
        ),
        "put_schedule": (
            f"INSERT INTO {p}schedules AS s ({scols}) VALUES (?, ?, ?, ?, CAST(? AS {r}), "
            f"CAST(? AS INTEGER), NULL, CAST(? AS {r}), CAST(? AS {r}), ?, "
            "CAST(? AS INTEGER), ?, ?) "
            "ON CONFLICT (name) DO UPDATE SET workflow = excluded.workflow, "
            "input = excluded.input, enabled = excluded.enabled, "
            "queue = excluded.queue, priority = excluded.priority, tenant = excluded.tenant, "
            "updated_at = excluded.updated_at, "
            # a schedule re-enabled starts after now: no slot missed while off fires
            f"next_fire_at = CASE WHEN {same} AND s.enabled = 1 THEN s.next_fire_at "
            "ELSE excluded.next_fire_at END, "
            f"last_slot = CASE WHEN {same} THEN s.last_slot ELSE NULL END, "
            "cron = excluded.cron, timezone = excluded.timezone "
            # a name is one workflow's: another's upsert writes nothing (and returns no row),
            # so two processes racing for one name cannot overwrite each other
            f"WHERE s.workflow = excluded.workflow RETURNING {scols}"
        ),
        "get_schedule": f"SELECT {scols} FROM {p}schedules WHERE name = ?",
        "list_schedules": f"SELECT {scols} FROM {p}schedules ORDER BY name",
        "due_schedules": (
            f"SELECT {scols} FROM {p}schedules WHERE enabled = 1 "
            f"AND next_fire_at <= CAST(? AS {r}) ORDER BY next_fire_at, name"
        ),
        "advance": (
            f"UPDATE {p}schedules SET next_fire_at = CAST(? AS {r}), last_slot = CAST(? AS {r}), "
            f"updated_at = CAST(? AS {r}) WHERE name = ? AND next_fire_at = CAST(? AS {r})"
        ),
        "delete_schedule": f"DELETE FROM {p}schedules WHERE name = ?",
    }


def _timer(row: Sequence[Any]) -> Timer:
    tid, run_id, kind, fire_at, payload, created, by, until, fired = row
    return Timer(
        tid,
        run_id,
        kind,
        float(fire_at),
        loads(payload),
        float(created),
        by,
        float(until),
        None if fired is None else float(fired),
    )


def _schedule(row: Sequence[Any]) -> Schedule:
    name, cron, wf, inp, nxt, enabled, last, created, updated, queue, priority, tenant, tz = row
    return Schedule(
        name,
        cron,
        wf,
        None if inp is None else loads(inp),
        float(nxt),
        bool(enabled),
        None if last is None else float(last),
        float(created),
        float(updated),
        str(queue),
        int(priority),
        tenant,
        str(tz),
    )


class SqlTimers:
    """``TimerStore`` over a ``SqlStore``'s single-statement access."""

    clock: Clock
    _sql: Statements

    if TYPE_CHECKING:  # provided by SqlStore

        async def _fetch(self, sql: str, params: Sequence[Any]) -> list[Any]: ...

        async def _execute(self, sql: str, params: Sequence[Any]) -> int: ...

    def _timer_sql(self, name: str, n_kinds: int = 0, n_workflows: int = -1) -> str:
        d = self._sql.dialect
        key = ("timers", name, *((n_kinds, n_workflows) if name == "claim" else (0, -1)))
        return self._sql.memoized(key, lambda: _statements(d, n_kinds, n_workflows)[name])

    async def add_timer(self, timer: Timer) -> bool:
        t = timer
        params = (
            t.timer_id,
            t.run_id,
            t.kind,
            t.fire_at,
            dumps(t.payload),
            t.created_at or self.clock.now(),
        )
        return bool(await self._fetch(self._timer_sql("add"), params))

    async def claim_due_timers(
        self,
        owner: str,
        ttl: float,
        *,
        kinds: Sequence[str],
        limit: int = 16,
        workflows: Sequence[str] | None = None,
    ) -> list[Timer]:
        if limit <= 0 or not kinds:
            return []
        now = self.clock.now()
        known = () if workflows is None else tuple(workflows)
        sql = self._timer_sql("claim", len(kinds), -1 if workflows is None else len(known))
        params = (now, now, *kinds, *known, limit, owner, now + ttl, now, now)
        rows = await self._fetch(sql, params)
        return sorted((_timer(r) for r in rows), key=lambda t: (t.fire_at, t.timer_id))

    async def finish_timer(self, timer_id: str, owner: str) -> bool:
        params = (self.clock.now(), timer_id, owner)
        return await self._execute(self._timer_sql("finish"), params) > 0

    async def release_timers(self, timer_ids: Sequence[str], owner: str) -> int:
        sql = self._timer_sql("release")
        return sum([await self._execute(sql, (timer_id, owner)) for timer_id in timer_ids])

    async def cancel_timers(self, run_id: str, kind: str | None = None) -> int:
        if kind is None:
            return await self._execute(self._timer_sql("cancel_all"), (run_id,))
        return await self._execute(self._timer_sql("cancel_kind"), (run_id, kind))

    async def list_timers(self, run_id: str | None = None, *, pending: bool = True) -> list[Timer]:
        if run_id is None:
            rows = await self._fetch(self._timer_sql("list_pending" if pending else "list_all"), ())
        else:
            name = "list_run_pending" if pending else "list_run"
            rows = await self._fetch(self._timer_sql(name), (run_id,))
        return [_timer(r) for r in rows]

    async def purge_timers(self, fired_before: float) -> int:
        return await self._execute(self._timer_sql("purge"), (fired_before,))

    async def put_schedule(self, schedule: Schedule) -> Schedule:
        s, now = schedule, self.clock.now()
        inp = None if s.input is None else dumps(s.input)
        params = (s.name, s.cron, s.workflow, inp, s.next_fire_at, int(s.enabled), now, now,
                  s.queue, s.priority, s.tenant, s.timezone)  # fmt: skip
        rows = await self._fetch(self._timer_sql("put_schedule"), params)
        if not rows:
            held = await self.get_schedule(s.name)
            raise schedule_taken(s.name, held.workflow if held else "another workflow", s.workflow)
        return _schedule(rows[0])

    async def get_schedule(self, name: str) -> Schedule | None:
        rows = await self._fetch(self._timer_sql("get_schedule"), (name,))
        return _schedule(rows[0]) if rows else None

    async def list_schedules(self, *, due_at: float | None = None) -> list[Schedule]:
        if due_at is None:
            rows = await self._fetch(self._timer_sql("list_schedules"), ())
        else:
            rows = await self._fetch(self._timer_sql("due_schedules"), (due_at,))
        return [_schedule(r) for r in rows]

    async def advance_schedule(
        self, name: str, expected_next: float, next_fire_at: float, slot: float
    ) -> bool:
        params = (next_fire_at, slot, self.clock.now(), name, expected_next)
        return await self._execute(self._timer_sql("advance"), params) > 0

    async def delete_schedule(self, name: str) -> bool:
        return await self._execute(self._timer_sql("delete_schedule"), (name,)) > 0
