"""SQLite stores of one database file, in one process, share a wake-up hub whatever path they
were opened by (a run one of them makes claimable wakes the runtimes of the others at once)."""

from __future__ import annotations

import os
from pathlib import Path

from tether.store.sqlite import SqliteStore


async def test_every_path_to_one_file_shares_a_hub_and_another_file_does_not(
    tmp_path: Path,
) -> None:
    real = tmp_path / "dir" / "runs.db"
    real.parent.mkdir()
    first = SqliteStore(real)
    (tmp_path / "via").symlink_to(real.parent)
    os.link(real, tmp_path / "linked.db")  # a hard link: the same file under another name
    others = [
        SqliteStore(tmp_path / "via" / "runs.db"),
        SqliteStore(tmp_path / "linked.db"),
        SqliteStore(os.path.relpath(real)),
    ]
    elsewhere = SqliteStore(tmp_path / "other.db")
    private = [SqliteStore(":memory:"), SqliteStore(":memory:")]
    try:
        assert all(s.wakeups is first.wakeups for s in others)
        assert elsewhere.wakeups is not first.wakeups
        assert private[0].wakeups is not private[1].wakeups
    finally:
        for s in (first, *others, elsewhere, *private):
            await s.close()
