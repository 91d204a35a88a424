"""In-process RunStore: the reference semantics, and the fastest backend for tests and demos."""

from __future__ import annotations

import bisect
import copy
from collections.abc import Callable, Collection, Mapping, Sequence
from typing import Any

from tether.core import serde
from tether.core.clock import SYSTEM_CLOCK, Clock
from tether.core.errors import (
    IdempotencyConflictError,
    LeaseLostError,
    RunNotFoundError,
    StepNotFoundError,
)
from tether.core.json_copy import dumps_record, record_copy
from tether.core.lifecycle import ACTIVE, RunStatus, check_transition
from tether.store import purge
from tether.store.control import check_take, refill, take
from tether.store.lease_takeovers import MemoryLeaseTakeovers
from tether.store.memory_api_keys import MemoryApiKeys
from tether.store.memory_approvals import MemoryApprovals
from tether.store.memory_audit import MemoryAudit
from tether.store.memory_budget import MemoryBudget
from tether.store.memory_evaluation_log import MemoryEvaluationLog
from tether.store.memory_kept import KeptCheckpoint, KeptEvent, keep
from tether.store.memory_pii_vault import MemoryPiiVault
from tether.store.memory_timers import MemoryTimers
from tether.store.paging import check_page, whole, whole_number
from tether.store.queue_limits import MemoryQueueLimits
from tether.store.run_counts import MemoryRunCounts
from tether.store.run_usage import MemoryRunUsage
from tether.store.types import (
    Checkpoint,
    Commit,
    EffectRecord,
    Event,
    Lease,
    NodeWrite,
    RunRecord,
    Transition,
)
from tether.store.usage import MODEL_CALL, ModelCallTotals, sum_model_calls
from tether.store.wakeup import Listener, Wakeup, announces
from tether.store.workers import MemoryWorkers


def idempotency_conflict(key: str, run_id: str) -> IdempotencyConflictError:
    return IdempotencyConflictError(
        f"idempotency key {key!r} was already used by run {run_id} with a different input; "
        "use a new key for a different request"
    )


def check_same_submission(run: RunRecord, existing: RunRecord) -> None:
    """``existing`` holds ``run``'s idempotency key: it is the same submission only for the same
    workflow, tenant and input (a key reused for another workflow must not hand back a run of a
    workflow the caller did not ask for, nor another tenant's run)."""
    key = run.idempotency_key or ""
    if existing.workflow != run.workflow:
        raise IdempotencyConflictError(
            f"idempotency key {key!r} was already used by run {existing.run_id} of workflow "
            f"{existing.workflow!r}, not {run.workflow!r}; use a new key for a different request"
        )
    if existing.tenant != run.tenant:
        raise IdempotencyConflictError(  # naming no run: it is not the caller's to know
            f"idempotency key {key!r} was already used by another tenant; use a new key (or "
            "scope keys per tenant)"
        )
    if run.input_hash is not None and existing.input_hash != run.input_hash:
        raise idempotency_conflict(key, existing.run_id)


def moved(run: RunRecord, commit: Commit) -> bool:
    """Whether ``run`` was written since ``commit.base`` was read (``LeaseCommit``: its event
    sequence moved on; no base: nothing to tell)."""
    return commit.base is not None and run.event_seq != commit.base.event_seq


def check_commit_transitions(run: RunRecord, commit: Commit) -> None:
    """Shared by every backend: the first hop starts at the current status, every hop is legal."""
    cur = run.status
    for src, dst, _actor, _reason in commit.transitions:
        if src != cur:
            check_transition(cur, dst)  # raises with the real current state
        check_transition(src, dst)
        cur = dst
    if (
        commit.status is not None
        and commit.transitions
        and commit.transitions[-1][1] != commit.status
    ):
        raise ValueError("commit.status must equal the last transition's destination")
    if commit.status is not None and not commit.transitions and commit.status != run.status:
        check_transition(run.status, commit.status)


