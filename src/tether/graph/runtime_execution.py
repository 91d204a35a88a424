"""The Runtime's execution of runs: each run it holds is a task here that drives the run's
loop (``tether.graph.loop``) under its lease, from its last checkpoint, until the run settles,
hands back, or loses its lease.

``RunExecution`` is mixed into ``tether.graph.runtime.Runtime``.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import time
import weakref
from typing import TYPE_CHECKING, Any, cast

from tether.core import serde
from tether.core.errors import LeaseLostError
from tether.core.lifecycle import FINISHED, PARKED, RunStatus
from tether.graph.builder import Workflow
from tether.graph.history import SnapshotPolicy, SnapshotTracker, replay
from tether.graph.loop import RunDrained, RunLoop
from tether.graph.results import RunResult
from tether.graph.retention import Retention
from tether.graph.version import check_run_version
from tether.graph.wake import WakeSignal
from tether.store.protocol import RunStore
from tether.store.transient import OutageLog, first_line, spares_run
from tether.store.types import Checkpoint, Commit, RunRecord

if TYPE_CHECKING:
    from tether.graph.runtime import Runtime

log = logging.getLogger("tether.runtime")
_SETTLED = FINISHED | PARKED
_heap_frozen = False


def _freeze_heap_once() -> None:
    """Move what the process holds when it first executes a run (its modules, classes and
    functions, the runtime and store) out of the garbage collector's reach, once per process:
    ``gc.freeze``. Many runs stepping at once allocate fast, and every full collection would
    otherwise walk that whole start-up heap again (tens of milliseconds each time); what is
    allocated later is collected as before. A cycle that was already garbage then is kept."""
    global _heap_frozen
    if not _heap_frozen:
        _heap_frozen = True
        gc.freeze()


class RunExecution:
    """Run tasks: spawn one per run held here, drive it, settle it; take over a claimed run."""

    store: RunStore
    recover: bool
    snapshots: SnapshotPolicy
    retention: Retention
    _tasks: dict[str, asyncio.Task[RunResult | None]]
    _leases: dict[str, int]
    _lost: weakref.WeakKeyDictionary[asyncio.Task[Any], LeaseLostError]
    _wake: WakeSignal
    _run_outage: OutageLog

    if TYPE_CHECKING:

        def workflow_for(self, run: RunRecord) -> Workflow: ...

        async def _prune_finished(self, run: RunRecord, keep_last: int) -> None: ...

        def _take_back_when_due(self, run_id: str, until: float) -> None: ...

        async def _get_run_or_none(self, run_id: str) -> RunRecord | None: ...

        def _lease_lost(self, run_id: str, token: int, rec: RunRecord | None) -> LeaseLostError: ...

    def _spawn(
        self,
        wf: Workflow,
        run: RunRecord,
        token: int,
        state: dict[str, Any],
        cp: Checkpoint,
        tracker: SnapshotTracker,
        *,
        fresh: bool = False,
    ) -> None:
        """``fresh``: the run never executed before (created here, or claimed for the first
        time): its journal of node writes is empty, not read before its first step."""
        _freeze_heap_once()
        self._leases[run.run_id] = token
        loop = RunLoop(cast("Runtime", self), wf, run, token, state, cp, tracker)
        loop.journal_empty = fresh
        task = asyncio.create_task(self._execute(loop), name=f"tether-run-{run.run_id}")
        self._tasks[run.run_id] = task
        task.add_done_callback(lambda _t: self._wake.slot_freed())

    async def _execute(self, loop: RunLoop) -> RunResult | None:
        run_id = loop.run.run_id
        started = time.monotonic()
        try:
            rec = await loop.drive()
            self._run_outage.up(started)
            if loop.parked_until is not None and not self.recover:
                self._take_back_when_due(run_id, loop.parked_until)
            if rec.status not in _SETTLED:  # handed back (a retry is due later): wait() follows
                return None  # it in the store, wherever and whenever it runs again
            keep = self.retention.keep_last
            if keep is not None and rec.status in FINISHED:
                try:
                    await self._prune_finished(rec, keep)
                except Exception:  # retention is housekeeping: never fail the run over it
                    log.exception("run %s: pruning to the last %d checkpoints failed", run_id, keep)
            result = RunResult(
                run_id, rec.status, loop.state, rec.step, rec.escalation, rec.error, rec
            )
            result.cause = loop.failure if rec.status is RunStatus.FAILED else None
            return result
        except RunDrained:
            return None  # handed back between two steps: another worker continues it
        except LeaseLostError:
            task = asyncio.current_task()
            if task is not None and task not in self._lost:  # the heartbeat did not say so first
                now = await self._get_run_or_none(run_id)
                self._lost[task] = self._lease_lost(run_id, loop.token, now)
            return None
        except Exception as exc:
            if spares_run(exc, self.recover):
                # the store cannot serve (unreachable longer than it retries, an SQLite disk
                # full): nothing is wrong with the run, so it is not failed, even when the store
                # could record that a moment later (a disk freed up); it stays ACTIVE and
                # recovery resumes it (here or elsewhere) from its last checkpoint once its
                # lease expires. One WARNING per outage, however many runs it stops. (A runtime
                # that recovers nothing, recover=False, fails it on a full disk: none would
                # resume it; an unreachable store leaves it for any recovering runtime.)
                self._run_outage.down(exc)
                log.debug("run %s: stopped here, the store cannot serve (%s)", run_id, exc)
                return None
            log.exception("run %s: runtime error", run_id)
            try:
                from tether.graph.context import error_dict

                await self.store.commit(
                    run_id,
                    loop.token,
                    Commit(
                        status=RunStatus.FAILED,
                        transitions=loop.transitions(RunStatus.FAILED, "runtime error"),
                        error=error_dict(exc, node=None),
                        set_error=True,
                        release_lease=True,
                        events=loop.take_events(),
                    ),
                )
            except Exception as again:
                # the store refuses this write too (a full disk, a lost lease): the run is not
                # failed, it stays as the store has it, so wait() follows it there instead of
                # raising an error for a run that recovery resumes (here or elsewhere) from its
                # last checkpoint once its lease expires
                log.warning(
                    "run %s: stopped here; its failure (%s) could not be recorded (%s): it "
                    "stays active, and recovery resumes it from its last checkpoint once its "
                    "lease expires",
                    run_id,
                    first_line(exc),
                    first_line(again),
                )
                return None
            raise
        finally:
            self._leases.pop(run_id, None)
            if self._tasks.get(run_id) is asyncio.current_task():
                del self._tasks[run_id]

    async def _load(
        self, run: RunRecord, start: Checkpoint | None = None
    ) -> tuple[dict[str, Any], Checkpoint, SnapshotTracker]:
        """The run's state at its last checkpoint; ``start``: that checkpoint when the caller
        read it already and it holds a snapshot (a claimed batch of never-executed runs)."""
        if start is not None and start.step == run.step and start.snapshot is not None:
            chain = [start]
        else:
            chain = await self.store.load_chain(run.run_id, run.step)
        wf = self.workflow_for(run)
        state = replay(wf.schema, chain)
        tracker = SnapshotTracker(self.snapshots)
        tracker.took(len(serde.dumps(chain[0].snapshot)))
        for cp in chain[1:]:
            tracker.add(len(serde.dumps(cp.delta)) if cp.delta else 0)
        return state, chain[-1], tracker

    async def take_over(
        self,
        run: RunRecord,
        token: int,
        *,
        fresh: bool = False,
        start: Checkpoint | None = None,
    ) -> None:
        """RunHost: execute ``run`` here from its last checkpoint under the lease ``token``
        (``fresh``: see ``_spawn``; ``start``: see ``_load``)."""
        wf = self.workflow_for(run)
        check_run_version(run, wf, allow_change=False)
        state, cp, tracker = await self._load(run, start)
        self._spawn(wf, run, token, state, cp, tracker, fresh=fresh)
