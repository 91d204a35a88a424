"""The run loop: executes one run's steps while holding its lease. All I/O lives here; the
planning is pure (planner.py) and the node calls are in executor.py."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, cast

from tether.core import serde
from tether.core.errors import EscalationSignal, InvalidRouteError, InvalidUpdateError
from tether.core.governor import StepObserver, StepView, end_execution
from tether.core.ids import task_id
from tether.core.json_copy import scrub_text
from tether.core.lifecycle import RunStatus, path_to
from tether.graph.breakpoints import escalation as breakpoint_escalation
from tether.graph.breakpoints import stops_after, stops_before
from tether.graph.context import RunContext, error_dict
from tether.graph.events import lifecycle_data
from tether.graph.executor import Outcome, run_task
from tether.graph.history import SnapshotTracker
from tether.graph.interrupt_timeout import TimedInterrupt, add_interrupt_timer, unknown_on_timeout
from tether.graph.planner import Finished, PlanMemo, plan_next
from tether.graph.run_retry import failure_commit
from tether.graph.sleep import SLEEPING_EVENT
from tether.graph.task_events import HeldTaskEvents
from tether.graph.types import Detour, NodeSpec, Phase, Send
from tether.observability.run_trace import start_run_trace
from tether.store.transient import spares_run
from tether.store.types import Checkpoint, Commit, Event, NodeWrite, RunRecord

if TYPE_CHECKING:
    from tether.graph.builder import Workflow
    from tether.graph.host import RunHost

Transition = tuple[RunStatus, RunStatus, str, str]
_NO_ANSWERS: tuple[Any, ...] = ()
"""The resume answers of a task that was never interrupted."""


@functools.lru_cache(maxsize=256)
def _path(src: RunStatus, dst: RunStatus) -> tuple[RunStatus, ...]:
    return tuple(path_to(src, dst))


def step_hops(src: RunStatus, dst: RunStatus, actor: str, reason: str) -> list[Transition]:
    """The lifecycle hops from ``src`` to ``dst`` (the shortest legal path), each by ``actor``
    for ``reason``."""
    out: list[Transition] = []
    cur = src
    for nxt in _path(cur, dst):
        out.append((cur, nxt, actor, reason))
        cur = nxt
    return out


# Enum members read once: on Python 3.11 ``RunStatus.EXECUTING`` is a lookup through
# ``EnumType.__getattr__``'s slot (about a microsecond); these run at every step.
_TOOL, _VALIDATOR = Phase.TOOL, Phase.VALIDATOR
_WAITING_FOR_TOOL, _VALIDATING, _EXECUTING = (
    RunStatus.WAITING_FOR_TOOL,
    RunStatus.VALIDATING,
    RunStatus.EXECUTING,
)


def phase_status(wf: Workflow, tasks: list[dict[str, Any]]) -> RunStatus:
    """The lifecycle state a step with these tasks runs in: any tool → WAITING_FOR_TOOL; only
    validators → VALIDATING; otherwise EXECUTING."""
    nodes = wf.nodes
    if len(tasks) == 1:  # most steps
        phase = nodes[tasks[0]["node"]].phase
        if phase is _TOOL:
            return _WAITING_FOR_TOOL
        return _VALIDATING if phase is _VALIDATOR else _EXECUTING
    validators = 0
    for t in tasks:  # a loop, not a comprehension: no closure cell made per call (per step)
        phase = nodes[t["node"]].phase
        if phase is _TOOL:
            return _WAITING_FOR_TOOL
        validators += phase is _VALIDATOR
    return _VALIDATING if tasks and validators == len(tasks) else _EXECUTING


def encode_goto(goto: tuple[Any, ...]) -> list[Any] | None:
    if not goto:
        return None
    return [
        {"send": g.node, "arg": g.arg}
        if isinstance(g, Send)
        else {"detour": g.node}
        if isinstance(g, Detour)
        else g
        for g in goto
    ]


def decode_goto(raw: list[Any] | None) -> tuple[Any, ...]:
    if not raw:
        return ()
    return tuple(
        (Detour(g["detour"]) if "detour" in g else Send(g["send"], g["arg"]))
        if isinstance(g, dict)
        else g
        for g in raw
    )


def _written_keys(writes: list[tuple[str, dict[str, Any]]]) -> list[str]:
    """The state keys a step's writes set, sorted, each once."""
    keys: set[str] = set()
    for _task, update in writes:
        keys.update(update)
    return sorted(keys)


