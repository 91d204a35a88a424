"""How a SQLite store lays out its file: new files use 2 KiB pages (older files keep theirs and
work unchanged), checkpoint blobs of a kilobyte or more are stored compressed, and rows written
uncompressed (by an earlier tether) read back as they were."""

from __future__ import annotations

import random
import sqlite3
from pathlib import Path

from tether.core.serde import dumps, loads
from tether.store import SqliteStore
from tether.store.blob_codec import MIN_BYTES, pack, unpack
from tether.store.sqlite import PAGE_SIZE
from tether.store.types import Checkpoint, Commit
from tether.testing.store_helpers import create

TEXT = "The agent looked up order 1234 and refunded 20 EUR to the customer. " * 40


def page_size(path: Path) -> int:
    with sqlite3.connect(path) as db:
        return int(db.execute("PRAGMA page_size").fetchone()[0])


def test_pack_keeps_small_and_incompressible_blobs_and_round_trips_the_rest() -> None:
    small = dumps({"n": 1})
    assert pack(small) == small and unpack(small) == small
    noise = dumps(random.Random(3).randbytes(2000).decode("latin-1"))
    assert len(noise) >= MIN_BYTES and unpack(pack(noise)) == noise
    text = dumps({"text": TEXT})
    packed = pack(text)
    assert packed[:1] == b"x" and len(packed) < len(text) / 3
    assert unpack(packed) == text and unpack(memoryview(packed)) == text
    assert unpack(None) is None and unpack('{"a": 1}') == '{"a": 1}'  # a TEXT column
    # no JSON text begins with the byte a zlib stream begins with
    for value in ({"a": 1}, [1], "x" * 600, 12.5, None, True, False):
        assert dumps(value)[:1] != b"x"


async def test_a_new_file_gets_small_pages_and_an_old_one_keeps_its_own(tmp_path: Path) -> None:
    new = tmp_path / "new.db"
    store = SqliteStore(new)
    await store.setup()
    await create(store, "r1")
    await store.close()
    assert page_size(new) == PAGE_SIZE == 2048

    old = tmp_path / "old.db"
    with sqlite3.connect(old) as db:  # a file made with 4 KiB pages, as tether made them before
        db.execute("PRAGMA page_size=4096")
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("CREATE TABLE other (x INTEGER)")
    store = SqliteStore(old)
    await store.setup()
    await create(store, "r1")
    assert (await store.get_run("r1")).run_id == "r1"
    await store.close()
    assert page_size(old) == 4096


async def test_big_checkpoint_blobs_are_compressed_on_disk_and_old_rows_still_read(
    tmp_path: Path,
) -> None:
    path = tmp_path / "runs.db"
    store = SqliteStore(path)
    await store.setup()
    await create(store, "r1")
    delta = [["1:a:0", "a", {"text": TEXT}]]
    snapshot = {"log": [TEXT, TEXT]}
    await store.commit("r1", None, Commit(checkpoint=Checkpoint("r1", 1, delta, [], snapshot)))
    with sqlite3.connect(path) as db:
        raw_delta, raw_snapshot = db.execute(
            "SELECT delta, snapshot FROM tether_checkpoints WHERE run_id = 'r1' AND step = 1"
        ).fetchone()
        assert raw_delta[:1] == b"x" and len(raw_delta) < len(dumps(delta)) / 3
        assert raw_snapshot[:1] == b"x" and loads(unpack(raw_snapshot)) == snapshot
        # a row as an earlier tether wrote it: plain JSON
        db.execute(
            "UPDATE tether_checkpoints SET delta = ?, snapshot = ? WHERE run_id = 'r1' AND step = 1",
            (dumps(delta), dumps(snapshot)),
        )
    got = await store.get_checkpoint("r1", 1)
    assert (got.delta, got.snapshot) == (delta, snapshot)
    await store.close()