def check_node_writes(run_id: str, commit: Commit) -> None:
    """Shared by every backend: a commit journals node writes of its own run only (the fence
    it checks is that run's)."""
    for w in commit.node_writes:
        if w.run_id != run_id:
            raise ValueError(
                f"commit.node_writes holds a write of run {w.run_id!r} in a commit to run "
                f"{run_id!r}: journal each run's writes in its own commit"
            )


def claim_rank(owner: str | None, lease_token: int) -> int:
    """Claim order: 0 an orphan (its owner's lease expired mid-run), 1 a run released mid-flight,
    2 a run never started. Stranded work first: it may hold an effect in flight."""
    if owner is not None:
        return 0
    return 1 if lease_token > 0 else 2


def claim_order(run: RunRecord) -> tuple[int, int, float, str]:
    """The order claims take runs in: ``claim_rank``, then higher priority, then the oldest."""
    return (claim_rank(run.owner, run.lease_token), -run.priority, run.created_at, run.run_id)


def _json_copy(value: Any) -> Any:
    """A detached copy with exactly what a SQL backend would give back (JSON round trip)."""
    if value is None:
        return None
    if not value and isinstance(value, dict | list):
        return type(value)()
    return serde.loads(serde.dumps(value))


class MemoryStore(
    MemoryWorkers,
    MemoryTimers,
    MemoryQueueLimits,
    MemoryAudit,
    MemoryApprovals,
    MemoryBudget,
    MemoryPiiVault,
    MemoryApiKeys,
    MemoryRunCounts,
    MemoryRunUsage,
    MemoryLeaseTakeovers,
    MemoryEvaluationLog,
):
    """A RunStore in a dict. Not shared across processes; everything else is real."""

    def __init__(self, clock: Clock = SYSTEM_CLOCK) -> None:
        self.clock = clock
        self._runs: dict[str, RunRecord] = {}
        self._keys: dict[str, str] = {}
        self._checkpoints: dict[str, dict[int, KeptCheckpoint]] = {}
        self._node_writes: dict[tuple[str, int], dict[str, NodeWrite]] = {}
        self._effects: dict[str, dict[str, EffectRecord]] = {}
        self._events: dict[str, list[KeptEvent]] = {}
        self._transitions: dict[str, list[Transition]] = {}
        self._buckets: dict[str, tuple[float, float]] = {}
        self._flags: dict[str, Any] = {}
        self.wakeups = Wakeup()
        """Announces runs that became claimable (``store.wakeup``)."""

    async def setup(self) -> None:
        return None

    async def close(self) -> None:
        return None

    # -- runs ---------------------------------------------------------------------------
    async def create_run(
        self,
        run: RunRecord,
        checkpoint: Checkpoint,
        transitions: Sequence[tuple[RunStatus | None, RunStatus, str, str]],
        events: Sequence[Event] = (),
    ) -> tuple[RunRecord, bool]:
        if run.idempotency_key is not None and run.idempotency_key in self._keys:
            existing = self._runs[self._keys[run.idempotency_key]]
            check_same_submission(run, existing)
            return copy.copy(existing), False
        if run.run_id in self._runs:
            raise IdempotencyConflictError(f"run id {run.run_id!r} already exists")
        now = self.clock.now()
        rec = copy.deepcopy(run)
        rec.created_at = rec.updated_at = now
        self._runs[rec.run_id] = rec
        if rec.idempotency_key is not None:
            self._keys[rec.idempotency_key] = rec.run_id
        self._checkpoints[rec.run_id] = {checkpoint.step: keep(checkpoint, now)}
        self._transitions[rec.run_id] = [
            Transition(rec.run_id, i + 1, src, dst, now, actor, reason)
            for i, (src, dst, actor, reason) in enumerate(transitions)
        ]
        self._events[rec.run_id] = []
        self._append_events(rec, events, now)
        if rec.owner is None and rec.status in ACTIVE:
            self.wakeups.notify(rec.queue, rec.available_at)
        return copy.copy(rec), True

    def _run(self, run_id: str) -> RunRecord:
        try:
            return self._runs[run_id]
        except KeyError:
            raise RunNotFoundError(run_id) from None

    def _tenant_run(self, run_id: str, tenant: str | None) -> RunRecord:
        """A cursor's run; another tenant's is no run of a listing of ``tenant``'s."""
        run = self._run(run_id)
        if tenant is not None and run.tenant != tenant:
            raise RunNotFoundError(run_id)
        return run

    async def get_run(self, run_id: str) -> RunRecord:
        return copy.copy(self._run(run_id))

    async def get_run_by_key(self, idempotency_key: str) -> RunRecord | None:
        run_id = self._keys.get(idempotency_key)
        return None if run_id is None else copy.copy(self._runs[run_id])

    async def list_runs(
        self,
        *,
        status: Sequence[RunStatus] | None = None,
        workflow: str | None = None,
        parent_run_id: str | None = None,
        limit: int = 50,
        offset: int = 0,
        before: str | None = None,
        after: str | None = None,
        thread_id: str | None = None,
        tenant: str | None = None,
    ) -> list[RunRecord]:
        offset, limit = check_page(before, after, offset, limit)
        lower = upper = None
        if before is not None:
            upper = _position(self._tenant_run(before, tenant))
        if after is not None:
            lower = _position(self._tenant_run(after, tenant))
        runs = [
            r
            for r in self._runs.values()
            if (status is None or r.status in status)
            and (workflow is None or r.workflow == workflow)
            and (parent_run_id is None or r.parent_run_id == parent_run_id)
            and (thread_id is None or r.thread_id == thread_id)
            and (tenant is None or r.tenant == tenant)
            and (upper is None or _position(r) < upper)
            and (lower is None or _position(r) > lower)
        ]
        runs.sort(key=_position, reverse=True)
        if lower is not None:  # the page just newer than ``after``: the oldest of those
            runs = runs[max(len(runs) - max(limit, 0), 0) :]
            return [copy.copy(r) for r in runs]
        return [copy.copy(r) for r in runs[offset : offset + max(limit, 0)]]

    def _fence(self, run: RunRecord, token: int | None) -> None:
        if token is not None and run.lease_token != token:
            raise LeaseLostError(run.run_id, token)

    def _append_events(self, run: RunRecord, events: Sequence[Event], now: float) -> None:
        log = self._events[run.run_id]
        for ev in events:
            run.event_seq += 1
            data = dumps_record(ev.data)
            log.append(KeptEvent(run.event_seq, ev.type, ev.ts or now, ev.step, ev.node, data))

    async def commit(self, run_id: str, token: int | None, commit: Commit) -> RunRecord:
        run = self._run(run_id)
        self._fence(run, token)
        check_commit_transitions(run, commit)
        check_node_writes(run_id, commit)
        now = self.clock.now()
        if commit.checkpoint is not None:
            kept = keep(commit.checkpoint, now)
            self._checkpoints[run_id][kept.step] = kept
            run.step = max(run.step, kept.step)
        trs = self._transitions[run_id]
        for src, dst, actor, reason in commit.transitions:
            trs.append(Transition(run_id, len(trs) + 1, src, dst, now, actor, reason))
        if commit.status is not None:
            run.status = commit.status
        if commit.set_result:
            run.result = copy.deepcopy(commit.result)
        if commit.set_error:
            run.error = record_copy(commit.error)
        if commit.set_escalation:
            run.escalation = record_copy(commit.escalation)
        if commit.metadata is not None:
            run.metadata = {**run.metadata, **copy.deepcopy(commit.metadata)}
        if commit.clear_node_writes_for_step is not None:
            self._node_writes.pop((run_id, commit.clear_node_writes_for_step), None)
        for write in commit.node_writes:
            w = copy.deepcopy(write)
            w.created_at = now
            self._node_writes.setdefault((write.run_id, write.step), {})[write.task_id] = w
        self._append_events(run, commit.events, now)
        if token is None:
            run.lease_token += 1
            run.owner = None
            run.lease_expires_at = 0.0
        elif commit.release_lease:
            run.owner = None
            run.lease_expires_at = 0.0
        if commit.available_at is not None:
            run.available_at = commit.available_at
        run.updated_at = now
        if announces(token, commit, run):
            self.wakeups.notify(run.queue, run.available_at)
        return copy.copy(run)

    async def lease_and_commit(
        self, run_id: str, owner: str, ttl: float, token: int, commit: Commit
    ) -> RunRecord | None:
        """``LeaseCommit``: the lease and ``commit`` in one step of the event loop (nothing
        awaits in between), undone together when the commit is refused."""
        run = self._run(run_id)
        if run.owner is not None or run.lease_token != token or moved(run, commit):
            return None
        held = (run.owner, run.lease_token, run.lease_expires_at)
        run.owner, run.lease_token = owner, token + 1
        run.lease_expires_at = self.clock.now() + ttl
        try:
            return await self.commit(run_id, token + 1, commit)
        except BaseException:
            run.owner, run.lease_token, run.lease_expires_at = held
            raise

    async def delete_run(self, run_id: str) -> None:
        run = self._runs.pop(run_id, None)
        if run is None:
            return
        if run.idempotency_key is not None:
            self._keys.pop(run.idempotency_key, None)
        for table in (self._checkpoints, self._effects, self._events, self._transitions):
            table.pop(run_id, None)
        for k in [k for k in self._node_writes if k[0] == run_id]:
            del self._node_writes[k]
        await self.delete_pii(run_id)

    # -- leases -------------------------------------------------------------------------
    async def acquire_lease(self, run_id: str, owner: str, ttl: float) -> Lease | None:
        run = self._run(run_id)
        now = self.clock.now()
        if run.owner == owner and run.lease_expires_at > now:
            run.lease_expires_at = now + ttl
            return Lease(run_id, owner, run.lease_token, run.lease_expires_at)
        if run.owner is not None and run.lease_expires_at > now:
            return None
        run.owner = owner
        run.lease_token += 1
        run.lease_expires_at = now + ttl
        return Lease(run_id, owner, run.lease_token, run.lease_expires_at)

    async def renew_lease(self, run_id: str, owner: str, token: int, ttl: float) -> Lease:
        run = self._run(run_id)
        if run.lease_token != token or run.owner != owner:
            raise LeaseLostError(run_id, token)
        run.lease_expires_at = self.clock.now() + ttl
        return Lease(run_id, owner, token, run.lease_expires_at)

    async def release_lease(self, run_id: str, token: int) -> None:
        run = self._runs.get(run_id)
        if run is not None and run.lease_token == token:
            run.owner = None
            run.lease_expires_at = 0.0
            if run.status in ACTIVE:
                self.wakeups.notify(run.queue, run.available_at)

    def subscribe_wakeups(self, listener: Listener) -> Callable[[], None]:
        """``WakeSource``: hear of runs that became claimable (see ``store.wakeup``)."""
        return self.wakeups.subscribe(listener)

    async def renew_leases(self, owner: str, leases: Mapping[str, int], ttl: float) -> set[str]:
        expires = self.clock.now() + ttl
        lost: set[str] = set()
        for run_id, token in leases.items():
            run = self._runs.get(run_id)
            if run is None or run.lease_token != token or run.owner != owner:
                lost.add(run_id)
            else:
                run.lease_expires_at = expires
        return lost

    async def claim_runs(
        self,
        owner: str,
        ttl: float,
        *,
        workflows: Sequence[str] | None = None,
        limit: int = 10,
        exclude: Collection[str] = (),
        dead_owners: Collection[str] = (),
        queues: Sequence[str] | None = None,
    ) -> list[Lease]:
        now = self.clock.now()
        skip, dead = set(exclude), set(dead_owners)
        free = [
            run
            for run in self._runs.values()
            if run.status in ACTIVE
            and (workflows is None or run.workflow in workflows)
            and (queues is None or run.queue in queues)
            and (run.owner is None or run.lease_expires_at <= now or run.owner in dead)
            and run.available_at <= now
            and run.run_id not in skip
        ]
        free.sort(key=claim_order)
        out: list[Lease] = []
        for run in self._admit(free, max(limit, 0), dead):
            was, run.owner = run.owner, owner
            run.lease_token += 1
            run.lease_expires_at = now + ttl
            out.append(
                Lease(run.run_id, owner, run.lease_token, run.lease_expires_at, previous_owner=was)
            )
        return out

    async def lease_owners(self) -> list[str]:
        now = self.clock.now()
        return sorted(
            {
                run.owner
                for run in self._runs.values()
                if run.status in ACTIVE and run.owner is not None and run.lease_expires_at > now
            }
        )

    # -- checkpoints --------------------------------------------------------------------
    async def get_checkpoint(self, run_id: str, step: int) -> Checkpoint:
        self._run(run_id)
        try:
            kept = self._checkpoints[run_id][step]
        except KeyError:
            raise StepNotFoundError(run_id, step) from None
        return kept.checkpoint(run_id)

    async def latest_checkpoint(self, run_id: str) -> Checkpoint:
        self._run(run_id)
        cps = self._checkpoints[run_id]
        return cps[max(cps)].checkpoint(run_id)

    async def list_checkpoints(
        self,
        run_id: str,
        *,
        from_step: int = 0,
        to_step: int | None = None,
        limit: int | None = None,
    ) -> list[Checkpoint]:
        from_step = whole("from_step", from_step)
        to_step = None if to_step is None else whole("to_step", to_step)
        limit = None if limit is None else whole("limit", limit)
        self._run(run_id)
        cps = self._checkpoints[run_id]
        steps = [s for s in sorted(cps) if s >= from_step and (to_step is None or s <= to_step)]
        if limit is not None:
            steps = steps[: max(limit, 0)]
        return [cps[s].checkpoint(run_id) for s in steps]

    async def load_chain(self, run_id: str, step: int) -> list[Checkpoint]:
        step = whole_number("step", step)
        self._run(run_id)
        cps = self._checkpoints[run_id]
        if step not in cps:
            raise StepNotFoundError(run_id, step)
        snapshots = [s for s in cps if s <= step and cps[s].has_snapshot]
        base = max(snapshots) if snapshots else min(cps)  # no snapshot: replay from the oldest
        return [cps[s].checkpoint(run_id) for s in sorted(cps) if base <= s <= step]

    async def initial_checkpoints(self, run_ids: Sequence[str]) -> dict[str, Checkpoint]:
        found = {}
        for run_id in run_ids:
            kept = self._checkpoints.get(run_id, {}).get(0)
            if kept is not None:
                found[run_id] = kept.checkpoint(run_id)
        return found

    async def prune_checkpoints(self, run_id: str, keep_last: int, base: Checkpoint) -> int:
        self._run(run_id)
        cps = self._checkpoints[run_id]
        cps[base.step] = keep(base, base.created_at)
        doomed = [s for s in cps if s < base.step]
        for s in doomed:
            del cps[s]
        return len(doomed)

    async def purge_runs(
        self, finished_before: float, *, batch: int = purge.PURGE_BATCH, dry_run: bool = False
    ) -> int:
        if batch < 1:
            raise ValueError("purge batch must be >= 1")
        rows = [
            (r.run_id, r.parent_run_id, r.status.value, r.updated_at) for r in self._runs.values()
        ]
        doomed = purge.families_in_memory(rows, finished_before)
        if not dry_run:
            for run_id in doomed:
                await self.delete_run(run_id)
        return len(doomed)

    # -- node writes --------------------------------------------------------------------
    async def put_node_write(self, token: int | None, write: NodeWrite) -> None:
        run = self._run(write.run_id)
        self._fence(run, token)
        w = copy.deepcopy(write)
        w.created_at = self.clock.now()
        self._node_writes.setdefault((write.run_id, write.step), {})[write.task_id] = w

    async def get_node_writes(self, run_id: str, step: int) -> list[NodeWrite]:
        table = self._node_writes.get((run_id, step), {})
        return [copy.deepcopy(table[k]) for k in sorted(table)]

    # -- effects ------------------------------------------------------------------------
    async def record_intent(
        self, run_id: str, key: str, kind: str, request: Any, token: int | None = None
    ) -> tuple[EffectRecord, bool]:
        run = self._run(run_id)
        self._fence(run, token)
        table = self._effects.setdefault(run_id, {})
        now = self.clock.now()
        if key in table:
            rec = table[key]
            if rec.status == "pending":
                rec.attempts += 1
                rec.updated_at = now
            return copy.deepcopy(rec), False
        rec = EffectRecord(
            run_id, key, kind, "pending", copy.deepcopy(request), None, None, 1, now, now
        )
        table[key] = rec
        return copy.deepcopy(rec), True

    async def record_result(
        self,
        run_id: str,
        key: str,
        *,
        result: Any = None,
        error: dict[str, Any] | None = None,
        token: int | None = None,
    ) -> EffectRecord:
        run = self._run(run_id)
        self._fence(run, token)
        try:
            rec = self._effects[run_id][key]
        except KeyError:
            raise KeyError(f"no intent recorded for effect {key!r} of run {run_id}") from None
        rec.status = "failed" if error is not None else "done"
        rec.result = copy.deepcopy(result)
        rec.error = copy.deepcopy(error)
        rec.updated_at = self.clock.now()
        return copy.deepcopy(rec)

    async def get_effect(self, run_id: str, key: str) -> EffectRecord | None:
        rec = self._effects.get(run_id, {}).get(key)
        return copy.deepcopy(rec) if rec is not None else None

    async def list_effects(self, run_id: str) -> list[EffectRecord]:
        return [copy.deepcopy(r) for r in self._effects.get(run_id, {}).values()]

    # -- events -------------------------------------------------------------------------
    async def list_events(
        self, run_id: str, *, after_seq: int = 0, limit: int = 1000
    ) -> list[Event]:
        after_seq, limit = whole("after_seq", after_seq), whole("limit", limit)
        self._run(run_id)
        evs = self._events[run_id]
        start = bisect.bisect_right(evs, after_seq, key=lambda e: e.seq)  # seq ascending
        return [e.event(run_id) for e in evs[start : start + max(limit, 0)]]

    async def model_usage(self, run_id: str) -> list[ModelCallTotals]:
        self._run(run_id)
        return sum_model_calls(e.decoded() for e in self._events[run_id] if e.type == MODEL_CALL)

    async def step_model_calls(self, run_id: str, step: int) -> list[Event]:
        step = whole("step", step)
        return [
            e.event(run_id)
            for e in self._events.get(run_id, ())
            if e.type == MODEL_CALL and e.step == step
        ]

    async def list_transitions(self, run_id: str) -> list[Transition]:
        self._run(run_id)
        return list(self._transitions[run_id])

    # -- control plane ------------------------------------------------------------------
    async def take_tokens(self, bucket: str, rate: float, burst: float, n: float = 1.0) -> float:
        check_take(rate, burst, n)
        now = self.clock.now()
        tokens, updated = self._buckets.get(bucket, (burst, now))
        left, wait = take(refill(tokens, updated, now, rate, burst), n, rate)
        self._buckets[bucket] = (left, now)
        return wait

    async def set_flag(self, key: str, value: Any) -> None:
        if value is None:
            self._flags.pop(key, None)
        else:
            self._flags[key] = _json_copy(value)

    async def get_flags(self, prefix: str = "") -> dict[str, Any]:
        return {k: _json_copy(v) for k, v in self._flags.items() if k.startswith(prefix)}


def _position(run: RunRecord) -> tuple[float, str]:
    """Where a run sits in ``list_runs``' order (newest first: descending)."""
    return (run.created_at, run.run_id)