class RunDrained(Exception):
    """The run stopped at a step boundary and released its lease: its runtime drains."""


class RunLoop:
    def __init__(
        self,
        rt: RunHost,
        wf: Workflow,
        run: RunRecord,
        token: int,
        state: dict[str, Any],
        checkpoint: Checkpoint,
        tracker: SnapshotTracker,
    ) -> None:
        self.rt = rt
        self.wf = wf
        self.run = run
        self.token = token
        self.state = state
        self.cp = checkpoint
        self.tracker = tracker
        self.status = run.status
        self.seq = run.event_seq
        self.actor = f"worker:{rt.owner}"
        self._events: list[Event] = []
        self._unpublished: list[Event] = []
        self.finished_status: RunStatus | None = None
        self.failure: BaseException | None = None
        """What failed the run, when it ends FAILED here (``RunResult.cause``)."""
        gov = wf.governance
        self.governor = gov.governor(rt.store, run, rt.clock) if gov is not None else None
        """This execution's governor (``compile(governance=...)``), handed to every node."""
        self.step_observer = (
            self.governor
            if self.governor is not None and isinstance(self.governor, StepObserver)
            else None
        )
        """The governor, when it watches step boundaries (``StepObserver``)."""
        self.journal_empty = False
        """The run never executed before: no node writes to read before its first step."""
        self.parked_until: float | None = None
        """Set when a durable sleep parked the run (still ACTIVE, no owner) until then."""
        self.trace = start_run_trace(run, wf.name, rt.owner)
        """This execution's spans (``tether.observability.run_trace``); None: not traced."""
        self._ended: dict[str, float] = {}
        """When each of a step's parallel tasks ended (``step_finished``'s ``took``)."""
        self._plans: PlanMemo = {}
        """What the planner worked out for this workflow (``planner.PlanMemo``)."""
        self._held = HeldTaskEvents()
        """Node writes stored with events no commit holds yet (``graph.task_events``)."""
        self._metadata_of: dict[str, Any] | None = None
        self._metadata: Mapping[str, Any] = MappingProxyType({})
        """A read-only view of the run's metadata for its tasks' contexts, made again only
        when a commit gave the run a new metadata dict (``_metadata_of``)."""

    # -- events --------------------------------------------------------------------------
    def emit(
        self,
        type: str,
        data: dict[str, Any],
        node: str | None = None,
        step: int | None = None,
        persist: bool = True,
        publish_now: bool = False,
        ts: float | None = None,
    ) -> Event:
        """Record an event. Persisted events reach live subscribers only once their commit has
        landed (a subscriber that sees "→ ESCALATED" can act on it at once), unless
        ``publish_now`` (a node's own progress events); live-only events go out at once.
        ``ts``: when it happened, for an event a task journaled earlier (default: now)."""
        seq = 0
        if persist:
            self.seq += 1
            seq = self.seq
        ev = Event(
            self.run.run_id, seq, type, self.rt.clock.now() if ts is None else ts, step, node, data
        )
        publish = not persist or publish_now
        if persist:
            self._events.append(ev)
            if not publish:
                self._unpublished.append(ev)
        if publish and self.rt.bus.has_subscribers(ev.run_id):
            self.rt.bus.publish(ev)
        if self.trace is not None:
            self.trace.event(type, data)
        return ev

    def publish_live(self, type: str, data: dict[str, Any], node: str | None, step: int) -> None:
        """A live-only event for this process's subscribers, when there are any, and for other
        processes' (a relayed kind, when the store can carry it): neither persisted nor traced
        (a streamed model's tokens, one event per piece)."""
        bus = self.rt.bus
        local, remote = bus.has_subscribers(self.run.run_id), bus.wants_relay(type)
        if local or remote:
            ev = Event(self.run.run_id, 0, type, self.rt.clock.now(), step, node, data)
            if local:
                bus.publish(ev)
            if remote:
                bus.relay(ev)

    def task_event(self, type: str, data: dict[str, Any], node: str | None, step: int) -> Event:
        """A running task's event (``RunContext.emit``): persisted with its step, published at
        once (``TaskSink``)."""
        return self.emit(type, data, node, step, publish_now=True)

    def _step_event(self, type: str, data: dict[str, Any], step: int) -> None:
        """``emit`` of an event of the loop's own at ``step`` (persisted, published once its
        commit landed), in fewer instructions: one is made at every step."""
        self.seq += 1
        ev = Event(self.run.run_id, self.seq, type, self.rt.clock.now(), step, None, data)
        self._events.append(ev)
        self._unpublished.append(ev)
        if self.trace is not None:
            self.trace.event(type, data)

    def take_events(self) -> list[Event]:
        evs, self._events = self._events, []
        return evs

    def _publish_committed(self) -> None:
        if not self._unpublished:
            return
        evs, self._unpublished = self._unpublished, []
        bus = self.rt.bus
        if bus.has_subscribers(self.run.run_id):
            for ev in evs:
                bus.publish(ev)

    def transitions(self, dst: RunStatus, reason: str = "") -> list[Transition]:
        reason = scrub_text(reason)  # an escalation's reason may quote text that is not UTF-8
        hops = step_hops(self.status, dst, self.actor, reason)
        for src, nxt, _actor, _reason in hops:
            self.emit("lifecycle", lifecycle_data(src, nxt, reason))
        return hops

    async def _commit(self, commit: Commit) -> None:
        remote = self.rt.bus.remote
        if remote is not None and remote.pending:  # relayed tokens go out before the step
            await remote.flush()
        if commit.events:
            commit.events = self.take_events()
        else:  # its own empty list takes them: this loop's list is kept, not made again
            commit.events.extend(self._events)
            self._events.clear()
        self._held.settle(commit)
        commit.base = self.run  # the store reads back only the run's small columns
        self.run = await self.rt.store.commit(self.run.run_id, self.token, commit)
        if commit.status is not None:
            self.status = commit.status
        if self.trace is not None:
            ends = commit.checkpoint is not None or commit.release_lease
            self.trace.committed(commit.status, ends, self.run)
        self._publish_committed()

    # -- the loop ------------------------------------------------------------------------
    async def drive(self) -> RunRecord:
        try:
            if self.trace is None:
                return await self._drive()
            try:
                return await self._drive()
            except BaseException as exc:
                self.trace.close(exc)
                raise
            finally:
                self.trace.close()
        finally:  # whatever ended it: the governor writes what it deferred (a budget settle)
            await end_execution(self.governor)

    async def _drive(self) -> RunRecord:
        wf, store, rt = self.wf, self.rt.store, self.rt
        run_id = self.run.run_id
        schema = wf.schema
        state = self.state
        step = self.cp.step
        tasks = self.cp.next_tasks
        barriers = self.cp.barriers
        check_journal = not self.journal_empty
        step_limit = int(self.run.metadata.get("step_limit", rt.max_steps))
        phased = False  # the run's status is already the phase of ``tasks`` (the last commit)
        plans = self._plans
        while True:
            if not tasks:
                await self._complete()
                return self.run
            if rt.draining:
                await self._hand_back()
                raise RunDrained(run_id)
            nstep = step + 1
            if self.trace is not None:
                self.trace.start_step(nstep, [t["node"] for t in tasks])
            if wf.interrupt_before:
                stop = stops_before(wf, self.run, nstep, tasks)
                if stop:
                    await self._escalate(nstep, breakpoint_escalation("before", nstep, stop))
                    return self.run
            if nstep <= step_limit and not phased:
                await self._enter_phase(nstep, tasks)
            phased = False
            if nstep > step_limit:
                await self._escalate(
                    nstep,
                    {
                        "kind": "step_limit",
                        "reason": f"step limit reached ({step_limit} steps); "
                        "resume the run to grant it more steps, or cancel it",
                    },
                )
                return self.run
            journal: dict[str, NodeWrite] = {}
            if check_journal:
                journal = {w.task_id: w for w in await store.get_node_writes(run_id, nstep)}
                check_journal = False
            live = rt.bus.has_subscribers(run_id)
            if live:
                self.emit(
                    "step_started", {"tasks": [t["id"] for t in tasks]}, step=nstep, persist=False
                )
            started = rt.clock.now()
            done: list[Outcome]
            if not journal and len(tasks) == 1:  # the usual step: one task, run here
                journal_each = False
                out = await self._run(nstep, tasks[0], None, False, live)
                done = [out]
                settled = out.kind == "done"
            else:
                done, journal_each = await self._run_all(nstep, tasks, journal, live)
                settled = True
                for o in done:  # a loop, not any(<generator>): none is made per step
                    if o.kind != "done":
                        settled = False
                        break
            if not settled:
                bad = next((o for o in done if o.kind == "error"), None)
                if bad is not None:
                    if await self._fail(nstep, bad, bool(journal) or journal_each):
                        step, tasks, barriers = nstep, self.cp.next_tasks, self.cp.barriers
                        continue
                    return self.run
                sig = next((o for o in done if o.kind == "escalated"), None)
                if sig is not None and sig.signal is not None:
                    s = sig.signal
                    await self._escalate(
                        nstep,
                        {
                            "kind": s.kind,
                            "reason": s.reason,
                            "node": sig.task["node"],
                            "task_id": sig.task["id"],
                            "details": s.details,
                        },
                    )
                    return self.run
                interrupted = [o for o in done if o.kind == "interrupted"]
                if interrupted:
                    await self._interrupted(nstep, interrupted)
                    return self.run
                sleeping = [o.until for o in done if o.kind == "sleeping" and o.until is not None]
                if sleeping:
                    await self._park(nstep, min(sleeping))
                    return self.run
            writes: list[tuple[str, dict[str, Any]]] = []
            delta: list[list[Any]] = []
            finished: list[Finished] = []
            ids: list[str] = []
            for o in done:
                t = o.task
                tid = t["id"]
                ids.append(tid)
                if o.writes:
                    writes.append((tid, o.writes))
                    delta.append([tid, t["node"], o.writes])
                finished.append(Finished(tid, t["node"], o.goto))
            try:
                schema.apply(state, writes)
                next_tasks, barriers = plan_next(wf, state, nstep, finished, barriers, plans)
            except (InvalidRouteError, InvalidUpdateError, Exception) as exc:
                fake = Outcome(
                    done[-1].task if done else {"id": "", "node": ""}, "error", error=exc
                )
                await self._fail(nstep, fake, bool(journal) or journal_each, replan=False)
                # apply() may have changed the state in place before it raised; this step was
                # never committed, so the run's state is the last committed one
                self.state = await rt.get_state(run_id, run=self.run)
                return self.run
            delta_blob = serde.dumps(delta) if delta else None
            snapshot = None
            if self.tracker.add(len(delta_blob) if delta_blob is not None else 0):
                blob = serde.dumps(state)
                snapshot = serde.loads(blob)
                self.tracker.took(len(blob))
            finished_data: dict[str, Any] = {
                "tasks": ids,
                "keys": sorted(writes[0][1]) if len(writes) == 1 else _written_keys(writes),
                "started": started,
            }
            if journal_each:  # parallel tasks: when each ended (one task ends with its step)
                ended, self._ended = self._ended, {}
                finished_data["took"] = [
                    ended[o.task["id"]] - started if o.task["id"] in ended else None for o in done
                ]
            self._step_event("step_finished", finished_data, nstep)
            cp = Checkpoint(run_id, nstep, delta, next_tasks, snapshot, barriers)
            cp.delta_blob = delta_blob  # written as measured: the store need not encode it again
            stop = stops_after(wf, [o.task for o in done]) if wf.interrupt_after else []
            seen: StepView | None = None
            trip: dict[str, Any] | None = None
            if self.step_observer is not None and next_tasks and not stop:
                seen, trip = await self._observe(nstep, done, next_tasks)
            if stop or trip is not None:
                info = trip or breakpoint_escalation("after", nstep, stop)
                commit = self._escalation_commit(nstep, info)
                commit.checkpoint = cp
            elif next_tasks:
                target = phase_status(wf, next_tasks)
                commit = Commit(cp)  # by position: once a step (keywords cost more)
                if target is not self.status:
                    commit.transitions = self.transitions(
                        target, f"step {nstep + 1}: {', '.join(t['node'] for t in next_tasks)}"
                    )
                    commit.status = target
                phased = True  # the commit leaves the run in the next step's phase
            else:
                commit = Commit(checkpoint=cp, release_lease=True)
                commit.transitions = self.transitions(RunStatus.COMPLETED, "graph finished")
                commit.status = RunStatus.COMPLETED
                self._clear_recovered_error(commit)
            if journal or journal_each:
                commit.clear_node_writes_for_step = nstep
            if seen is not None and seen.metadata:
                commit.metadata = {**(commit.metadata or {}), **seen.metadata}
            await self._commit(commit)
            self.cp = cp
            step, tasks = nstep, next_tasks
            if stop or trip is not None:
                self.finished_status = RunStatus.ESCALATED
                return self.run
            if not next_tasks:
                self.finished_status = RunStatus.COMPLETED
                return self.run

    async def _run_all(
        self, step: int, tasks: list[dict[str, Any]], journal: dict[str, NodeWrite], live: bool
    ) -> tuple[list[Outcome], bool]:
        """The outcomes of a step's tasks, in task order: the ones its journal holds done, the
        others run now (several at once, each journaling its writes as it ends: the second
        value says so)."""
        outcomes: list[Outcome | None] = []
        pending: list[tuple[int, dict[str, Any], NodeWrite | None]] = []
        for i, t in enumerate(tasks):
            w = journal.get(t["id"])
            if w is not None and w.events:  # journaled by a runtime that did not commit
                w.events = [self._rejournal(ev) for ev in w.events]
                self._held.hold(w)
            if w is not None and w.status == "done":
                outcomes.append(Outcome(t, "done", w.writes, decode_goto(w.goto)))
            else:
                outcomes.append(None)
                pending.append((i, t, w))
        journal_each = len(pending) > 1
        if len(pending) == 1:
            i, t, w = pending[0]
            outcomes[i] = await self._run(step, t, w, False, live)
        elif pending:
            results = await asyncio.gather(
                *(self._run(step, t, w, journal_each, live) for _, t, w in pending)
            )
            for (i, _, _), out in zip(pending, results, strict=True):
                outcomes[i] = out
        # every task has its outcome now (the ones journaled done, the ones just run)
        return cast("list[Outcome]", outcomes), journal_each

    async def _observe(
        self, step: int, done: list[Outcome], next_tasks: list[dict[str, Any]]
    ) -> tuple[StepView, dict[str, Any] | None]:
        """Show the finished step to the governor (``StepObserver``); a trip there comes back
        as the escalation the step commits with."""
        assert self.step_observer is not None

        def note(type: str, data: dict[str, Any]) -> None:
            self.emit(type, data, None, step)

        view = StepView(
            self.run,
            step,
            self.state,
            tuple(sorted({k for o in done if o.writes for k in o.writes})),
            tuple(o.task["node"] for o in done),
            tuple(t["node"] for t in next_tasks),
            note,
        )
        try:
            await self.step_observer.after_step(view)
        except EscalationSignal as s:
            return view, {"kind": s.kind, "reason": s.reason, "details": s.details}
        return view, None

    async def _hand_back(self) -> None:
        """The runtime drains (a worker shuts down): between two steps, with every step so far
        committed, release the lease so another worker continues the run at once."""
        self.emit("handed_back", {"owner": self.rt.owner, "reason": "worker draining"})
        await self._commit(Commit(release_lease=True))

    async def _enter_phase(self, step: int, tasks: list[dict[str, Any]]) -> None:
        """The run's status reads what its step does while the step runs: a run claimed while
        PLANNED (submitted), or retried into EXECUTING before a tool step, moves first."""
        target = phase_status(self.wf, tasks)
        if self.status is target:
            return
        reason = f"step {step}: {', '.join(t['node'] for t in tasks)}"
        await self._commit(Commit(status=target, transitions=self.transitions(target, reason)))

    def _rejournal(self, ev: Event) -> Event:
        """An event a task journaled with its node write, pending again in this execution."""
        return self.emit(ev.type, ev.data, ev.node, ev.step, ts=ev.ts)

    async def _run(
        self, step: int, task: dict[str, Any], before: NodeWrite | None, journal: bool, live: bool
    ) -> Outcome:
        """Run one task. ``before``: its node write from an earlier execution of the step (an
        interrupted task being answered, or one whose events were journaled before a crash).
        Its events, and those it emits now, go into the node write journaled for it."""
        node = task["node"]
        spec = self.wf.nodes[node]
        if before is None:
            resume: Sequence[Any] = _NO_ANSWERS
            mine: list[Event] = []
        else:
            resume, mine = before.resume, list(before.events)
        run = self.run
        if run.metadata is not self._metadata_of:  # a commit that changed it: view it anew
            self._metadata_of, self._metadata = run.metadata, MappingProxyType(run.metadata)
        ctx = RunContext(  # by position: a class called with keywords costs twice as much
            run.run_id,
            self.wf.name,
            step,
            node,
            task["id"],
            self.rt.store,
            self.token,
            self,
            resume,
            self._metadata,
            self.rt,
            self.rt.deps,
            1,  # attempt
            self.governor,
            run.tenant,
            mine,
        )
        if live:
            self.emit("node_started", {"task_id": task["id"]}, node, step, persist=False)
        if self.trace is None:
            out = await run_task(spec, task, self.state, ctx, self.wf.schema)
        else:
            out = await self._traced(step, task, spec, ctx)
        if journal:  # one of several tasks of its step (see step_finished's "took")
            self._ended[task["id"]] = self.rt.clock.now()
        if out.kind == "done":
            if live:
                self.emit(
                    "node_finished",
                    {"task_id": task["id"], "writes": out.writes},
                    node,
                    step,
                    persist=False,
                )
            if journal:
                await self._journal(
                    NodeWrite(
                        self.run.run_id,
                        step,
                        task["id"],
                        node,
                        "done",
                        out.writes,
                        encode_goto(out.goto),
                        events=mine,
                    )
                )
        elif out.kind == "interrupted" and out.interrupt is not None:
            bad = unknown_on_timeout(out.interrupt, node, self.wf.nodes)
            if bad is not None:  # a typo found now, not when the timeout fires hours later
                return Outcome(task, "error", error=bad, attempts=out.attempts)
            await self._journal(
                NodeWrite(
                    self.run.run_id,
                    step,
                    task["id"],
                    node,
                    "interrupted",
                    None,
                    None,
                    out.interrupt.payload,
                    list(resume),
                    events=mine,
                )
            )
        return out

    async def _traced(
        self, step: int, task: dict[str, Any], spec: NodeSpec, ctx: RunContext
    ) -> Outcome:
        trace = self.trace
        assert trace is not None
        out: Outcome = await trace.run_node(
            step,
            task,
            spec.phase.value,
            lambda: run_task(spec, task, self.state, ctx, self.wf.schema),
        )
        return out

    async def _journal(self, write: NodeWrite) -> None:
        await self.rt.store.put_node_write(self.token, write)
        self._held.hold(write)

    # -- endings -------------------------------------------------------------------------
    def _clear_recovered_error(self, commit: Commit) -> None:
        """A run that re-planned its way to completion carries no error; the failures it
        recovered from stay in its events and transitions."""
        if self.run.error is not None:
            commit.error, commit.set_error = None, True

    async def _complete(self) -> None:
        commit = Commit(release_lease=True)
        commit.transitions = self.transitions(RunStatus.COMPLETED, "graph finished")
        commit.status = RunStatus.COMPLETED
        self._clear_recovered_error(commit)
        await self._commit(commit)
        self.finished_status = RunStatus.COMPLETED

    async def _escalate(self, step: int, info: dict[str, Any]) -> None:
        await self._commit(self._escalation_commit(step, info))
        self.finished_status = RunStatus.ESCALATED

    def _escalation_commit(self, step: int, info: dict[str, Any]) -> Commit:
        info = {"step": step, **info}
        self.emit("escalated", info, info.get("node"), step)
        commit = Commit(escalation=info, set_escalation=True, release_lease=True)
        commit.transitions = self.transitions(RunStatus.ESCALATED, info.get("reason", ""))
        commit.status = RunStatus.ESCALATED
        return commit

    async def _park(self, step: int, until: float) -> None:
        """A task's durable sleep is not due (``graph.sleep``): the step's finished tasks are
        journaled already; release the lease, claimable from ``until`` on, status unchanged."""
        self.emit(SLEEPING_EVENT, {"until": until}, None, step)
        await self._commit(Commit(release_lease=True, available_at=until))
        self.parked_until = until

    async def _interrupted(self, step: int, outs: list[Outcome]) -> None:
        items = []
        for o in outs:
            assert o.interrupt is not None
            iid = f"{o.task['id']}#{o.interrupt.index}"
            items.append(
                {
                    "id": iid,
                    "task_id": o.task["id"],
                    "node": o.task["node"],
                    "index": o.interrupt.index,
                    "payload": o.interrupt.payload,
                }
            )
            if isinstance(o.interrupt, TimedInterrupt):
                await add_interrupt_timer(self.rt, self.run.run_id, items[-1], o.interrupt)
            self.emit("interrupt", items[-1], o.task["node"], step)
        reason = f"waiting for human input at {', '.join(i['node'] for i in items)}"
        await self._escalate(step, {"kind": "interrupt", "reason": reason, "interrupts": items})

    async def _fail(self, step: int, out: Outcome, journaled: bool, replan: bool = True) -> bool:
        """Record the failure. Returns True when the graph re-plans and the loop goes on."""
        exc = out.error
        assert exc is not None
        if spares_run(exc, self.rt.recover):  # its journal write met a full disk, or a
            raise exc  # store gone away: no failure of the run's; recovery resumes it (execution)
        err = error_dict(
            exc, node=out.task["node"], task_id=out.task["id"], step=step, attempts=out.attempts
        )
        self.emit(
            "node_failed",
            {k: v for k, v in err.items() if k != "traceback"},
            out.task["node"],
            step,
        )
        wf = self.wf
        replans = int(self.run.metadata.get("replans", 0))
        if replan and wf.replan_node is not None and replans < wf.max_replans:
            reason = f"re-plan {replans + 1}/{wf.max_replans} after {err['type']} in {err['node']}"
            next_tasks = [{"id": task_id(step + 1, wf.replan_node, 0), "node": wf.replan_node}]
            trs = self.transitions(RunStatus.FAILED, reason)
            self.status = RunStatus.FAILED
            trs += self.transitions(RunStatus.PLANNED, reason)
            self.status = RunStatus.PLANNED
            trs += self.transitions(phase_status(wf, next_tasks), reason)
            cp = Checkpoint(
                self.run.run_id,
                step,
                [],
                next_tasks,
                None,
                self.cp.barriers,
                meta={"replan": replans + 1, "error": err["message"]},
            )
            self.tracker.add(0)
            commit = Commit(
                checkpoint=cp,
                status=trs[-1][1],
                error=err,
                set_error=True,
                metadata={"replans": replans + 1},
            )
            commit.transitions = trs
            self.status = self.run.status
            if journaled:
                commit.clear_node_writes_for_step = step
            await self._commit(commit)
            self.cp = cp
            return True
        # a retryable failure under the workflow's RunRetry goes back to the queue instead
        commit, fate = failure_commit(self, exc, err)
        if fate != "retry":
            self.failure = exc
        await self._commit(commit)
        self.finished_status = self.status
        return False
