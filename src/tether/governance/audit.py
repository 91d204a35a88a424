"""The hash-chained audit log: every governance decision (policy verdicts, approvals, trips,
budget changes, signed-message checks) as an append-only record in the store.

Each tenant has one chain. Record ``n`` holds the SHA-256 ``hash`` of its own ``seq``, ``ts``,
``tenant``, ``run_id``, ``kind``, canonical JSON ``data`` and ``prev_hash`` (record ``n - 1``'s
hash; 64 zeros for the first), so changing, removing or reordering any record breaks the chain
at that record (``verify_audit``). Appends from many processes keep one chain: a record's
position ``(tenant, seq)`` is the table's primary key, so of two writers that computed the same
next record one insert wins and the other re-reads the head and chains after it.
"""

from __future__ import annotations

import hashlib
import json
import math
import weakref
from dataclasses import dataclass
from json.encoder import encode_basestring_ascii
from typing import TYPE_CHECKING, Any, cast

from tether.core.capabilities import has_capability
from tether.core.errors import (
    ConfigurationError,
    InvalidInputError,
    RunNotFoundError,
    StoreError,
)
from tether.governance.scope import AuditSink, RunScope
from tether.governance.signing import canonical_json
from tether.graph.state import check_text
from tether.store.audit import NO_TENANT, AuditRow, AuditStore

if TYPE_CHECKING:
    from tether.governance.audit_verify import AuditVerification

GENESIS = "0" * 64
"""The ``prev_hash`` of a chain's first record."""
_HASHED = json.JSONEncoder(separators=(",", ":"), ensure_ascii=True)
"""The text a record's hash covers (``json.dumps`` with these settings, built once)."""
MAX_APPEND_ATTEMPTS = 10_000
"""Positions tried before an append gives up (each loss means another writer appended)."""


def record_hash(
    seq: int, ts: float, tenant: str, run_id: str | None, kind: str, data_json: str, prev: str
) -> str:
    """The SHA-256 (hex) of ``_HASHED.encode(["tether-audit/1", seq, ts, tenant, run_id, kind,
    data_json, prev])``: a record at ``seq`` carries it."""
    return hashlib.sha256(_hashed_text(seq, ts, tenant, run_id, kind, data_json, prev)).hexdigest()


def _hashed_text(
    seq: Any, ts: Any, tenant: Any, run_id: Any, kind: Any, data_json: Any, prev: Any
) -> bytes:
    """The bytes the hash covers, written field by field for the usual types (an ``int`` seq,
    a finite ``float`` ts, ``str`` texts: a third of what the encoder costs per record), with
    the very escaping and number text ``_HASHED`` uses; anything else goes through it."""
    if (
        type(seq) is int
        and type(ts) is float
        and math.isfinite(ts)
        and type(tenant) is str
        and (run_id is None or type(run_id) is str)
        and type(kind) is str
        and type(data_json) is str
        and type(prev) is str
    ):
        q = encode_basestring_ascii
        run = "null" if run_id is None else q(run_id)
        text = (
            f'["tether-audit/1",{seq!r},{ts!r},{q(tenant)},{run},{q(kind)},'
            f"{q(data_json)},{q(prev)}]"
        )
    else:
        body = ["tether-audit/1", seq, ts, tenant, run_id, kind, data_json, prev]
        text = _HASHED.encode(body)
    return text.encode()


def row_hash(row: AuditRow) -> str:
    """What ``row.hash`` must be, recomputed from the row's contents."""
    r = row
    return record_hash(r.seq, r.ts, r.tenant, r.run_id, r.kind, r.data_json, r.prev_hash)


def audit_store(store: Any) -> AuditStore:
    """``store`` as an ``AuditStore`` (asked on every record: decided once per class,
    ``has_capability``)."""
    if not has_capability(store, AuditStore):
        raise ConfigurationError(
            f"{type(store).__name__} keeps no audit log (tether.store.audit.AuditStore); use "
            "a MemoryStore, SqliteStore or PostgresStore, or turn auditing off with "
            "Governance(audit=AuditSink())"
        )
    return cast(AuditStore, store)


_CHECKED: set[tuple[str, str | None, str | None]] = set()
"""``(kind, tenant, run_id)`` texts ``_check_record`` already passed (a run's records repeat
them): checked again only when new."""
_CHECKED_MAX = 4096


def _check_record(kind: Any, tenant: Any, run_id: Any, ts: Any) -> None:
    texts = (kind, tenant, run_id)
    known = type(kind) is str and type(tenant) in _TEXT and type(run_id) in _TEXT
    if not (known and texts in _CHECKED):
        _check_texts(kind, tenant, run_id)
        if known:
            if len(_CHECKED) >= _CHECKED_MAX:
                _CHECKED.clear()
            _CHECKED.add(texts)
    if isinstance(ts, bool) or not isinstance(ts, int | float) or not math.isfinite(ts):
        raise InvalidInputError(
            f"an audit record's ts is a finite Unix time in seconds (clock.now()), got {ts!r}"
        )


_TEXT = (str, type(None))


def _check_texts(kind: Any, tenant: Any, run_id: Any) -> None:
    if not isinstance(kind, str) or not kind:
        raise InvalidInputError(f"an audit record's kind is a non-empty string, got {kind!r}")
    for name, value in (("tenant", tenant), ("run_id", run_id)):
        if value is not None and not isinstance(value, str):
            raise InvalidInputError(
                f"an audit record's {name} is a string or None, got {type(value).__name__}"
            )
    check_text(kind=kind, tenant=tenant, run_id=run_id)


