"""``store.purge.read_page`` against a scripted reader: what it reads, in which order, and the
second look under the row lock (PostgreSQL) that keeps a family changed in between."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from tether.store import purge

CUTOFF = 1_000.0


class Script:
    """Answers the page's reads from a table of runs; ``locked`` overrides the rows the locked
    read sees (what another transaction committed between the two looks)."""

    def __init__(self, runs: dict[str, tuple[str | None, str, float]]) -> None:
        self.runs = runs  # run_id -> (parent, status, updated_at)
        self.locked: dict[str, tuple[str | None, str, float]] = {}
        self.calls: list[tuple[object, ...]] = []

    async def __call__(
        self, key: tuple[object, ...], build: Callable[[], str], params: Sequence[Any]
    ) -> list[Any]:
        assert build()  # every statement builds
        self.calls.append(key)
        if key[0] == "purge-roots":
            return [
                (run_id, 1.0)
                for run_id, (parent, st, up) in sorted(self.runs.items())
                if parent is None and st == params[0] and up < CUTOFF
            ]
        if key[0] == "purge-children":
            return [(r, p) for r, (p, _s, _u) in sorted(self.runs.items()) if p in params]
        assert list(params) == sorted(params)  # members are read (and locked) in run_id order
        table = {**self.runs, **self.locked} if key[2] else self.runs
        return [(r, table[r][1], table[r][2]) for r in params if r in table]


async def test_a_page_takes_whole_finished_families_and_keeps_the_rest() -> None:
    s = Script(
        {
            "a": (None, "COMPLETED", 10.0),
            "a/1": ("a", "COMPLETED", 20.0),
            "a/1/x": ("a/1", "FAILED", 30.0),
            "b": (None, "COMPLETED", 10.0),
            "b/1": ("b", "ESCALATED", 20.0),
        }
    )
    doomed, cursor = await purge.read_page(s, ("t_", ""), "COMPLETED", CUTOFF, (0.0, ""), 10)
    assert doomed == ["a", "a/1", "a/1/x"]
    assert cursor == (1.0, "b")
    assert [c[0] for c in s.calls].count("purge-members") == 1  # no lock: one look


async def test_under_a_row_lock_a_family_changed_meanwhile_is_kept() -> None:
    s = Script({"a": (None, "FAILED", 10.0), "a/1": ("a", "COMPLETED", 20.0)})
    s.locked = {"a": (None, "EXECUTING", 10.0)}  # retried between the two looks
    doomed, _ = await purge.read_page(s, ("t_", " FOR UPDATE"), "FAILED", CUTOFF, (0.0, ""), 10)
    assert doomed == []
    looks = [c for c in s.calls if c[0] == "purge-members"]
    assert looks == [("purge-members", 2, ""), ("purge-members", 2, " FOR UPDATE")]


async def test_only_purgeable_families_are_locked() -> None:
    s = Script(
        {
            "a": (None, "COMPLETED", 10.0),
            "b": (None, "COMPLETED", 10.0),
            "b/live": ("b", "EXECUTING", 20.0),  # a leased run: its row is never locked
        }
    )
    doomed, _ = await purge.read_page(s, ("t_", " FOR UPDATE"), "COMPLETED", CUTOFF, (0.0, ""), 10)
    assert doomed == ["a"]
    assert s.calls[-1] == ("purge-members", 1, " FOR UPDATE")


async def test_an_empty_page_ends_the_status() -> None:
    s = Script({"a": (None, "ESCALATED", 10.0)})
    assert await purge.read_page(s, ("t_", ""), "COMPLETED", CUTOFF, (0.0, ""), 10) == ([], None)
