"""The hash-chained audit log on real SQLite and PostgreSQL: a chain verifies; changing,
deleting or reordering one record (raw SQL behind the store's back) is found and named;
writers in two processes keep one chain."""

from __future__ import annotations

import asyncio
import itertools
import multiprocessing
from typing import Any

import pytest

from tether.governance import StoreAuditLog, verify_all, verify_audit
from tether.governance.audit import GENESIS, record_hash
from tether.store.protocol import RunStore
from tether.store.url import open_store

from .audit_support import Db, db_fixture  # noqa: F401  (the fixture "db")

T0 = 1_700_000_000.0


async def fill(store: RunStore, n: int, tenant: str | None = "acme") -> StoreAuditLog:
    log = StoreAuditLog(store)
    for i in range(1, n + 1):
        data = {"i": i, "tool": "refund", "args": {"order": i}, "why": "café ✓"}
        await log.append("policy_decision", data, tenant=tenant, run_id=f"r{i % 3}", ts=T0 + i)
    return log


async def opened(db: Db) -> RunStore:
    store = db.open()
    await store.setup()
    return store


async def test_a_chain_verifies_and_pages(db: Db) -> None:
    store = await opened(db)
    try:
        log = await fill(store, 12)
        await fill(store, 3, tenant=None)  # runs without a tenant: a chain of their own
        res = await verify_audit(store, "acme")
        assert res.ok and res.records == 12 and res.head_seq == 12
        rows = (await log.records(tenant="acme", limit=100)).records
        assert rows[0].prev_hash == GENESIS
        assert all(b.prev_hash == a.hash for a, b in itertools.pairwise(rows))
        assert rows[-1].hash == res.head_hash
        assert rows[4].data == {"i": 5, "tool": "refund", "args": {"order": 5}, "why": "café ✓"}
        # paged: 5 + 5 + 2, in chain order
        seen, after = [], None
        while True:
            page = await log.records(tenant="acme", after=after, limit=5)
            seen += [r.seq for r in page.records]
            if page.next_after is None:
                break
            after = page.next_after
        assert seen == list(range(1, 13))
        assert [r.seq for r in (await log.records(tenant="acme", run_id="r1")).records] == [
            1,
            4,
            7,
            10,
        ]
        since = (await log.records(tenant="acme", since=T0 + 11)).records
        assert [r.seq for r in since] == [11, 12]
        every = await verify_all(store)
        assert [(v.tenant, v.ok, v.records) for v in every] == [("", True, 3), ("acme", True, 12)]
    finally:
        await store.close()


async def test_changed_data_is_named(db: Db) -> None:
    store = await opened(db)
    try:
        await fill(store, 8)
        db.sql("UPDATE {t} SET data = ? WHERE tenant = 'acme' AND seq = 4", ('{"i":4000}',))
        res = await verify_audit(store, "acme")
        assert not res.ok and res.broken is not None
        assert (res.broken.seq, res.broken.reason) == (4, "hash_mismatch")
        assert res.records == 3 and res.head_seq == 3
        assert "audit record 4 of tenant 'acme'" in res.broken.message
    finally:
        await store.close()


async def test_a_record_rewritten_with_a_fresh_hash_breaks_the_next_link(db: Db) -> None:
    store = await opened(db)
    try:
        await fill(store, 8)
        ((seq, ts, run_id, kind, prev),) = db.sql(
            "SELECT seq, ts, run_id, kind, prev_hash FROM {t} WHERE tenant = 'acme' AND seq = 5"
        )
        forged = '{"i":5,"tool":"nothing to see"}'
        digest = record_hash(seq, float(ts), "acme", run_id, kind, forged, prev)
        db.sql(
            "UPDATE {t} SET data = ?, hash = ? WHERE tenant = 'acme' AND seq = 5", (forged, digest)
        )
        res = await verify_audit(store, "acme")
        assert res.broken is not None
        assert (res.broken.seq, res.broken.reason) == (6, "prev_hash_mismatch")
    finally:
        await store.close()


async def test_a_deleted_record_is_named(db: Db) -> None:
    store = await opened(db)
    try:
        await fill(store, 8)
        db.sql("DELETE FROM {t} WHERE tenant = 'acme' AND seq = 3")
        res = await verify_audit(store, "acme")
        assert res.broken is not None and res.broken.record is None
        assert (res.broken.seq, res.broken.reason) == (3, "missing")
        assert "jumps from 2 to 4" in res.broken.message
    finally:
        await store.close()


async def test_reordered_records_are_named(db: Db) -> None:
    store = await opened(db)
    try:
        await fill(store, 8)
        # swap the positions of records 6 and 7
        db.sql("UPDATE {t} SET seq = -1 WHERE tenant = 'acme' AND seq = 6")
        db.sql("UPDATE {t} SET seq = 6 WHERE tenant = 'acme' AND seq = 7")
        db.sql("UPDATE {t} SET seq = 7 WHERE tenant = 'acme' AND seq = -1")
        res = await verify_audit(store, "acme")
        assert res.broken is not None
        assert (res.broken.seq, res.broken.reason) == (6, "hash_mismatch")
        assert res.broken.record is not None and res.broken.record.data["i"] == 7
    finally:
        await store.close()