@dataclass(frozen=True, slots=True)
class AuditPage:
    records: list[AuditRow]
    next_after: tuple[str, int] | None
    """Pass as ``after=`` for the next page; None: this was the last page."""


class StoreAuditLog(AuditSink):
    """An ``AuditSink`` writing hash-chained records to a store: ``store`` when given, else the
    store of the run being governed. The default sink of ``Governance``."""

    def __init__(self, store: Any = None) -> None:
        self.store = None if store is None else audit_store(store)
        # the last record this log wrote per (store, tenant): never ahead of the store's head
        # (only this log's own appends move it), so at worst one insert loses and re-reads
        self._heads: weakref.WeakKeyDictionary[Any, dict[str, tuple[int, str]]] = (
            weakref.WeakKeyDictionary()
        )
        self._tenants: dict[str, str | None] = {}

    def _store(self, store: Any = None) -> AuditStore:
        if store is not None:
            return audit_store(store)
        if self.store is None:
            raise ConfigurationError(
                "this StoreAuditLog has no store: give it one, StoreAuditLog(store)"
            )
        return self.store

    async def record(self, scope: RunScope, kind: str, data: dict[str, Any]) -> None:
        run = scope.run
        tenant = run.tenant
        if tenant is None and run.parent_run_id is not None:
            tenant = await self._tenant(scope)
        await self.append(
            kind,
            data,
            tenant=tenant,
            run_id=run.run_id,
            ts=scope.clock.now(),
            store=self.store if self.store is not None else scope.store,
        )

    async def _tenant(self, scope: RunScope) -> str | None:
        """The run's tenant; a child run started without one audits into its root's chain."""
        run = scope.run
        if run.tenant is not None or run.parent_run_id is None:
            return run.tenant
        if run.run_id not in self._tenants:
            if len(self._tenants) >= 4096:
                self._tenants.clear()
            tenant: str | None = None
            parent: str | None = run.parent_run_id
            hops = 0
            while parent is not None and tenant is None and hops < 64:
                try:
                    up = await scope.store.get_run(parent)
                except RunNotFoundError:
                    break
                tenant, parent, hops = up.tenant, up.parent_run_id, hops + 1
            self._tenants[run.run_id] = tenant
        return self._tenants[run.run_id]

    async def append(
        self,
        kind: str,
        data: Any,
        *,
        tenant: str | None = None,
        run_id: str | None = None,
        ts: float,
        store: Any = None,
    ) -> AuditRow:
        """Chain one record onto ``tenant``'s log (None: runs without a tenant); returns it.
        ``kind``, ``tenant`` and ``run_id`` are text (no NUL, no lone surrogate), ``ts`` a
        finite time: ``InvalidInputError`` otherwise, before anything is written."""
        _check_record(kind, tenant, run_id, ts)
        st = self._store(store)
        chain = NO_TENANT if tenant is None else tenant
        data_json = canonical_json(data)  # lenient: it names no path, it raises nothing
        heads = self._heads_of(st)
        head = heads.get(chain) if heads is not None else None
        for _ in range(MAX_APPEND_ATTEMPTS):
            if head is None:
                last = await st.audit_head(chain)
                head = (0, GENESIS) if last is None else (last.seq, last.hash)
            seq, prev = head[0] + 1, head[1]
            digest = record_hash(seq, ts, chain, run_id, kind, data_json, prev)
            row = AuditRow(chain, seq, ts, run_id, kind, data_json, prev, digest)
            if await st.append_audit(row):
                if heads is not None:
                    heads[chain] = (seq, digest)
                return row
            head = None  # another writer took that position: chain after the newest record
        raise StoreError(
            f"could not append to the audit chain of tenant {chain!r}: {MAX_APPEND_ATTEMPTS} "
            "positions were taken by other writers first"
        )

    def _heads_of(self, store: AuditStore) -> dict[str, tuple[int, str]] | None:
        try:  # a lookup first: ``setdefault`` makes a weak reference on every call
            heads = self._heads.get(store)
            return heads if heads is not None else self._heads.setdefault(store, {})
        except TypeError:  # a store that takes no weak reference: read the head every time
            return None

    async def records(
        self,
        *,
        tenant: str | None = None,
        run_id: str | None = None,
        since: float | None = None,
        after: tuple[str, int] | None = None,
        limit: int = 100,
    ) -> AuditPage:
        """One page of records by ``(tenant, seq)``: of ``tenant`` (None: all; ``""``: runs
        without a tenant), of ``run_id``, written at or after ``since`` (a timestamp)."""
        if limit < 1:
            raise ConfigurationError(f"limit must be at least 1, got {limit}")
        rows = await self._store().list_audit(
            tenant, run_id=run_id, since=since, after=after, limit=limit
        )
        last = (rows[-1].tenant, rows[-1].seq) if len(rows) == limit else None
        return AuditPage(rows, last)

    async def verify(
        self, tenant: str | None = None, *, anchor: tuple[int, str] | None = None
    ) -> AuditVerification:
        """``verify_audit`` of this log's store."""
        from tether.governance.audit_verify import verify_audit

        return await verify_audit(self._store(), tenant, anchor=anchor)
