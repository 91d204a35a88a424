"""WAL upkeep for a SQLite file: checkpoints off the hot path, and a bound on the WAL's size.

SQLite's automatic checkpoint runs inside whichever commit crosses the threshold, a pause of
several milliseconds on one unlucky step, so the store turns it off and a daemon thread copies
WAL pages back into the database (``PRAGMA wal_checkpoint(PASSIVE)``) while writers go on.

A passive checkpoint alone never shrinks the WAL under continuous writes: SQLite starts the log
over only when a writer finds every frame copied back, and a steady writer keeps appending while
the checkpoint catches up, so the file grows for the whole life of the store (hundreds of MB for a
database of a few). ``WalKeeper.after_commit`` therefore watches the WAL's size between group
commits, on the writer's own connection (no commit of this store is in flight then): past
``limit`` bytes it takes a ``RESTART`` checkpoint, which copies the few pages the thread has not
copied yet so that the next commit writes the log from its start, and ``journal_size_limit``
cuts the file back to half the bound when it does (the file is reused, not regrown, so
throughput stays the same; it grows past the bound again only with new frames). It never
waits: another process's writer or a reader still on an old snapshot makes SQLite answer
"busy" at once, and the next commit tries again.

``WalKeeper.look`` also tells the store when the files at its path are no longer the ones it has
open (deleted, replaced, the WAL deleted): SQLite would write on into the deleted files.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
import time

WAL_LIMIT = 16 * 1024 * 1024
"""Default bound on the WAL file, in bytes."""
CHECK_EVERY = 16
"""Commits between two looks at the WAL's size (the bound is passed by at most what they add:
a few hundred KB of steps)."""
LOOK_EVERY = 0.1
"""Seconds between two looks at whether the files at the store's path are still the ones it
has open (a ``stat`` of each, made before an operation once this much time passed)."""


class _PassiveCheckpointer:
    """PASSIVE WAL checkpoints on a connection of its own, in a daemon thread."""

    def __init__(self, path: str, every: int) -> None:
        self.path = path
        self.every = every
        self._last = 0
        self._wake: threading.Event | None = None
        """Made with the thread (a store that never starts it never pays for one)."""
        self._stop = False
        self._born = time.monotonic()
        self.thread: threading.Thread | None = None
        """Started by the first ``poke`` that has work for it (``every`` commits, or a commit a
        second or more after opening), not when the store opens: a short-lived process (a CLI
        call, a resume) never waits for a thread start, and ``close`` checkpoints anyway."""

    def poke(self, commits: int) -> None:
        if self.thread is None:
            if commits < self.every and time.monotonic() - self._born < 1.0:
                return
            self._wake = threading.Event()
            self.thread = threading.Thread(
                target=self._run, args=(self._wake,), name="tether-wal", daemon=True
            )
            self.thread.start()
        if commits - self._last >= self.every and self._wake is not None:
            self._last = commits
            self._wake.set()

    def _run(self, wake: threading.Event) -> None:
        try:
            db = sqlite3.connect(
                self.path, timeout=5, isolation_level=None, check_same_thread=False
            )
        except sqlite3.Error:
            return
        with contextlib.closing(db):
            while not self._stop:
                wake.wait(1.0)
                wake.clear()
                if self._stop:
                    break
                with contextlib.suppress(sqlite3.Error):
                    db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()

    def close(self) -> None:
        self._stop = True
        if self._wake is not None:
            self._wake.set()
        if self.thread is not None:
            self.thread.join(timeout=5)


class WalKeeper:
    """Keeps the WAL of the file behind ``db`` (the store's writer connection) checkpointed
    and under ``limit`` bytes. ``path`` is None for an in-memory database: nothing to keep."""

    def __init__(
        self,
        path: str | None,
        db: sqlite3.Connection,
        *,
        limit: int = WAL_LIMIT,
        busy_timeout_ms: int = 30_000,
        every: int = 256,
    ) -> None:
        self.db = db
        self.limit = limit
        self.busy_timeout_ms = busy_timeout_ms
        self.wal_path = None if path is None else _wal_file(path)
        self.restarts = 0
        """RESTART checkpoints that went through (the next commit starts the log over)."""
        self.lost: str | None = None
        """Why the files at the path are no longer the ones open here (see ``look``)."""
        self._path = path
        self._ids: dict[str, tuple[int, int]] = {}
        self._looked = time.monotonic()
        if path is not None:
            self._ids = {p: i for p in (_db_file(path), _wal_file(path)) if (i := _id(p))}
        self._checked = 0
        self._passive = None if path is None else _PassiveCheckpointer(path, every)
        if path is not None:
            # a restarted log is cut back to half the bound: size past the bound means new frames
            db.execute(f"PRAGMA journal_size_limit={limit // 2}")

    def look(self) -> str | None:
        """Why the store must stop: the database file (or its directory) deleted, another file
        moved over it, or its WAL deleted, while this store has them open (SQLite would go on
        writing to the deleted files, and none of it would be kept once the process ends).
        None while they are in place. Looked at once ``LOOK_EVERY`` passed since the last
        look (a ``stat`` of each file), so calling it before every operation costs a clock
        read; once lost, always lost."""
        if self.lost is not None or self._path is None:
            return self.lost
        now = time.monotonic()
        if now - self._looked < LOOK_EVERY:
            return None
        self._looked = now
        db, wal = _db_file(self._path), _wal_file(self._path)
        for path in (db, wal):
            found = _id(path)
            known = self._ids.get(path)
            if known is None:  # not made yet when the store opened (a WAL comes with a write)
                if found is not None:
                    self._ids[path] = found
                continue
            if found != known:
                self.lost = f"SQLite store {self._path}: " + _LOST[path == wal, found is None]
                return self.lost
        return None

    @property
    def thread(self) -> threading.Thread | None:
        return None if self._passive is None else self._passive.thread

    def after_commit(self, commits: int) -> None:
        """Called between group commits, outside any transaction of ``db``; looks at the WAL
        every ``CHECK_EVERY`` commits (a ``stat`` per step cost more than the rest of this)."""
        if self._passive is None or self.wal_path is None:
            return
        if len(self._ids) < 2:  # the WAL a first write made: known from now on
            self._ids.update((p, i) for p in (self.wal_path,) if (i := _id(p)))
        if commits - self._checked < CHECK_EVERY:
            return
        self._checked = commits
        self._passive.poke(commits)
        try:
            size = os.stat(self.wal_path).st_size
        except OSError:
            return
        if size > self.limit and not self.db.in_transaction:
            self.restart()

    def restart(self) -> bool:
        """Checkpoint everything so the log starts over, without waiting on anyone; False
        when another connection is in the way (the next commit tries again)."""
        db = self.db
        try:
            db.execute("PRAGMA busy_timeout=0")
            try:
                (busy, _, _) = db.execute("PRAGMA wal_checkpoint(RESTART)").fetchone()
            finally:
                db.execute(f"PRAGMA busy_timeout={self.busy_timeout_ms}")
        except sqlite3.Error:
            return False
        if busy:
            return False
        self.restarts += 1
        return True

    def close(self) -> None:
        if self._passive is not None:
            self._passive.close()


_REFUSED = "; this store refuses every operation from now on"
_LOST = {
    (False, True): "the database file was deleted (or its directory) while this store had it "
    "open: SQLite would go on writing to the deleted file, and nothing in it is kept once the "
    "process ends" + _REFUSED + "; restore the file from a backup and start again",
    (False, False): "the database file was replaced by another file while this store had it "
    "open: nothing this store wrote since is in the file at that path" + _REFUSED + "; stop "
    "this process and look at which file is the one to keep",
    (True, True): "its WAL file was deleted while this store had it open: the latest commits "
    "are in the deleted file only, and a process opening the database now would miss them"
    + _REFUSED
    + "; stop this process (closing the store copies them into the database "
    "file) before starting another",
    (True, False): "its WAL file was replaced by another file while this store had it open"
    + _REFUSED
    + "; stop this process (closing the store copies its commits into the "
    "database file) before starting another",
}
"""What happened to the files, by (the WAL, gone rather than replaced)."""


def _db_file(path: str) -> str:
    """The database file a plain path or a ``file:`` URI names."""
    if path.startswith("file:"):
        path = path[5:].split("?", 1)[0]
        if path.startswith("//"):
            path = path[2:]
    return path


def _wal_file(path: str) -> str:
    """The WAL file next to the database ``path`` (a plain path or a ``file:`` URI)."""
    return _db_file(path) + "-wal"


def _id(path: str) -> tuple[int, int] | None:
    """The (device, inode) of the file at ``path``, None when there is none."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_dev, st.st_ino)
