"""Whether the disk under an SQLite store is full, without writing to it.

Reads go on from a full disk, so a read cannot tell; a write would, but a probe should not
write. ``os.statvfs`` says how many bytes an unprivileged writer may still use there: under
``FULL_BELOW`` (the margin SQLite needs for its -wal and -shm files and a step's pages), the
store's next commit fails with "database or disk is full". Asked by ``/readyz`` and when a
store cannot be opened (SQLite itself then only says "disk I/O error").
"""

from __future__ import annotations

import os

FULL_BELOW = 256 * 1024
"""Free bytes under which a disk is taken for full."""


def scarce_bytes(path: str) -> int | None:
    """The bytes free on the disk holding the SQLite file ``path`` when under ``FULL_BELOW``,
    else None (room enough, an in-memory or URI database, or a disk that cannot be asked)."""
    if path == ":memory:" or path.startswith("file:"):
        return None
    try:
        st = os.statvfs(os.path.dirname(os.path.abspath(path)))
    except OSError:
        return None
    free = st.f_bavail * st.f_frsize
    return free if free < FULL_BELOW else None


def full_disk(path: str) -> str | None:
    """Why the disk holding the SQLite file ``path`` cannot take the store's writes now, or
    None."""
    free = scarce_bytes(path)
    if free is None:
        return None
    return (
        f"database or disk is full: the disk holding {path} has {free} bytes free (under "
        f"{FULL_BELOW}), so the store's writes fail; free some space there"
    )
