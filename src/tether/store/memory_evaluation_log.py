"""``EvaluationLogStore`` in dicts (mixed into ``MemoryStore``): the shadow log and run flags,
with the SQL backends' ordering and sums."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from tether.core.errors import InvalidInputError, RunNotFoundError
from tether.store.evaluation_log import KPI_BATCH, FlagRow, ShadowRow, ShadowTotals, p95_rank
from tether.store.kpi_totals import TOOL_CALL, RunTotals, python_totals
from tether.store.paging import whole
from tether.store.types import Event, Transition
from tether.store.usage import ModelCallTotals


class MemoryEvaluationLog:
    if TYPE_CHECKING:  # provided by MemoryStore

        async def list_transitions(self, run_id: str) -> list[Transition]: ...

        async def model_usage(self, run_id: str) -> list[ModelCallTotals]: ...

        async def list_events(
            self, run_id: str, *, after_seq: int = 0, limit: int = 1000
        ) -> list[Event]: ...

    _shadow_rows: dict[tuple[str, str], ShadowRow]
    _flag_rows: dict[tuple[str, str, str], FlagRow]

    def _shadow_map(self) -> dict[tuple[str, str], ShadowRow]:
        try:
            return self._shadow_rows
        except AttributeError:
            self._shadow_rows = {}
            return self._shadow_rows

    def _eval_flag_map(self) -> dict[tuple[str, str, str], FlagRow]:
        try:
            return self._flag_rows
        except AttributeError:
            self._flag_rows = {}
            return self._flag_rows

    async def put_shadow(self, row: ShadowRow) -> bool:
        rows = self._shadow_map()
        key = (row.run_id, row.call_key)
        if key in rows:
            return False
        rows[key] = replace(row, live=dict(row.live), shadow=_copy(row.shadow))
        return True

    async def list_shadow(
        self,
        workflow: str | None = None,
        *,
        run_id: str | None = None,
        since: float | None = None,
        after: tuple[float, str, str] | None = None,
        limit: int = 100,
    ) -> list[ShadowRow]:
        limit = whole("limit", limit)
        if limit <= 0:
            return []
        rows = sorted(self._shadow_map().values(), key=lambda r: (r.ts, r.run_id, r.call_key))
        out = [
            r
            for r in rows
            if (workflow is None or r.workflow == workflow)
            and (run_id is None or r.run_id == run_id)
            and (since is None or r.ts >= since)
            and (after is None or (r.ts, r.run_id, r.call_key) > after)
        ]
        return out[:limit]

    async def shadow_totals(
        self, workflow: str, *, threshold: float, since: float | None = None
    ) -> ShadowTotals:
        rows = [
            r
            for r in self._shadow_map().values()
            if r.workflow == workflow and (since is None or r.ts >= since)
        ]
        dists = sorted(r.distance for r in rows if r.distance is not None)
        return ShadowTotals(
            samples=len(rows),
            failed=sum(r.error is not None for r in rows),
            compared=len(dists),
            distance_sum=sum(dists),
            max_distance=max(dists, default=0.0),
            above=sum(d > threshold for d in dists),
            tool_mismatches=sum(r.tool_agrees is False for r in rows),
            p95_distance=dists[p95_rank(len(dists)) - 1] if dists else None,
        )

    async def put_flag(self, row: FlagRow) -> None:
        self._eval_flag_map()[(row.run_id, row.kind, row.key)] = replace(row, data=dict(row.data))

    async def list_flags(
        self,
        *,
        run_id: str | None = None,
        workflow: str | None = None,
        kind: str | None = None,
        since: float | None = None,
        limit: int = 100,
    ) -> list[FlagRow]:
        limit = whole("limit", limit)
        if limit <= 0:
            return []
        rows = sorted(self._eval_flag_map().values(), key=lambda r: (r.ts, r.run_id, r.kind, r.key))
        out = [
            r
            for r in rows
            if (run_id is None or r.run_id == run_id)
            and (workflow is None or r.workflow == workflow)
            and (kind is None or r.kind == kind)
            and (since is None or r.ts >= since)
        ]
        return out[:limit]

    async def kpi_totals(self, run_ids: Sequence[str]) -> dict[str, RunTotals]:
        ids = list(dict.fromkeys(run_ids))
        if len(ids) > KPI_BATCH:
            raise InvalidInputError(f"kpi_totals takes at most {KPI_BATCH} runs, got {len(ids)}")
        out: dict[str, RunTotals] = {}
        for run_id in ids:
            try:
                tools = [e.data for e in await self._all_events(run_id) if e.type == TOOL_CALL]
                t = python_totals(
                    run_id,
                    await self.list_transitions(run_id),
                    await self.model_usage(run_id),
                    tools,
                )
            except RunNotFoundError:
                continue
            if t.first_ts is not None or t.model_calls or t.tool_events:
                out[run_id] = t
        return out

    async def _all_events(self, run_id: str) -> list[Event]:
        out: list[Event] = []
        while True:
            page = await self.list_events(run_id, after_seq=out[-1].seq if out else 0)
            out += page
            if len(page) < 1000:
                return out


def _copy(value: Mapping[str, Any] | None) -> dict[str, Any] | None:
    return None if value is None else dict(value)
