"""Which runs of a store finished since a drift watch last looked: ``RunFeed``.

The store keeps no list of completions, so a feed follows runs by creation: each pass reads the
runs created since the newest it has seen (``list_runs``, newest first, paged with ``before=``)
down to ``margin`` seconds under it, since a run committed late, or stamped by a host whose
clock lags, may sort a little older than one seen already. A run it meets that has not finished
is kept as *pending* and read again (``get_run``, up to ``PENDING_BATCH`` a pass, in turn) until
it has. A run that stops in another state (FAILED, CANCELLED when only COMPLETED is watched) is
let go: one requeued after it failed is not followed (``check_drift`` it by hand).

Where it starts is a *mark* kept in the store's control flags (``drift-watch/<workflow>``): every
run of the feed created before the mark has been dealt with. A restarted feed reads from the mark
instead of the whole history; a feed without one starts with the runs created from now on plus
every run of the workflow that has not finished yet, whatever its age (``since`` moves that
start; ``since=0`` takes the whole history, even past a mark). The mark only saves reading:
whether a run was checked is its ``drift_checked`` event, so a run is never checked twice.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Collection

from tether.core.errors import RunNotFoundError
from tether.core.lifecycle import FINISHED, RunStatus
from tether.store.control import ControlStore
from tether.store.protocol import RunStore
from tether.store.types import RunRecord

PAGE = 200
"""Runs read per ``list_runs`` call."""
PENDING_BATCH = 500
"""Pending runs read again per pass, in turn (a long backlog is gone through over passes)."""
MARK_PREFIX = "drift-watch/"


class RunFeed:
    """The runs of one workflow (None: every workflow) that reach one of ``statuses``."""

    def __init__(
        self,
        store: RunStore,
        workflow: str | None,
        statuses: Collection[RunStatus],
        *,
        since: float | None,
        margin: float,
    ) -> None:
        self.store = store
        self.workflow = workflow
        self.statuses = frozenset(statuses)
        self.since = since
        self.margin = margin
        self.pending: dict[str, float] = {}
        """Runs seen unfinished (or not yet checked): run id -> created_at."""
        self._seen: dict[str, float] = {}
        self._high: float | None = None
        self._mark: float | None = None

    @property
    def key(self) -> str:
        return MARK_PREFIX + (self.workflow or "*")

    async def start(self, now: float) -> None:
        """Read the mark; without one, take every unfinished run as pending. An explicit
        ``since`` under the mark reaches back to it."""
        flags = await self.store.get_flags(self.key) if isinstance(self.store, ControlStore) else {}
        mark = flags.get(self.key)
        self._mark = float(mark) if isinstance(mark, int | float) else None
        if self.since is not None:
            self._high = self.since if self._mark is None else min(self.since, self._mark)
        else:
            self._high = now if self._mark is None else self._mark
        if self._mark is None:
            unfinished = [s for s in RunStatus if s not in FINISHED and s not in self.statuses]
            async for run in self._pages(unfinished, floor=None):
                self.pending[run.run_id] = run.created_at

    async def finished(self) -> list[RunRecord]:
        """The runs that reached one of the statuses since the last pass (pending ones too:
        their run id stays pending until ``done``)."""
        assert self._high is not None, "start() first"
        found: dict[str, RunRecord] = {}
        floor = self._high - self.margin
        async for run in self._pages(None, floor=floor):
            self._high = max(self._high, run.created_at)
            if run.run_id in self._seen:
                continue
            self._seen[run.run_id] = run.created_at
            self.pending[run.run_id] = run.created_at
            found[run.run_id] = run
        self._seen = {k: t for k, t in self._seen.items() if t >= self._high - self.margin}
        for run_id in [r for r in self.pending if r not in found][:PENDING_BATCH]:
            created = self.pending.pop(run_id)  # read again: back at the end of the line
            try:
                found[run_id] = await self.store.get_run(run_id)
            except RunNotFoundError:
                continue
            self.pending[run_id] = created
        out = []
        for run in found.values():
            if run.status in self.statuses:
                out.append(run)
            elif run.status in FINISHED:  # it stopped elsewhere: not one of the watched ends
                self.pending.pop(run.run_id, None)
        return out

    def done(self, run_id: str) -> None:
        self.pending.pop(run_id, None)

    async def save(self) -> None:
        """Move the mark up to the oldest run not dealt with yet (or the margin under the
        newest seen), when it moved."""
        if self._high is None or not isinstance(self.store, ControlStore):
            return
        mark = min([self._high - self.margin, *self.pending.values()])
        if self._mark is None or mark > self._mark:
            await self.store.set_flag(self.key, mark)
            self._mark = mark

    async def _pages(
        self, status: list[RunStatus] | None, *, floor: float | None
    ) -> AsyncIterator[RunRecord]:
        """Runs newest first, down to ``floor`` (created_at)."""
        before = None
        while True:
            try:
                page = await self.store.list_runs(
                    status=status, workflow=self.workflow, limit=PAGE, before=before
                )
            except RunNotFoundError:  # the cursor run was deleted meanwhile: next pass
                return
            for run in page:
                if floor is not None and run.created_at < floor:
                    return
                yield run
            if len(page) < PAGE:
                return
            before = page[-1].run_id