async def test_a_cut_tail_is_found_against_an_anchor(db: Db) -> None:
    store = await opened(db)
    try:
        await fill(store, 6)
        noted = await verify_audit(store, "acme")
        anchor = (noted.head_seq, noted.head_hash)
        assert (await verify_audit(store, "acme", anchor=anchor)).ok
        db.sql("DELETE FROM {t} WHERE tenant = 'acme' AND seq >= 5")
        assert (await verify_audit(store, "acme")).ok  # a chain cut at its end still links
        res = await verify_audit(store, "acme", anchor=anchor)
        assert res.broken is not None
        assert (res.broken.seq, res.broken.reason) == (6, "anchor_mismatch")
    finally:
        await store.close()


async def test_two_runtimes_appending_at_once_keep_one_chain(db: Db) -> None:
    stores = [await opened(db) for _ in range(2)]
    try:
        logs = [StoreAuditLog(s) for s in stores]

        async def write(w: int) -> None:
            for i in range(40):
                await logs[w].append("tick", {"w": w, "i": i}, tenant="acme", ts=T0 + i)

        await asyncio.gather(write(0), write(1))
        res = await verify_audit(stores[0], "acme")
        assert res.ok and res.records == 80
        rows = (await logs[1].records(tenant="acme", limit=100)).records
        assert sorted((r.data["w"], r.data["i"]) for r in rows) == sorted(
            (w, i) for w in range(2) for i in range(40)
        )
    finally:
        for s in stores:
            await s.close()


def _append_many(url: str, writer: int, n: int, barrier: Any) -> None:
    async def main() -> None:
        store = open_store(url)
        await store.setup()
        log = StoreAuditLog(store)
        barrier.wait()
        for i in range(n):
            await log.append("tick", {"w": writer, "i": i}, tenant="acme", ts=T0 + i)
        await store.close()

    asyncio.run(main())


def test_two_processes_appending_at_once_keep_one_chain(db: Db) -> None:
    asyncio.run(_setup(db))
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(2)
    procs = [ctx.Process(target=_append_many, args=(db.url, w, 60, barrier)) for w in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=300)
        assert p.exitcode == 0
    seqs = [r[0] for r in db.sql("SELECT seq FROM {t} WHERE tenant = 'acme' ORDER BY seq")]
    assert seqs == list(range(1, 121))

    async def check() -> None:
        store = await opened(db)
        try:
            res = await verify_audit(store, "acme")
            assert res.ok and res.records == 120
        finally:
            await store.close()

    asyncio.run(check())


async def _setup(db: Db) -> None:
    store = await opened(db)
    await store.close()


async def test_data_json_cannot_carry_is_recorded_as_text() -> None:
    from tether.store.memory import MemoryStore

    store = MemoryStore()
    log = StoreAuditLog(store)
    row = await log.append("odd", {"s": {3, 1}, "b": b"\x01", 2: float("nan"), "t": (1, 2)}, ts=T0)
    assert row.data == {"s": [1, 3], "b": "01", "2": "nan", "t": [1, 2]}
    assert (await verify_audit(store)).ok


def test_a_store_without_an_audit_log_is_refused_clearly() -> None:
    from tether.core.errors import ConfigurationError

    with pytest.raises(ConfigurationError, match="keeps no audit log"):
        StoreAuditLog(object())


async def test_a_record_moved_before_its_place_is_named_as_moved(db: Db) -> None:
    store = await opened(db)
    try:
        await fill(store, 4)
        db.sql("UPDATE {t} SET seq = 0 WHERE tenant = 'acme' AND seq = 1")
        res = await verify_audit(store, "acme")
        assert res.broken is not None
        assert (res.broken.seq, res.broken.reason) == (1, "hash_mismatch")
        assert "is out of place" in res.broken.message and "position 0" in res.broken.message
    finally:
        await store.close()


async def test_what_a_record_cannot_hold_is_refused_before_it_is_written(db: Db) -> None:
    """A NUL or a lone surrogate in the kind, tenant or run, or a time that is not finite, was
    a driver error (PostgreSQL), a NOT NULL failure (SQLite, NaN) or a record that no chain
    could verify; now InvalidInputError naming it, on every backend, and nothing is written."""
    from tether.core.errors import InvalidInputError

    store = await opened(db)
    try:
        log = StoreAuditLog(store)
        bad: list[dict[str, Any]] = [
            {"kind": "a\x00b"},
            {"kind": "a\ud800"},
            {"kind": ""},
            {"tenant": "acme\x00"},
            {"tenant": "t\udc80"},
            {"run_id": "r\x00"},
            {"ts": float("nan")},
            {"ts": float("inf")},
        ]
        for fields in bad:
            args: dict[str, Any] = {"kind": "k", "tenant": "acme", "run_id": "r1", "ts": T0}
            args.update(fields)
            kind = args.pop("kind")
            with pytest.raises(InvalidInputError, match=r"kind|tenant|run_id|ts"):
                await log.append(kind, {"x": "a\x00b"}, **args)
        assert await verify_all(store) == []  # nothing was written
        row = await log.append("k", {"x": "a\x00b\ud800"}, tenant="acme", ts=T0)  # data: JSON
        assert (await verify_audit(store, "acme")).ok and row.data == {"x": "a\x00b\ud800"}
    finally:
        await store.close()
