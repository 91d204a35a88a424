"""How many runs a store holds per status (of one tenant): one aggregate query, for metrics."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from tether.store.types import RunRecord


@runtime_checkable
class RunCounts(Protocol):
    async def count_runs(self, *, tenant: str | None = None) -> dict[str, int]:
        """``{status: runs}`` of every status that has runs (of ``tenant``; None: all)."""
        ...


class MemoryRunCounts:
    _runs: dict[str, RunRecord]

    async def count_runs(self, *, tenant: str | None = None) -> dict[str, int]:
        out: dict[str, int] = {}
        for run in self._runs.values():
            if tenant is None or run.tenant == tenant:
                out[run.status.value] = out.get(run.status.value, 0) + 1
        return out
