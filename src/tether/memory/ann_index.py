"""The SQLite backend's vector index: a usearch HNSW graph kept in memory, persisted beside the
database file, and never trusted over the table.

The table ``tether_memories`` is the truth. Triggers append every insert and delete to
``tether_memory_changes`` in the same transaction, so the log and the table never disagree.
The index remembers the last change it applied (``seq``); before every search it applies the
changes after it (other processes' writes included). ``save`` writes the graph to
``<database>-memory.<seq>.usearch`` (a temporary file renamed into place, so a crash leaves the
old file or the new one, never half of one) and then deletes the log up to ``seq``. Opening
loads the newest such file and replays the log after it; a missing, unreadable or mismatched
file, or a log that no longer reaches back to the file's ``seq``, means a rebuild from the
table. Applying a change is idempotent (an add of a present key, a delete of an absent one, do
nothing), so replaying more than needed is harmless. Keys are the table's AUTOINCREMENT
``key``, never reused. Runs on the backend's one database thread: nothing here is async.
"""

from __future__ import annotations

import contextlib
import glob
import logging
import os
import re
import sqlite3
from typing import Any

from tether.llm.embeddings import numpy
from tether.store.sqlite import rollback

_log = logging.getLogger(__name__)


_FILE = re.compile(r"-memory\.(\d+)\.usearch$")


