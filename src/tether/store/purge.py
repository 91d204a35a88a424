"""Purging finished runs by whole families (``RunStore.purge_runs``).

A run started by another run (a subgraph, a fork-join branch, a fork: ``parent_run_id``) is
never purged on its own: a parent that is parked, or FAILED and retried later, re-runs the node
that started its children and finds them by id. Had a finished child been purged, the parent
would start it again from scratch and repeat its effects (a second charge of the same order).
So a purge takes a **family** (a root run and every run below it) only once every run of it
finished before the cutoff, and keeps it whole otherwise. A run whose parent no longer exists
(deleted by hand) is a root.

Roots are read page by page, one finished status at a time, along the ``(status, created_at,
run_id)`` index; each page and the families under it are one short transaction, so a purge of a
large backlog never holds the database's write lock (SQLite) or many row locks (PostgreSQL) for
long, and other writers interleave between pages.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from tether.core.lifecycle import FINISHED

_FINISHED = frozenset(s.value for s in FINISHED)

PURGE_BATCH = 100
"""Root runs examined per transaction."""


@dataclass(frozen=True, slots=True)
class Member:
    """One run of a family as the purge reads it."""

    root: str
    root_created: float
    run_id: str
    status: str
    updated_at: float


def families_sql(prefix: str, lock: str = "") -> str:
    """One page of root runs of one finished status (keyset ``(created_at, run_id)`` after the
    cursor, last updated before the cutoff) with every run below each of them: rows of
    ``Member``. Parameters: status, cutoff, cursor created_at (twice), cursor run_id, cutoff,
    page size. ``lock``: the dialect's row lock on the family's rows (PostgreSQL), taken in
    run_id order so two purges never deadlock."""
    p = prefix
    return (
        "WITH RECURSIVE roots AS ("
        f"SELECT r.run_id, r.created_at FROM {p}runs r WHERE r.status = ? "
        "AND r.created_at < ? AND (r.created_at > ? OR (r.created_at = ? AND r.run_id > ?)) "
        "AND r.updated_at < ? AND (r.parent_run_id IS NULL OR NOT EXISTS "
        f"(SELECT 1 FROM {p}runs up WHERE up.run_id = r.parent_run_id)) "
        "ORDER BY r.created_at, r.run_id LIMIT ?), "
        "family(root, run_id) AS (SELECT run_id, run_id FROM roots UNION ALL "
        f"SELECT family.root, c.run_id FROM {p}runs c "
        "JOIN family ON c.parent_run_id = family.run_id) "
        "SELECT family.root, roots.created_at, m.run_id, m.status, m.updated_at "
        f"FROM family JOIN roots ON roots.run_id = family.root JOIN {p}runs m "
        f"ON m.run_id = family.run_id ORDER BY m.run_id{lock}"
    )


def page_params(status: str, cutoff: float, cursor: tuple[float, str], batch: int) -> list[Any]:
    created, run_id = cursor
    return [status, cutoff, created, created, run_id, cutoff, batch]


def decide(members: Iterable[Member], cutoff: float) -> tuple[list[str], tuple[float, str] | None]:
    """From one page: the runs to delete (the families whose every run finished before the
    cutoff, children before their parents' rows are gone in the same transaction anyway) and
    the cursor after the page's last root (None: the page held no root, the status is done)."""
    by_root: dict[str, list[Member]] = {}
    roots: dict[str, float] = {}
    for m in members:
        by_root.setdefault(m.root, []).append(m)
        roots[m.root] = m.root_created
    doomed: list[str] = []
    for root in sorted(by_root):
        family = by_root[root]
        if all(m.status in _FINISHED and m.updated_at < cutoff for m in family):
            doomed.extend(sorted({m.run_id for m in family}))
    if not roots:
        return doomed, None
    last = max(roots.items(), key=lambda item: (item[1], item[0]))
    return doomed, (last[1], last[0])


def families_in_memory(
    runs: Sequence[tuple[str, str | None, str, float, float]], cutoff: float
) -> list[str]:
    """The same rule over ``(run_id, parent_run_id, status, created_at, updated_at)`` rows (the
    in-memory store): every run of each family that finished, whole, before the cutoff."""
    known = {r[0] for r in runs}
    children: dict[str, list[str]] = {}
    for run_id, parent, *_ in runs:
        if parent is not None and parent in known:
            children.setdefault(parent, []).append(run_id)
    info = {r[0]: r for r in runs}
    members: list[Member] = []
    for run_id, parent, status, created, updated in runs:
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
            _id, _parent, st, _created, up = info[cur]
            members.append(Member(run_id, created, cur, st, up))
            stack.extend(children.get(cur, ()))
    doomed, _cursor = decide(members, cutoff)
    return doomed
