"""``TimerStore`` in dicts (mixed into ``MemoryStore``): timers and cron schedules."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

from tether.core import serde
from tether.core.clock import Clock
from tether.store.timers import Schedule, Timer, schedule_taken


def _copy(value: Any) -> Any:
    return None if value is None else serde.loads(serde.dumps(value))


class MemoryTimers:
    clock: Clock
    _timer_rows: dict[str, Timer]
    _schedule_rows: dict[str, Schedule]

    def _timers(self) -> dict[str, Timer]:
        try:
            return self._timer_rows
        except AttributeError:
            self._timer_rows = {}
            return self._timer_rows

    def _schedules(self) -> dict[str, Schedule]:
        try:
            return self._schedule_rows
        except AttributeError:
            self._schedule_rows = {}
            return self._schedule_rows

    @staticmethod
    def _out(t: Timer) -> Timer:
        return dataclasses.replace(t, payload=_copy(t.payload))

    # -- timers -----------------------------------------------------------------------------
    async def add_timer(self, timer: Timer) -> bool:
        rows = self._timers()
        if timer.timer_id in rows:
            return False
        rows[timer.timer_id] = dataclasses.replace(
            timer,
            payload=_copy(timer.payload),
            created_at=timer.created_at or self.clock.now(),
            claimed_by=None,
            claim_expires_at=0.0,
            fired_at=None,
        )
        return True

    async def claim_due_timers(
        self,
        owner: str,
        ttl: float,
        *,
        kinds: Sequence[str],
        limit: int = 16,
        workflows: Sequence[str] | None = None,
    ) -> list[Timer]:
        now = self.clock.now()
        runs: dict[str, Any] = getattr(self, "_runs", {})
        due = sorted(
            (
                t
                for t in self._timers().values()
                if t.fired_at is None
                and t.fire_at <= now
                and t.claim_expires_at <= now
                and t.kind in kinds
                and (
                    workflows is None
                    or t.run_id not in runs
                    or runs[t.run_id].workflow in workflows
                )
            ),
            key=lambda t: (t.fire_at, t.timer_id),
        )[: max(limit, 0)]
        for t in due:
            t.claimed_by, t.claim_expires_at = owner, now + ttl
        return [self._out(t) for t in due]

    async def finish_timer(self, timer_id: str, owner: str) -> bool:
        t = self._timers().get(timer_id)
        if t is None or t.claimed_by != owner or t.fired_at is not None:
            return False
        t.fired_at = self.clock.now()
        return True

    async def release_timers(self, timer_ids: Sequence[str], owner: str) -> int:
        released = 0
        for timer_id in timer_ids:
            t = self._timers().get(timer_id)
            if t is not None and t.claimed_by == owner and t.fired_at is None:
                t.claimed_by, t.claim_expires_at = None, 0.0
                released += 1
        return released

    async def cancel_timers(self, run_id: str, kind: str | None = None) -> int:
        rows = self._timers()
        gone = [
            t.timer_id
            for t in rows.values()
            if t.run_id == run_id and t.fired_at is None and (kind is None or t.kind == kind)
        ]
        for tid in gone:
            del rows[tid]
        return len(gone)

    async def list_timers(self, run_id: str | None = None, *, pending: bool = True) -> list[Timer]:
        return [
            self._out(t)
            for t in sorted(self._timers().values(), key=lambda t: (t.fire_at, t.timer_id))
            if (run_id is None or t.run_id == run_id) and (not pending or t.fired_at is None)
        ]

    async def purge_timers(self, fired_before: float) -> int:
        rows = self._timers()
        gone = [k for k, t in rows.items() if t.fired_at is not None and t.fired_at < fired_before]
        for k in gone:
            del rows[k]
        return len(gone)

    # -- schedules --------------------------------------------------------------------------
    async def put_schedule(self, schedule: Schedule) -> Schedule:
        rows, now = self._schedules(), self.clock.now()
        old = rows.get(schedule.name)
        if old is not None and old.workflow != schedule.workflow:
            raise schedule_taken(schedule.name, old.workflow, schedule.workflow)
        row = dataclasses.replace(
            schedule, input=_copy(schedule.input), last_slot=None, created_at=now, updated_at=now
        )
        if old is not None:
            row.created_at = old.created_at
            if (old.cron, old.timezone) == (schedule.cron, schedule.timezone):
                row.last_slot = old.last_slot
                if old.enabled:  # a schedule re-enabled starts after now
                    row.next_fire_at = old.next_fire_at
        rows[schedule.name] = row
        return dataclasses.replace(row, input=_copy(row.input))

    async def get_schedule(self, name: str) -> Schedule | None:
        row = self._schedules().get(name)
        return None if row is None else dataclasses.replace(row, input=_copy(row.input))

    async def list_schedules(self, *, due_at: float | None = None) -> list[Schedule]:
        rows = sorted(self._schedules().values(), key=lambda s: s.name)
        if due_at is not None:
            rows = sorted(
                (s for s in rows if s.enabled and s.next_fire_at <= due_at),
                key=lambda s: (s.next_fire_at, s.name),
            )
        return [dataclasses.replace(s, input=_copy(s.input)) for s in rows]

    async def advance_schedule(
        self, name: str, expected_next: float, next_fire_at: float, slot: float
    ) -> bool:
        row = self._schedules().get(name)
        if row is None or row.next_fire_at != expected_next:
            return False
        row.next_fire_at, row.last_slot, row.updated_at = next_fire_at, slot, self.clock.now()
        return True

    async def delete_schedule(self, name: str) -> bool:
        return self._schedules().pop(name, None) is not None
