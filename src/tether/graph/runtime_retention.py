"""The Runtime's retention: prune a run's checkpoints, purge finished runs, and the sweep that
purges them by itself (``Retention.finished_ttl``).

``RetentionSweeps`` is mixed into ``tether.graph.runtime.Runtime``; the policy itself is
``tether.graph.retention.Retention``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING, Any

from tether.core.clock import Clock
from tether.core.errors import InvalidInputError
from tether.core.finite import check_number
from tether.core.lifecycle import FINISHED, RunStatus
from tether.graph.retention import Retention
from tether.store.protocol import RunStore
from tether.store.timers import TimerStore
from tether.store.transient import OutageLog, unavailable
from tether.store.types import RunRecord

log = logging.getLogger("tether.runtime")
_PAGE = 200
"""Child runs read per page when a finished run's children are pruned."""


class RetentionSweeps:
    """How much history a Runtime keeps: ``prune``, ``purge`` and the background sweep."""

    store: RunStore
    clock: Clock
    retention: Retention
    _sweep_outage: OutageLog

    if TYPE_CHECKING:

        async def _ensure_open(self) -> None: ...

        async def get_state(
            self, run_id: str, step: int | None = None, *, run: RunRecord | None = None
        ) -> dict[str, Any]: ...

    async def _sweep(self) -> None:
        ttl = self.retention.finished_ttl
        assert ttl is not None
        while True:
            started = time.monotonic()
            try:
                await self.purge(ttl)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if not unavailable(exc):
                    log.exception("retention sweep failed")
                else:  # one line per outage (shared with the recovery sweep)
                    self._sweep_outage.down(exc)
            else:
                self._sweep_outage.up(started)
            await asyncio.sleep(self.retention.sweep_interval)

    async def prune(self, run_id: str, keep_last: int) -> int:
        """Keep only the last ``keep_last`` checkpoints of a run (the oldest kept one becomes a
        snapshot, so every kept step still reads exactly)."""
        if isinstance(keep_last, bool) or not isinstance(keep_last, int) or keep_last < 1:
            raise InvalidInputError(f"keep_last must be an int >= 1, got {keep_last!r}")
        await self._ensure_open()
        run = await self.store.get_run(run_id)
        cps = await self.store.list_checkpoints(run_id)
        if len(cps) <= keep_last:
            return 0
        base = cps[-keep_last]
        base.snapshot = await self.get_state(run_id, base.step, run=run)
        return await self.store.prune_checkpoints(run_id, keep_last, base)

    async def _prune_finished(self, run: RunRecord, keep_last: int) -> None:
        """``Retention.keep_last`` for ``run``, which just finished. A subgraph's child run is
        left whole: the node following it reads the child's writes from its checkpoints (again
        after a crash of the parent), so pruning it as it completes lost every write older than
        the last ``keep_last`` steps. Its parent prunes it (and its own children) once the
        parent is COMPLETED or CANCELLED; a FAILED parent keeps them, a retry may need them."""
        if run.metadata.get("subgraph_of"):
            return
        await self.prune(run.run_id, keep_last)
        if run.status is not RunStatus.FAILED:
            await self._prune_children(run.run_id, keep_last)

    async def _prune_children(self, run_id: str, keep_last: int) -> None:
        cursor: str | None = None
        while True:
            page = await self.store.list_runs(parent_run_id=run_id, limit=_PAGE, before=cursor)
            for child in page:
                if child.metadata.get("subgraph_of") == run_id and child.status in FINISHED:
                    await self.prune(child.run_id, keep_last)
                    await self._prune_children(child.run_id, keep_last)
            if len(page) < _PAGE:
                return
            cursor = page[-1].run_id

    async def purge(self, older_than: float, *, dry_run: bool = False) -> int:
        """Delete finished runs last updated more than ``older_than`` seconds ago (and the
        timers that fired that long ago). Returns the runs deleted.

        A run started by another run (subgraph, fork-join branch, fork) goes only with its whole
        family, once every run of it finished that long ago: a parked parent re-runs the node
        that started its children and would start a purged child again, repeating its effects.
        Deletes a page of families per transaction, so other writers go on meanwhile.
        ``dry_run``: count what would go, delete nothing."""
        check_number("older_than", older_than, unit=" of seconds", error=InvalidInputError)
        await self._ensure_open()
        cutoff = self.clock.now() - older_than
        if isinstance(self.store, TimerStore) and not dry_run:
            await self.store.purge_timers(cutoff)
        return await self.store.purge_runs(cutoff, dry_run=dry_run)
