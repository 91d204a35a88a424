"""The RunStore protocol: the one durable interface every backend implements.

Semantics every backend must honour (the conformance suite in ``tether.testing.store_conformance``
checks them against memory, SQLite and PostgreSQL):

* ``create_run`` is idempotent on ``idempotency_key``: the second call returns the first run and
  ``created=False``; a different ``input_hash`` under the same key raises
  ``IdempotencyConflictError``.
* Every mutating call that takes a ``token`` is *fenced*: it applies only while the run's
  ``lease_token`` equals ``token``, else raises ``LeaseLostError`` and applies nothing.
  ``token=None`` is an administrative write (operator cancel): it applies regardless and bumps the
  token, so a running owner's next write is rejected.
* ``acquire_lease`` succeeds when the run has no owner, its lease expired, or ``owner`` already
  holds it; each successful acquire by a new owner increments the token.
* ``renew_leases`` renews a whole runtime's leases in one statement; a heartbeat that renews
  run by run falls behind under load and lets live runs expire.
* ``commit`` is atomic: checkpoint, status, transitions, events and run fields land together or
  not at all. Transitions get consecutive sequence numbers per run.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

from tether.core.lifecycle import RunStatus
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
from tether.store.usage import ModelCallTotals


@runtime_checkable
class RunStore(Protocol):
    # -- lifecycle of the store -----------------------------------------------------------
    async def setup(self) -> None:
        """Create the schema / apply pending migrations (idempotent, safe to race)."""
        ...

    async def close(self) -> None: ...

    # -- runs -----------------------------------------------------------------------------
    async def create_run(
        self,
        run: RunRecord,
        checkpoint: Checkpoint,
        transitions: Sequence[tuple[RunStatus | None, RunStatus, str, str]],
        events: Sequence[Event] = (),
    ) -> tuple[RunRecord, bool]:
        """Insert a run with its step-0 checkpoint. Returns (run, created)."""
        ...

    async def get_run(self, run_id: str) -> RunRecord:
        """Raises RunNotFoundError."""
        ...

    async def get_run_by_key(self, idempotency_key: str) -> RunRecord | None:
        """The run created under ``idempotency_key``, or None."""
        ...

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
        """Newest first (by ``created_at``, then ``run_id``). ``thread_id`` lists the runs of
        one conversation thread (``RunRecord.thread_id``), read from an index; ``tenant`` only
        that tenant's runs (``RunRecord.tenant``; None: every run), read from an index. Page with a
        cursor rather than ``offset``: ``before=<run id>`` lists the runs older than that run
        (pass the last run of the previous page), ``after=<run id>`` the ``limit`` runs just
        newer than it (still newest first). A cursor naming no run raises RunNotFoundError; a
        cursor with an offset, or both cursors, InvalidInputError."""
        ...

    async def commit(self, run_id: str, token: int | None, commit: Commit) -> RunRecord:
        """Apply one atomic, fenced write. Returns the updated run."""
        ...

    async def delete_run(self, run_id: str) -> None: ...

    # -- leases ---------------------------------------------------------------------------
    async def acquire_lease(self, run_id: str, owner: str, ttl: float) -> Lease | None: ...

    async def renew_lease(self, run_id: str, owner: str, token: int, ttl: float) -> Lease:
        """Raises LeaseLostError when ``token`` no longer holds the run."""
        ...

    async def renew_leases(self, owner: str, leases: Mapping[str, int], ttl: float) -> set[str]:
        """Renew every ``{run_id: token}`` lease ``owner`` holds, in one statement (a batch),
        to expire ``ttl`` seconds from now. Returns the run ids whose lease is lost (another
        token holds the run, the owner differs, or the run is gone); those are left untouched."""
        ...

    async def release_lease(self, run_id: str, token: int) -> None: ...

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
        """Acquire leases on ACTIVE runs that nobody holds (never leased, or lease expired),
        at most ``limit``, never one in ``exclude`` (the runs the claimer executes already).
        A lease held by an owner in ``dead_owners`` (owners the claimer found provably dead,
        see :mod:`tether.core.liveness`) counts as expired. Only runs whose ``available_at``
        has come, of ``workflows`` and in ``queues`` (None: every one) are taken.

        Orphans come first: runs whose owner's lease expired, then runs released mid-flight
        (``lease_token > 0``), then never-started runs; within each, higher ``priority`` first,
        then the oldest (``created_at``). Every claimed run gets a new token and expires ``ttl``
        from now, in one statement; concurrent claimers never get the same run."""
        ...

    async def lease_owners(self) -> list[str]:
        """The distinct owners of unexpired leases on ACTIVE runs (to check their liveness)."""
        ...

    # -- checkpoints ----------------------------------------------------------------------
    async def get_checkpoint(self, run_id: str, step: int) -> Checkpoint:
        """Raises StepNotFoundError."""
        ...

    async def latest_checkpoint(self, run_id: str) -> Checkpoint: ...

    async def list_checkpoints(
        self,
        run_id: str,
        *,
        from_step: int = 0,
        to_step: int | None = None,
        limit: int | None = None,
    ) -> list[Checkpoint]:
        """Ascending by step (inclusive bounds), at most ``limit`` of them (the first)."""
        ...

    async def load_chain(self, run_id: str, step: int) -> list[Checkpoint]:
        """Nearest snapshot at or before ``step`` followed by every delta up to ``step``."""
        ...

    async def initial_checkpoints(self, run_ids: Sequence[str]) -> dict[str, Checkpoint]:
        """Step 0 of each of ``run_ids`` in one read, by run id (runs without one are left
        out): the claim loop loads a batch of never-executed runs at once, not one read each."""
        ...

    async def prune_checkpoints(self, run_id: str, keep_last: int, base: Checkpoint) -> int:
        """Drop checkpoints older than the last ``keep_last``; ``base`` (the oldest kept step,
        carrying a snapshot) replaces its stored row first. Returns rows removed."""
        ...

    async def purge_runs(
        self, finished_before: float, *, batch: int = 100, dry_run: bool = False
    ) -> int:
        """Delete finished (COMPLETED/CANCELLED/FAILED) runs last updated before the time, by
        whole families only: a run started by another run goes with its root, once every run
        of the family finished before the time (``store.purge``: a parked parent would start a
        purged child again). ``batch`` roots per transaction; ``dry_run`` deletes nothing.
        Returns the runs deleted (or that would be)."""
        ...

    # -- per-node write journal -----------------------------------------------------------
    async def put_node_write(self, token: int | None, write: NodeWrite) -> None:
        """Upsert by (run_id, step, task_id); fenced."""
        ...

    async def get_node_writes(self, run_id: str, step: int) -> list[NodeWrite]: ...

    # -- effect journal -------------------------------------------------------------------
    async def record_intent(
        self, run_id: str, key: str, kind: str, request: Any, token: int | None = None
    ) -> tuple[EffectRecord, bool]:
        """Insert a pending effect unless ``key`` exists. Returns (record, created).
        An existing pending record gets ``attempts`` incremented (a retry after a crash)."""
        ...

    async def record_result(
        self,
        run_id: str,
        key: str,
        *,
        result: Any = None,
        error: dict[str, Any] | None = None,
        token: int | None = None,
    ) -> EffectRecord:
        """Mark an effect done (or failed when ``error`` is given)."""
        ...

    async def get_effect(self, run_id: str, key: str) -> EffectRecord | None: ...

    async def list_effects(self, run_id: str) -> list[EffectRecord]: ...

    # -- events and transitions -----------------------------------------------------------
    async def list_events(
        self, run_id: str, *, after_seq: int = 0, limit: int = 1000
    ) -> list[Event]: ...

    async def model_usage(self, run_id: str) -> list[ModelCallTotals]:
        """The run's ``model_call`` events summed per model, by the store (``store.usage``):
        one query instead of reading every event. Raises RunNotFoundError."""
        ...

    async def step_model_calls(self, run_id: str, step: int) -> list[Event]:
        """The run's committed ``model_call`` events of ``step``, in order (none for a run or
        step that has none, unknown run included): a task that runs again reads whether the
        model calls it replays from the journal are counted already (``RunContext``)."""
        ...

    async def list_transitions(self, run_id: str) -> list[Transition]: ...


class LeaseRenewer(Protocol):
    """Blocking lease renewal on a database connection of its own, for a heartbeat thread: a
    busy or blocked event loop (a CPU-bound node) cannot delay it."""

    def renew_leases(self, owner: str, leases: Mapping[str, int], ttl: float) -> set[str]:
        """``RunStore.renew_leases``, blocking."""
        ...

    def close(self) -> None: ...


@runtime_checkable
class ThreadedRenewal(Protocol):
    """A store that can renew leases from another thread (SQLite files, PostgreSQL)."""

    def lease_renewer(self) -> LeaseRenewer | None:
        """A new renewer, to be used (and closed) by one thread only; None when this store
        cannot open a second connection (a private in-memory database)."""
        ...


@runtime_checkable
class CommitBatcher(Protocol):
    """A store that applies several runs' fenced commits in one round trip (PostgreSQL): the
    claim loop moves a claimed batch of never-started runs into their first phase at once."""

    async def commit_batch(self, items: Sequence[tuple[str, int, Commit]]) -> list[RunRecord]:
        """``commit(run_id, token, commit)`` of each item, atomically: all apply or none
        (then it raises the store's error, a refused fence or status included). Each commit
        carries its ``base`` (``Commit.base``) and neither metadata nor node writes. Returns
        the committed runs in the items' order."""
        ...


@runtime_checkable
class LeaseCommit(Protocol):
    """A store that takes a run's lease and applies a commit under it in one atomic write
    (memory, SQLite, PostgreSQL): a resume's lease and its answer land in one transaction."""

    async def lease_and_commit(
        self, run_id: str, owner: str, ttl: float, token: int, commit: Commit
    ) -> RunRecord | None:
        """Lease ``run_id`` to ``owner`` for ``ttl`` seconds and apply ``commit`` under that
        lease, atomically, only while the run has no owner and its fencing token is still
        ``token`` (the one the caller read: nobody leased it or wrote to it administratively
        since) and, given ``commit.base`` (the run as the caller read it), its ``event_seq``
        is still the base's (nothing was committed under that token since). The new lease's
        token is ``token + 1`` (as ``acquire_lease`` bumps it);
        ``commit.release_lease`` releases it in the same write. ``commit`` is checked as
        ``commit`` checks it (its node writes fenced by ``token``).

        Returns the committed run, or None when the run is owned or its token moved: then
        nothing is written (the caller takes the lease the usual way and reads again). A
        commit refused otherwise (an illegal transition) raises, and nothing is written
        either: the run keeps its owner, token and status."""
        ...
