"""The Runtime's reads: wait for a run, its record, state, history and events, lists of runs.

``RunReads`` is mixed into ``tether.graph.runtime.Runtime``.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from tether.core.errors import ConfigurationError, InvalidInputError, LeaseLostError
from tether.core.finite import check_number
from tether.core.lifecycle import FINISHED, PARKED, RunStatus
from tether.graph import requeue
from tether.graph.builder import Workflow
from tether.graph.events import EventBus
from tether.graph.history import replay
from tether.graph.results import RunResult, StepInfo
from tether.graph.state import StateSchema, reducers_from_names
from tether.graph.threads import list_thread_runs
from tether.store.paging import whole, whole_number
from tether.store.protocol import RunStore
from tether.store.transient import is_transient
from tether.store.types import Event, RunRecord

_SETTLED = FINISHED | PARKED
EVENT_PAGE = 1000
"""Events read from the store per call by ``Runtime.events``."""


class RunReads:
    """Waiting on runs and reading them: results, records, state at any step, history, events."""

    store: RunStore
    poll_interval: float
    bus: EventBus
    _workflows: dict[str, Workflow]
    _tasks: dict[str, asyncio.Task[RunResult | None]]
    _lost: weakref.WeakKeyDictionary[asyncio.Task[Any], LeaseLostError]

    if TYPE_CHECKING:

        async def _ensure_open(self) -> None: ...

        def workflow_for(self, run: RunRecord) -> Workflow: ...

    async def wait(self, run_id: str, timeout: float | None = None) -> RunResult:
        """Until the run completes, fails, is cancelled, or parks (ESCALATED).

        Raises LeaseLostError when the run was executing here and this runtime lost its lease
        meanwhile (another worker took it over): unless the run has already settled (then its
        result is returned), it goes on elsewhere. A new ``wait()`` follows it from the store
        until it settles, wherever it runs."""
        if timeout is not None:
            check_number("wait timeout", timeout, unit=" of seconds", error=InvalidInputError)
        await self._ensure_open()
        if timeout is not None and timeout <= 0:  # a look, not a wait: asyncio.wait_for(0)
            return await self._settled_now(run_id)  # would time out a run settled long ago
        return await asyncio.wait_for(self._wait(run_id), timeout)

    async def _settled_now(self, run_id: str) -> RunResult:
        """``wait(timeout=0)``: the run's result when it has settled, else TimeoutError."""
        task = self._tasks.get(run_id)
        if task is not None and task.done() and not task.cancelled():
            res = task.result()
            if res is not None:
                return res
        if task is None or task.done():
            rec = await self.store.get_run(run_id)
            if rec.status in _SETTLED and run_id not in self._tasks:
                return await self._result(rec)
        raise TimeoutError(f"run {run_id} has not settled yet (wait timeout=0)")

    async def _wait(self, run_id: str) -> RunResult:
        delay = 0.005
        while True:
            task = self._tasks.get(run_id)
            if task is not None:
                try:
                    res = await asyncio.shield(task)
                except asyncio.CancelledError:
                    if not task.cancelled():  # the waiter was cancelled, not the run's task
                        raise
                    res = None  # the run's task was cancelled here: read the store instead
                if res is not None:
                    return res
                lost = self._lost.get(task)
                if lost is not None:  # this runtime lost the run while we waited on it here
                    rec = await self.store.get_run(run_id)
                    if rec.status in _SETTLED and run_id not in self._tasks:
                        return await self._result(rec)  # it already settled elsewhere
                    raise lost
            try:
                rec = await self.store.get_run(run_id)
                if rec.status in _SETTLED and run_id not in self._tasks:
                    return await self._result(rec)
            except Exception as exc:
                if not is_transient(exc):
                    raise
                delay = max(delay, 0.2)  # the store is unreachable (it logs that): poll on
            await asyncio.sleep(delay)
            delay = min(delay * 2, 0.2)

    async def _result(self, rec: RunRecord) -> RunResult:
        state = await self.get_state(rec.run_id, run=rec)
        return RunResult(rec.run_id, rec.status, state, rec.step, rec.escalation, rec.error, rec)

    async def get_run(self, run_id: str) -> RunRecord:
        await self._ensure_open()
        return await self.store.get_run(run_id)

    async def list_runs(self, **filters: Any) -> list[RunRecord]:
        """Runs, newest first: the store's filters, ``thread_id`` (a thread's runs), and
        ``dead_letter=True`` (the dead-lettered runs; with ``workflow``, ``queue``, ``limit``).
        A filter this does not take, or a value of the wrong kind (``workflow=5``,
        ``status="bogus"``, ``limit=-1``), raises InvalidInputError saying which and why,
        rather than listing nothing."""
        filters = list_filters(filters)
        await self._ensure_open()
        if filters.pop("dead_letter", False):  # FAILED runs out of retryable attempts
            return await requeue.dead_lettered(self.store, **filters)
        thread_id = filters.pop("thread_id", None)
        if thread_id is not None:
            return await list_thread_runs(self.store, thread_id, **filters)
        return await self.store.list_runs(**filters)

    def _schema_for(self, run: RunRecord) -> StateSchema:
        wf = self._workflows.get(run.workflow)
        if wf is not None:
            return wf.schema
        names: dict[str, str] = run.metadata.get("reducers", {})
        custom = [k for k, v in names.items() if v.startswith("custom:")]
        if custom:
            try:
                return self.workflow_for(run).schema
            except ConfigurationError as exc:
                raise ConfigurationError(
                    f"fields {custom} of run {run.run_id} use custom reducers: {exc}"
                ) from None
        return reducers_from_names(names)

    async def get_state(
        self, run_id: str, step: int | None = None, *, run: RunRecord | None = None
    ) -> dict[str, Any]:
        """The state after ``step`` (default: the last committed step)."""
        step = None if step is None else whole_number("step", step)
        await self._ensure_open()
        run = run or await self.store.get_run(run_id)
        chain = await self.store.load_chain(run_id, run.step if step is None else step)
        return replay(self._schema_for(run), chain)

    async def history(
        self, run_id: str, *, after_step: int | None = None, limit: int | None = None
    ) -> list[StepInfo]:
        """The run's committed steps in order: all of them, or a page of at most ``limit``
        steps after ``after_step`` (pass the last step of the previous page)."""
        after_step = None if after_step is None else whole("after_step", after_step)
        limit = None if limit is None else whole("limit", limit)
        await self._ensure_open()
        if limit is not None and limit <= 0:
            return []
        # the step before the page comes too: it planned the tasks the page's first step ran
        start = 0 if after_step is None else max(after_step, 0)
        fetch = None if limit is None else limit + 1
        cps = await self.store.list_checkpoints(run_id, from_step=start, limit=fetch)
        # the tasks a step ran are the ones its predecessor planned (a task that wrote nothing
        # leaves no delta, but it ran); after a prune the oldest kept step falls back to its delta
        ran = {cp.step + 1: [(t["id"], t["node"]) for t in cp.next_tasks] for cp in cps}
        if after_step is not None:
            cps = [cp for cp in cps if cp.step > after_step]
        out = []
        for cp in cps[:limit]:
            tasks = ran.get(cp.step, [(w[0], w[1]) for w in cp.delta])
            out.append(
                StepInfo(
                    cp.step,
                    cp.created_at,
                    [t for t, _ in tasks],
                    [{"task_id": w[0], "node": w[1], "writes": w[2]} for w in cp.delta],
                    cp.next_tasks,
                    cp.snapshot is not None,
                    cp.meta,
                    [n for _, n in tasks],
                )
            )
        return out

    async def events(self, run_id: str, *, follow: bool = True) -> AsyncIterator[Event]:
        """The run's events: the persisted log first, then (``follow``) live events until the
        run completes, fails, is cancelled or parks; a streamed model's tokens as well when
        another process runs the call and the store carries live events (PostgreSQL)."""
        await self._ensure_open()
        q = self.bus.subscribe(run_id) if follow else None
        try:
            # a worker process's tokens come over the store's live channel
            remote = q is not None and await self.bus.listen_remote(5.0)
            last = 0
            async for ev in self._stored_events(run_id, 0):
                last = ev.seq
                yield ev
            if q is None:
                return
            while True:
                try:
                    ev = await asyncio.wait_for(q.get(), self.poll_interval / 2)
                except TimeoutError:
                    if remote:  # what another process sent before its last commit comes first
                        await self.bus.sync_remote()
                        while not q.empty():
                            ev = q.get_nowait()
                            if not ev.seq:
                                yield ev
                    async for ev in self._stored_events(run_id, last):
                        last = ev.seq
                        yield ev
                    rec = await self.store.get_run(run_id)
                    if rec.status in _SETTLED and run_id not in self._tasks:
                        return
                    continue
                if ev.seq:
                    if ev.seq <= last:
                        continue
                    if ev.seq > last + 1:  # committed elsewhere (e.g. a resume): back-fill
                        async for missed in self._stored_events(run_id, last, before=ev.seq):
                            last = missed.seq
                            yield missed
                    last = ev.seq
                yield ev
                if ev.type == "lifecycle" and RunStatus(ev.data["to"]) in _SETTLED:
                    return
        finally:
            if q is not None:
                self.bus.unsubscribe(run_id, q)

    async def _stored_events(
        self, run_id: str, after_seq: int, *, before: int | None = None
    ) -> AsyncIterator[Event]:
        """The persisted events after ``after_seq`` (and before ``before``), page by page: a
        store returns at most a page per call, and a long run has many pages."""
        while True:
            page = await self.store.list_events(run_id, after_seq=after_seq, limit=EVENT_PAGE)
            for ev in page:
                if before is not None and ev.seq >= before:
                    return
                yield ev
            if len(page) < EVENT_PAGE:
                return
            after_seq = page[-1].seq


