"""Which envelope a run draws from: its root run's (``run:<root id>``), found by walking the
``parent_run_id`` chain (a compiled workflow used as a node, a run started from a run) once per
run and process, and cached."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, cast

from tether.core.capabilities import has_capability
from tether.core.errors import ConfigurationError, RunNotFoundError
from tether.core.governor import RUN_BUDGET_KEY
from tether.store.budget import LIMITS, BudgetStore, Ledger
from tether.store.protocol import RunStore
from tether.store.types import RunRecord

MAX_DEPTH = 256
"""A longer parent chain is taken for a cycle (refused)."""
CACHE_SIZE = 4096


@dataclass(frozen=True, slots=True)
class Envelope:
    root_id: str
    depth: int
    """0 for the root, 1 for its children, ..."""
    tenant: str | None
    """The root run's tenant (a child run is charged to its root's tenant)."""
    started_at: float
    """The root run's creation: wall-clock time counts from here."""
    overrides: dict[str, Any]
    """The root run's ``start(..., budget=...)``."""
    key: str = field(init=False, compare=False)
    """The envelope's ledger: ``run:<root id>``."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "key", f"run:{self.root_id}")


def ledger_store(store: RunStore) -> BudgetStore:
    """``store`` as a ``BudgetStore`` (asked on every governed call: decided once per class,
    ``has_capability``)."""
    if not has_capability(store, BudgetStore):
        raise ConfigurationError(
            f"{type(store).__name__} keeps no budget ledgers: budgets and quotas need a store "
            "with tether.store.budget.BudgetStore (MemoryStore, SqliteStore, PostgresStore)"
        )
    return cast(BudgetStore, store)


class Envelopes:
    """Root lookup and ledger opening, cached per process (both are stable for a run)."""

    def __init__(self) -> None:
        self._roots: dict[str, Envelope] = {}
        self._opened: set[str] = set()
        self._unlimited: set[str] = set()
        self._limited: dict[str, tuple[tuple[str, ...], frozenset[str]]] = {}

    async def of(self, store: RunStore, run: RunRecord) -> Envelope:
        found = self._roots.get(run.run_id)
        if found is not None:
            return found
        rec, depth = run, 0
        while rec.parent_run_id is not None and depth < MAX_DEPTH:
            parent = self._roots.get(rec.parent_run_id)
            if parent is not None:  # the parent's root is known: one step more
                env = Envelope(
                    parent.root_id,
                    parent.depth + depth + 1,
                    parent.tenant,
                    parent.started_at,
                    parent.overrides,
                )
                return self._keep(run.run_id, env)
            try:
                rec = await store.get_run(rec.parent_run_id)
            except RunNotFoundError:
                break  # the parent is gone (retention): this run is its own root now
            depth += 1
        overrides = dict(rec.metadata.get(RUN_BUDGET_KEY) or {})
        env = Envelope(rec.run_id, depth, rec.tenant, rec.created_at, overrides)
        return self._keep(run.run_id, env)

    def _keep(self, run_id: str, env: Envelope) -> Envelope:
        if len(self._roots) >= CACHE_SIZE:
            self._roots.clear()
        self._roots[run_id] = env
        return env

    async def open(
        self, store: BudgetStore, key: str, limits: dict[str, float], started_at: float
    ) -> Ledger | None:
        """Open ``key`` once per process; the ledger when this call opened it, else None."""
        if key in self._opened:
            return None
        row, _ = await store.open_ledger(key, limits, started_at)
        if len(self._opened) >= CACHE_SIZE:
            self._opened.clear()
            self._unlimited.clear()
            self._limited.clear()
        self._opened.add(key)
        if not row.limits:
            self._unlimited.add(key)
        self.saw(row)
        return row

    def dims(self, key: str) -> tuple[str, ...]:
        """The dimensions the ledger ``key`` was last seen limited in (``LIMITS`` order; empty
        when not seen): what a write expects to read back (``LedgerTake``)."""
        found = self._limited.get(key)
        return found[0] if found is not None else ()

    def saw(self, row: Ledger) -> None:
        """``row`` was read: remember which dimensions it is limited in."""
        found = self._limited.get(row.key)
        if found is None or row.limits.keys() != found[1]:
            dims = tuple(d for d in LIMITS if d in row.limits)
            self._limited[row.key] = (dims, frozenset(dims))

    def unlimited(self, key: str) -> bool:
        """Whether the ledger ``key`` had no limit at all when this process opened it (and none
        was seen since, ``limited``): its writes need nothing read back."""
        return key in self._unlimited

    def limited(self, key: str) -> None:
        """The ledger ``key`` was seen with a limit (set after it was opened): read it back
        after each write again."""
        self._unlimited.discard(key)

    def known(self, marker: str) -> bool:
        """Whether this process saw ``marker`` marked (``marked`` without asking the store:
        False may still be marked elsewhere)."""
        return marker in self._opened

    async def marked(self, store: BudgetStore, marker: str) -> bool:
        """Whether ``marker`` was marked (``first_time``), here or by any process."""
        if marker in self._opened:
            return True
        if await store.get_ledger(marker) is None:
            return False
        self._opened.add(marker)
        return True

    async def first_time(self, store: BudgetStore, marker: str, at: float) -> bool:
        """True for the one caller (across processes) that marks ``marker`` first: a run is
        counted once (a child run, a tenant's run) however often it executes."""
        if marker in self._opened:
            return False
        _, created = await store.open_ledger(marker, {}, at)
        self._opened.add(marker)
        return created
