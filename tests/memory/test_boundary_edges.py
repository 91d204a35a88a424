"""Edges of the memory plane's boundary: settings that are not numbers, text that is not
Unicode, accents, cursors that list() never wrote; the same answer on every backend."""

from __future__ import annotations

import math

import pytest

from tests.memory.conftest import MemoryFactory
from tether.core.errors import InvalidInputError
from tether.memory import KEYWORD_ONLY, MemoryScope, NewMemory, Ranking
from tether.memory.fusion import fold

ACME = MemoryScope("acme")
SURROGATE = "bad \ud800 text"


@pytest.mark.parametrize(
    "kwargs",
    [
        {"rrf_k": math.nan},
        {"rrf_k": math.inf},
        {"half_life": math.nan},
        {"half_life": math.inf},
        {"half_life": -1.0},
        {"candidates": True},
        {"candidates": 2.5},
    ],
)
def test_ranking_refuses_settings_that_would_make_every_score_nan(kwargs: dict[str, float]) -> None:
    with pytest.raises(InvalidInputError, match=f"Ranking.{next(iter(kwargs))}"):
        Ranking(**kwargs)  # type: ignore[arg-type]


async def test_a_lone_surrogate_is_refused_before_anything_is_written(
    memory_factory: MemoryFactory,
) -> None:
    m = await memory_factory()
    with pytest.raises(InvalidInputError, match="lone surrogate"):
        await m.add(SURROGATE, scope=ACME)
    with pytest.raises(InvalidInputError, match="lone surrogate"):
        await m.add_many([NewMemory("fine"), NewMemory(SURROGATE)], scope=ACME)
    with pytest.raises(InvalidInputError, match="lone surrogate"):
        await m.search(SURROGATE, scope=ACME)
    with pytest.raises(InvalidInputError, match="lone surrogate"):
        MemoryScope("acme\udcff")
    assert await m.count(ACME) == 0
    await m.add("bad text, well formed: caf\u00e9 \U0001f389", scope=ACME)
    assert await m.count(ACME) == 1


@pytest.mark.parametrize("cursor", ["nan|x", "inf|zzz", "-inf|a", "1.5", "|x"])
async def test_list_refuses_a_cursor_it_did_not_write(
    memory_factory: MemoryFactory, cursor: str
) -> None:
    m = await memory_factory()
    await m.add("a note", scope=ACME)
    with pytest.raises(InvalidInputError, match="cursor"):
        await m.list(ACME, cursor=cursor)


def test_fold_takes_latin_accents_off_as_fts5_does() -> None:
    assert fold("Café CRÈME brûlée") == "Cafe CREME brulee"
    assert fold("x\u0301y ñandú İ") == "xy nandu I"
    assert fold("ώρα łódź Ærø") == "ώρα łodz Ærø"  # Greek accents, ł and ø stay (as FTS5's)


@pytest.mark.parametrize("memory_factory", ["inprocess", "sqlite"], indirect=True)
async def test_keyword_search_matches_across_accents_in_process_as_in_sqlite(
    memory_factory: MemoryFactory,
) -> None:
    """FTS5 (``remove_diacritics 2``) matches ``cafe`` to ``café``; the in-process BM25 does
    too, so both see the same words."""
    m = await memory_factory()
    cafe = await m.add("meeting at the café near the station", scope=ACME)
    await m.add("meeting at the office", scope=ACME)
    for query in ("cafe", "CAFÉ", "café", "cafe\u0301"):
        hits = await m.search(query, scope=ACME, ranking=KEYWORD_ONLY, record_access=False)
        assert [h.memory.id for h in hits] == [cafe.id], query