_TEXT_FILTERS = ("workflow", "parent_run_id", "thread_id", "tenant", "before", "after", "queue")
_FILTERS = frozenset(("status", "limit", "offset", "dead_letter", *_TEXT_FILTERS))
_DEAD_LETTER_FILTERS = frozenset(("dead_letter", "workflow", "queue", "limit"))
_NEAR = {"thread": "thread_id", "parent": "parent_run_id", "statuses": "status"}


def list_filters(filters: dict[str, Any]) -> dict[str, Any]:
    """``Runtime.list_runs``' filters checked: known names, text where text is meant, a status
    or a list of them, a whole ``limit`` >= 0 and ``offset`` >= 0, a bool ``dead_letter``. A
    wrong one is an InvalidInputError naming it, never an empty list (``workflow=5`` matched no
    run, ``limit=-1`` listed none, ``thread=`` failed with a TypeError from deep inside)."""
    out = dict(filters)
    dead = out.get("dead_letter", False)
    if not isinstance(dead, bool):
        raise InvalidInputError(f"dead_letter must be True or False, got {dead!r}")
    known = _DEAD_LETTER_FILTERS if dead else _FILTERS - {"queue"}
    for name in out:
        if name not in known:
            hint = f" (did you mean {_NEAR[name]}=?)" if _NEAR.get(name) in known else ""
            what = "list_runs(dead_letter=True)" if dead and name in _FILTERS else "list_runs"
            raise InvalidInputError(
                f"{what} takes no filter {name!r}{hint}; it takes: {', '.join(sorted(known))}"
            )
    for name in _TEXT_FILTERS:
        value = out.get(name)
        if value is not None and (not isinstance(value, str) or not value):
            raise InvalidInputError(
                f"{name} must be a non-empty string (or None: any), got {value!r}"
            )
    if out.get("status") is not None:
        out["status"] = statuses(out["status"])
    for name in ("limit", "offset"):
        if name not in out or (name == "limit" and dead and out[name] is None):
            continue  # the dead letter's limit may be None: all of them
        n = whole(name, out[name])
        if n < 0:
            meant = "the most runs to list" if name == "limit" else "runs to skip"
            raise InvalidInputError(f"{name} must be >= 0 ({meant}), got {n}")
        out[name] = n
    return out


def statuses(status: Any) -> list[RunStatus]:
    """A ``status`` filter as a list of RunStatus: one status (``"ESCALATED"``) or several;
    InvalidInputError naming the statuses for anything else (a plain string was read as its
    letters, ``'E' is not a valid RunStatus``)."""
    many = [status] if isinstance(status, str) else status
    try:
        return [RunStatus(s) for s in many]
    except (TypeError, ValueError):
        raise InvalidInputError(
            f"status must be a run status or a list of them ({', '.join(RunStatus)}), "
            f"got {status!r}"
        ) from None
