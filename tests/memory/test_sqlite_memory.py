"""The SQLite memory store's own guarantees: its vector index (usearch, beside the database)
survives closes, SIGKILLs and corruption by catching up from the table, is shared correctly
between two processes' stores on one file, filters by scope on the approximate path, and the
memory tables live in the run store's own file."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from tether.core.errors import ConfigurationError
from tether.llm.embeddings import HashingEmbedder
from tether.memory import VECTOR_ONLY, MemoryScope, NewMemory, SqliteMemory

ACME = MemoryScope("acme")


def texts(n: int, tag: str = "") -> list[str]:
    return [f"memory {tag}{i} about topic{i % 7} with code C{i * 37 % 1000}" for i in range(n)]


async def opened(path: Path, **kw: object) -> SqliteMemory:
    m = SqliteMemory(str(path), embedder=HashingEmbedder(64), **kw)  # type: ignore[arg-type]
    await m.setup()
    return m


async def all_found_by_vector(m: SqliteMemory, scope: MemoryScope) -> None:
    """A search by each memory's own text finds it first for nearly all of them, and then the
    index is in step with the table (the same keys, each under its own vector).

    Only nearly all: HNSW is approximate, and with these deliberately similar texts (four words
    shared by all) its neighbour pruning can leave a node that no search reaches; which one
    depends on the order of concurrent inserts. Exactness is what the second check proves."""
    page, _ = await m.list(scope, limit=10_000)
    assert page
    found = 0
    for memory in page:
        hits = await m.search(
            memory.text, scope=scope, k=1, ranking=VECTOR_ONLY, record_access=False
        )
        found += bool(hits) and hits[0].memory.text == memory.text
    # a search catches the index up with the table first (other stores' writes included)
    assert found >= 0.9 * len(page), f"{found} of {len(page)} found by their own vector"
    assert m.ann is not None
    with sqlite3.connect(m.path) as db:
        rows = db.execute("SELECT key, embedding FROM tether_memories").fetchall()
    assert m.ann.keys() == {int(key) for key, _ in rows}
    for key, blob in rows:
        held = m.ann.vector(int(key))
        assert held is not None and held.tobytes() == blob, key


async def test_index_saved_on_close_and_reloaded(tmp_path: Path) -> None:
    db = tmp_path / "t.db"
    m = await opened(db, exact_below=0)
    await m.add_many([NewMemory(t) for t in texts(40)], scope=ACME)
    await m.close()
    files = sorted(p.name for p in tmp_path.iterdir() if p.name.endswith(".usearch"))
    assert len(files) == 1
    m = await opened(db, exact_below=0)
    assert m.ann is not None and not m.ann.rebuilt and len(m.ann) == 40
    await all_found_by_vector(m, ACME)
    await m.close()


_WRITER = textwrap.dedent(
    """
    import asyncio, sys
    from tether.llm.embeddings import HashingEmbedder
    from tether.memory import MemoryScope, NewMemory, SqliteMemory

    async def main(path):
        m = SqliteMemory(path, embedder=HashingEmbedder(64), save_every=25, exact_below=0)
        await m.setup()
        i = 0
        while True:
            await m.add_many(
                [NewMemory(f"memory w{i + j} about topic{j} with code C{(i + j) * 37 % 1000}")
                 for j in range(5)],
                scope=MemoryScope("acme"),
            )
            if i % 15 == 0:
                await m.forget([(await m.list(MemoryScope("acme"), limit=1))[0][0].id],
                               scope=MemoryScope("acme"))
            i += 5
            print(i, flush=True)

    asyncio.run(main(sys.argv[1]))
    """
)


async def test_sigkill_mid_writes_loses_nothing(tmp_path: Path) -> None:
    """A writer is SIGKILLed while adding (its index saved now and then, never at the end):
    reopened, the index holds exactly the table's memories (the log replayed after the newest
    saved file), and every memory is found by its own vector."""
    db = tmp_path / "t.db"
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", _WRITER, str(db), stdout=asyncio.subprocess.PIPE
    )
    assert proc.stdout is not None
    deadline = time.monotonic() + 120
    written = 0
    while written < 160 and time.monotonic() < deadline:
        line = await asyncio.wait_for(proc.stdout.readline(), 120)
        if not line:
            break
        written = int(line)
    os.kill(proc.pid, signal.SIGKILL)
    await proc.wait()
    assert written >= 160, "the writer did not get going"
    m = await opened(db, exact_below=0)
    assert m.ann is not None and not m.ann.rebuilt  # caught up from a saved file + the log
    rows = await m.count(ACME)
    assert len(m.ann) == rows >= written - written // 15 - 1
    await all_found_by_vector(m, ACME)
    await m.close()


async def test_corrupt_index_file_is_rebuilt(tmp_path: Path) -> None:
    db = tmp_path / "t.db"
    m = await opened(db, exact_below=0)
    await m.add_many([NewMemory(t) for t in texts(30)], scope=ACME)
    await m.close()
    (index_file,) = [p for p in tmp_path.iterdir() if p.name.endswith(".usearch")]
    index_file.write_bytes(b"\x00garbage" * 10)
    m = await opened(db, exact_below=0)
    assert m.ann is not None and m.ann.rebuilt and len(m.ann) == 30
    await all_found_by_vector(m, ACME)
    await m.close()
    index_file.unlink(missing_ok=True)
    for p in tmp_path.iterdir():
        if p.name.endswith(".usearch"):
            p.unlink()
    m = await opened(db, exact_below=0)  # no file at all: rebuilt too
    assert m.ann is not None and m.ann.rebuilt and len(m.ann) == 30
    await m.close()


async def test_two_stores_on_one_file_see_each_other(tmp_path: Path) -> None:
    db = tmp_path / "t.db"
    a = await opened(db, exact_below=0, save_every=10)
    b = await opened(db, exact_below=0, save_every=10)
    added = await a.add_many([NewMemory(t) for t in texts(25, "a")], scope=ACME)
    await all_found_by_vector(b, ACME)  # b catches up from the log a wrote
    assert await b.forget([added[0].id], scope=ACME) == 1
    hits = await a.search(added[0].text, scope=ACME, k=5, ranking=VECTOR_ONLY)
    assert added[0].id not in {h.memory.id for h in hits}
    await b.add_many([NewMemory(t) for t in texts(25, "b")], scope=ACME)  # b saves, trims
    await all_found_by_vector(a, ACME)  # a's position fell behind the trimmed log: reloads
    await a.close()
    await b.close()


async def test_approximate_path_filters_by_scope(tmp_path: Path) -> None:
    """Above ``exact_below`` the HNSW index is asked for more until enough hits are in scope:
    a small tenant among big ones still gets its own nearest memories, and only those."""
    m = await opened(tmp_path / "t.db", exact_below=5)
    big = [MemoryScope("big1"), MemoryScope("big2")]
    for s in big:
        await m.add_many([NewMemory(t) for t in texts(300, s.tenant or "")], scope=s)
    small = MemoryScope("small", agent="x")
    mine = await m.add_many([NewMemory(t) for t in texts(8, "s")], scope=small)
    await m.add_many([NewMemory(t) for t in texts(8, "s")], scope=MemoryScope("small", agent="y"))
    for memory in mine:
        hits = await m.search(memory.text, scope=small, k=8, ranking=VECTOR_ONLY)
        assert hits[0].memory.id == memory.id
        assert {h.memory.scope for h in hits} == {small}
        assert len(hits) == 8
    await m.close()


async def test_exact_path_ranks_from_the_index_and_reads_what_it_lacks_from_the_table(
    tmp_path: Path,
) -> None:
    """Under ``exact_below`` a scope is scanned exactly with the vectors the index holds in
    memory; a memory the index does not hold (written by another process after it caught up)
    is read from the table, so the ranking is the same either way, scope filter included."""
    m = await opened(tmp_path / "t.db")
    await m.add_many([NewMemory(t) for t in texts(40, "x")], scope=MemoryScope("other"))
    mine = await m.add_many([NewMemory(t) for t in texts(40, "m")], scope=ACME)

    async def ranked(query: str) -> list[str]:
        hits = await m.search(query, scope=ACME, k=40, ranking=VECTOR_ONLY, record_access=False)
        return [h.memory.id for h in hits]

    queries = [mine[3].text, mine[17].text, "topic4 with code C111"]
    before = [await ranked(q) for q in queries]
    assert all(set(r) == {x.id for x in mine} for r in before)  # the scope, all of it
    assert before[0][0] == mine[3].id and before[1][0] == mine[17].id
    assert m.ann is not None
    with sqlite3.connect(m.path) as db:
        rows = db.execute("SELECT key, id, embedding FROM tether_memories").fetchall()
    lacking = {mine[3].id, mine[30].id}  # as if another process wrote them after it caught up
    m.ann._index = m.ann._new()
    for key, id_, blob in rows:
        if id_ not in lacking:
            m.ann._index.add(key, np.frombuffer(blob, dtype=np.float32))
    assert sum(m.ann.vector(key) is None for key, _, _ in rows) == 2
    assert [await ranked(q) for q in queries] == before
    await m.close()


async def test_memory_tables_share_the_run_store_file(tmp_path: Path) -> None:
    from tether.store import SqliteStore

    db = tmp_path / "tether.db"
    store = SqliteStore(str(db))
    await store.setup()
    m = await opened(db)
    await m.add("shared file", scope=ACME)
    await m.kg.assert_fact("a", "b", "c", scope=ACME)
    await m.close()
    await store.close()
    tables = {r[0] for r in sqlite3.connect(db).execute("SELECT name FROM sqlite_master")}
    assert {"tether_runs", "tether_memories", "tether_kg_facts", "tether_memory_schema"} <= tables
    m = await opened(db)  # a second setup is a no-op migration
    assert await m.count(ACME) == 1
    await m.close()


async def test_embedder_of_other_dimensions_is_refused(tmp_path: Path) -> None:
    db = tmp_path / "t.db"
    m = await opened(db)
    await m.close()
    other = SqliteMemory(str(db), embedder=HashingEmbedder(32))
    with pytest.raises(ConfigurationError, match="64-dimensional"):
        await other.setup()
    await other.close()


async def test_text_is_immutable_in_the_table(tmp_path: Path) -> None:
    db = tmp_path / "t.db"
    m = await opened(db)
    await m.add("original", scope=ACME)
    await m.close()
    with sqlite3.connect(db) as conn, pytest.raises(sqlite3.IntegrityError):
        conn.execute("UPDATE tether_memories SET text = 'changed'")
