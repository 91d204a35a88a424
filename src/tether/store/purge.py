"""Purging finished runs by whole families (``RunStore.purge_runs``).

A run started by another run (a subgraph, a fork-join branch, a fork: ``parent_run_id``) is
never purged on its own: a parent that is parked, or FAILED and retried later, re-runs the node
that started its children and finds them by id. Had a finished child been purged, the parent
would start it again from scratch and repeat its effects (a second charge of the same order).
So a purge takes a **family** (a root run and every run below it) only once every run of it
finished before the cutoff, and keeps it whole otherwise. A run whose parent no longer exists
(deleted by hand) is a root.

Roots are read page by page, one finished status at a time, along the ``(status, created_at,
run_id)`` index; their families level by level along the parent index, every member read in
run_id order: index lookups only, whatever the store's size. On PostgreSQL the families that
look purgeable are then locked (``FOR UPDATE``, run_id order) and checked again, so a run
retried meanwhile is never deleted; families with a live member are never locked, so a purge
never waits on, or deadlocks with, a worker's lease heartbeat. Each page is one short
transaction, so a purge of a large backlog never holds the database's write lock (SQLite) or
many row locks (PostgreSQL) for long, and other writers interleave between pages.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any, Protocol

from tether.core.lifecycle import FINISHED

_FINISHED = frozenset(s.value for s in FINISHED)

PURGE_BATCH = 100
"""Root runs examined per transaction."""


@dataclass(frozen=True, slots=True)
class Member:
    """One run of a family as the purge reads it."""

    root: str
    run_id: str
    status: str
    updated_at: float


CHUNK = 100
"""Run ids per ``IN (...)`` list when reading a page's families."""


def roots_sql(prefix: str) -> str:
    """One page of root runs of one finished status, last updated before the cutoff, after the
    cursor: keyset ``(created_at, run_id)`` as a row value, so both databases start the index
    scan there instead of reading past every root kept so far; a run whose parent is gone is a
    root (an anti-join on the primary key). Parameters: ``page_params``."""
    p = prefix
    return (
        f"SELECT r.run_id, r.created_at FROM {p}runs r LEFT JOIN {p}runs up "
        "ON up.run_id = r.parent_run_id WHERE r.status = ? "
        "AND r.created_at < ? AND (r.created_at, r.run_id) > (?, ?) "
        "AND r.updated_at < ? AND up.run_id IS NULL "
        "ORDER BY r.created_at, r.run_id LIMIT ?"
    )


def children_sql(prefix: str, n: int) -> str:
    """The runs started by any of ``n`` runs (the parent index)."""
    return f"SELECT run_id, parent_run_id FROM {prefix}runs WHERE parent_run_id IN ({_marks(n)})"


def members_sql(prefix: str, n: int, lock: str) -> str:
    """Status and last update of ``n`` runs, read under the dialect's row lock (PostgreSQL:
    ``FOR UPDATE``, in run_id order, so two purges never deadlock; SQLite's ``BEGIN IMMEDIATE``
    already holds the database)."""
    return (
        f"SELECT run_id, status, updated_at FROM {prefix}runs WHERE run_id IN ({_marks(n)}) "
        f"ORDER BY run_id{lock}"
    )


def _marks(n: int) -> str:
    return ", ".join("?" * n)


def page_params(status: str, cutoff: float, cursor: tuple[float, str], batch: int) -> list[Any]:
    created, run_id = cursor
    return [status, cutoff, created, run_id, cutoff, batch]


class Reader(Protocol):
    """What a page needs of the store: a read in the open transaction of a statement built
    once per key (``Statements.memoized``)."""

    async def __call__(
        self, key: tuple[object, ...], build: Callable[[], str], params: Sequence[Any]
    ) -> list[Any]: ...


async def read_page(
    read: Reader,
    dialect: tuple[str, str],
    status: str,
    cutoff: float,
    cursor: tuple[float, str],
    batch: int,
) -> tuple[list[str], tuple[float, str] | None]:
    """One page: its roots, their families level by level (parent index), their members read
    in run_id order and ``decide``d; with a row lock (PostgreSQL), the families found purgeable
    are read again under it and decided again. ``dialect``: table prefix and row lock."""
    prefix, lock = dialect
    params = page_params(status, cutoff, cursor, batch)
    roots = await read(("purge-roots",), lambda: roots_sql(prefix), params)
    root_of = {r[0]: r[0] for r in roots}
    level = [r[0] for r in roots]
    while level:
        found: list[str] = []
        for chunk in _chunks(level):
            n = len(chunk)
            kids = await read(("purge-children", n), partial(children_sql, prefix, n), chunk)
            for run_id, parent in kids:
                if run_id not in root_of:  # a parent link never loops; guard it anyway
                    root_of[run_id] = root_of[parent]
                    found.append(run_id)
        level = found
    doomed = decide(await _members(read, prefix, "", root_of, sorted(root_of)), cutoff)
    if doomed and lock:
        # lock only the families that look purgeable (all finished: no lease, so no worker's
        # heartbeat holds or renews their rows) and decide again on what the lock reads
        doomed = decide(await _members(read, prefix, lock, root_of, sorted(doomed)), cutoff)
    if not roots:
        return doomed, None
    return doomed, (roots[-1][1], roots[-1][0])


async def _members(
    read: Reader, prefix: str, lock: str, root_of: dict[str, str], ids: Sequence[str]
) -> list[Member]:
    """Status and last update of ``ids`` (sorted: rows are locked in run_id order)."""
    members: list[Member] = []
    for chunk in _chunks(ids):
        n = len(chunk)
        key = ("purge-members", n, lock)
        for run_id, st, updated in await read(key, partial(members_sql, prefix, n, lock), chunk):
            members.append(Member(root_of[run_id], run_id, st, updated))
    return members


def _chunks(ids: Sequence[str]) -> Iterator[Sequence[str]]:
    for i in range(0, len(ids), CHUNK):
        yield ids[i : i + CHUNK]


def decide(members: Iterable[Member], cutoff: float) -> list[str]:
    """The runs to delete: every run of each family whose every run finished before the
    cutoff; the other families stay whole."""
    by_root: dict[str, list[Member]] = {}
    for m in members:
        by_root.setdefault(m.root, []).append(m)
    doomed: list[str] = []
    for root in sorted(by_root):
        family = by_root[root]
        if all(m.status in _FINISHED and m.updated_at < cutoff for m in family):
            doomed.extend(sorted({m.run_id for m in family}))
    return doomed


def families_in_memory(
    runs: Sequence[tuple[str, str | None, str, float]], cutoff: float
) -> list[str]:
    """The same rule over ``(run_id, parent_run_id, status, updated_at)`` rows (the
    in-memory store): every run of each family that finished, whole, before the cutoff."""
    known = {r[0] for r in runs}
    children: dict[str, list[str]] = {}
    for run_id, parent, *_ in runs:
        if parent is not None and parent in known:
            children.setdefault(parent, []).append(run_id)
    info = {r[0]: r for r in runs}
    members: list[Member] = []
    for run_id, parent, status, updated in runs:
        if parent is not None and parent in known:
            continue  # not a root
        if status not in _FINISHED or updated >= cutoff:
            continue
        stack, seen = [run_id], set()
        while stack:
            cur = stack.pop()
            if cur in seen:
                continue
            seen.add(cur)
            _id, _parent, st, up = info[cur]
            members.append(Member(run_id, cur, st, up))
            stack.extend(children.get(cur, ()))
    return decide(members, cutoff)