class AnnIndex:
    """usearch HNSW over the memories' vectors (cosine), kept in step with the change log."""

    def __init__(
        self,
        db_path: str | None,
        dimensions: int,
        *,
        prefix: str = "tether_",
        connectivity: int = 16,
        expansion_add: int = 128,
        expansion_search: int = 128,
        save_every: int = 20_000,
    ) -> None:
        self.base = None if db_path in (None, "", ":memory:") else os.path.abspath(str(db_path))
        self.dimensions = dimensions
        self.prefix = prefix
        self.connectivity = connectivity
        self.expansion_add = expansion_add
        self.expansion_search = expansion_search
        self.save_every = save_every
        self.seq = 0
        self.unsaved = 0
        self._save_at = save_every
        """``unsaved`` count at which the next save is due (pushed on after a failed save)."""
        self.rebuilt = False
        """Whether the last open rebuilt the index from the table (tests and logs)."""
        self._index: Any = None

    # -- opening ---------------------------------------------------------------------------
    def _new(self) -> Any:
        try:
            from usearch.index import Index
        except ImportError as exc:  # pragma: no cover - usearch comes with tether[memory]
            from tether.core.errors import missing_dependency

            raise missing_dependency("memory", "usearch") from exc
        return Index(
            ndim=self.dimensions,
            metric="cos",
            dtype="f32",
            connectivity=self.connectivity,
            expansion_add=self.expansion_add,
            expansion_search=self.expansion_search,
        )

    def files(self) -> list[tuple[int, str]]:
        """The saved index files beside the database, newest first."""
        if self.base is None:
            return []
        found = []
        for path in glob.glob(glob.escape(self.base) + "-memory.*.usearch"):
            m = _FILE.search(path)
            if m:
                found.append((int(m.group(1)), path))
        return sorted(found, reverse=True)

    def open(self, db: sqlite3.Connection) -> None:
        self.rebuilt = False
        self._index = None
        for seq, path in self.files():
            if seq < self._floor(db):
                break  # the log no longer reaches back to this file
            try:
                index = self._new()
                index.load(path)
            except Exception as exc:  # a torn or foreign file: rebuild instead
                _log.warning(
                    "memory index %s unreadable (%s); rebuilding from the table", path, exc
                )
                continue
            if index.ndim != self.dimensions:
                continue
            self._index, self.seq = index, seq
            break
        if self._index is None:
            self.rebuild(db)
        self.catch_up(db)

    def rebuild(self, db: sqlite3.Connection) -> None:
        """Build the index from the table (inside one read transaction: the rows and the log
        position agree)."""
        np = numpy()
        index = self._new()
        db.execute("BEGIN")
        try:
            row = db.execute(f"SELECT MAX(seq) FROM {self.prefix}memory_changes").fetchone()
            seq = int(row[0] or 0)
            floor = self._floor(db)
            seq = max(seq, floor)
            cursor = db.execute(f"SELECT key, embedding FROM {self.prefix}memories ORDER BY key")
            while batch := cursor.fetchmany(10_000):
                keys = np.fromiter((r[0] for r in batch), dtype=np.uint64, count=len(batch))
                vectors = np.frombuffer(b"".join(r[1] for r in batch), dtype=np.float32)
                index.add(keys, vectors.reshape(len(batch), self.dimensions))
        finally:
            db.execute("COMMIT")
        self._index, self.seq, self.rebuilt = index, seq, True
        self.unsaved = len(index)

    def _floor(self, db: sqlite3.Connection) -> int:
        row = db.execute(
            f"SELECT value FROM {self.prefix}memory_meta WHERE name = 'log_floor'"
        ).fetchone()
        return int(row[0]) if row else 0

    # -- keeping up --------------------------------------------------------------------------
    def catch_up(self, db: sqlite3.Connection, *, autosave: bool = True) -> None:
        """Apply the changes logged after ``seq`` (and ``save`` when ``save_every`` changes
        wait unsaved, unless ``autosave`` is off: the caller then checks ``due``)."""
        if self._index is None:
            self.open(db)
            return
        if self.seq < self._floor(db):  # another process saved and trimmed the log past us
            self.open(db)
            return
        rows = db.execute(
            f"SELECT seq, key, op FROM {self.prefix}memory_changes WHERE seq > ? ORDER BY seq",
            (self.seq,),
        ).fetchall()
        if not rows:
            return
        last: dict[int, str] = {}
        for _, key, op in rows:
            last[int(key)] = op
        gone = [k for k, op in last.items() if op == "del" and self._index.contains(k)]
        if gone:
            self._index.remove(gone)
        added = [k for k, op in last.items() if op == "add" and not self._index.contains(k)]
        np = numpy()
        for n in range(0, len(added), 500):
            chunk = added[n : n + 500]
            got = db.execute(
                f"SELECT key, embedding FROM {self.prefix}memories WHERE key IN "
                f"({','.join('?' * len(chunk))})",
                chunk,
            ).fetchall()
            if got:
                keys = np.fromiter((r[0] for r in got), dtype=np.uint64, count=len(got))
                vectors = np.frombuffer(b"".join(r[1] for r in got), dtype=np.float32)
                self._index.add(keys, vectors.reshape(len(got), self.dimensions))
        self.seq = int(rows[-1][0])
        self.unsaved += len(rows)
        if self.base is None:  # a private in-memory database: nobody else reads the log
            db.execute(f"DELETE FROM {self.prefix}memory_changes WHERE seq <= ?", (self.seq,))
        elif autosave and self.due:
            self.try_save(db)

    @property
    def due(self) -> bool:
        """Whether enough changes wait unsaved that the index should be saved."""
        return self.base is not None and self.unsaved >= self._save_at

    # -- searching ---------------------------------------------------------------------------
    def __len__(self) -> int:
        return 0 if self._index is None else len(self._index)

    def vector(self, key: int) -> Any:
        """The vector the index holds under ``key`` (``None`` when it holds none)."""
        if self._index is None or not self._index.contains(key):
            return None
        return self._index.get(key)

    def vectors(self, keys: Any) -> tuple[Any, Any]:
        """The vectors the index holds under ``keys`` (a uint64 array) as a float32 matrix, one
        row per key, and a boolean array saying which keys it holds (the other rows are
        undefined)."""
        np = numpy()
        if self._index is None or len(keys) == 0:
            return np.zeros((len(keys), self.dimensions), np.float32), np.zeros(len(keys), bool)
        held = np.asarray(self._index.contains(keys), dtype=bool).reshape(len(keys))
        rows = np.asarray(self._index.get(keys), dtype=np.float32).reshape(len(keys), -1)
        return rows, held

    def keys(self) -> set[int]:
        """Every key the index holds."""
        if self._index is None:
            return set()
        # np.asarray, not iteration: usearch's IndexedKeys never ends an iteration
        return {int(k) for k in numpy().asarray(self._index.keys)}

    def search(self, vector: Any, n: int) -> list[int]:
        """Keys of the ``n`` nearest vectors, nearest first."""
        if self._index is None or len(self._index) == 0:
            return []
        self._index.expansion_search = max(self.expansion_search, n)
        found = self._index.search(vector, min(n, len(self._index)))
        return [int(k) for k in found.keys]

    # -- saving ------------------------------------------------------------------------------
    def try_save(self, db: sqlite3.Connection) -> bool:
        """``save``, or (a full disk, an unwritable directory) one warning and False: the index
        is a cache of the table, so a failed save loses nothing (the change log it would have
        trimmed is replayed at the next open); it is tried again after ``save_every`` more
        changes, so every search does not pay for (and fail on) a save that cannot succeed."""
        try:
            self.save(db)
        except (OSError, RuntimeError, sqlite3.Error) as exc:
            self._save_at = self.unsaved + self.save_every
            _log.warning(
                "the vector index of %s was not saved (%s: %s); nothing is lost: the next "
                "open replays the %d changes since its last save",
                self.base,
                type(exc).__name__,
                exc,
                self.unsaved,
            )
            return False
        return True

    def save(self, db: sqlite3.Connection) -> None:
        """Persist the graph at ``seq``, then trim the log up to it."""
        if self.base is None or self._index is None:
            return
        seq = self.seq
        final = f"{self.base}-memory.{seq}.usearch"
        tmp = f"{final}.{os.getpid()}.tmp"
        try:
            self._index.save(tmp)
            with open(tmp, "rb+") as f:
                os.fsync(f.fileno())
            os.replace(tmp, final)
        except BaseException:
            with contextlib.suppress(OSError):
                os.remove(tmp)  # a half-written file would hold the space a full disk lacks
            raise
        db.execute("BEGIN IMMEDIATE")
        try:
            db.execute(
                f"INSERT INTO {self.prefix}memory_meta(name, value) VALUES ('log_floor', ?) "
                "ON CONFLICT(name) DO UPDATE SET value = excluded.value "
                "WHERE CAST(value AS INTEGER) < CAST(excluded.value AS INTEGER)",
                (str(seq),),
            )
            db.execute(f"DELETE FROM {self.prefix}memory_changes WHERE seq <= ?", (seq,))
        except BaseException:
            rollback(db)
            raise
        db.execute("COMMIT")
        self.unsaved = 0
        self._save_at = self.save_every
        for old, path in self.files():
            if old < seq:
                with contextlib.suppress(OSError):
                    os.remove(path)
