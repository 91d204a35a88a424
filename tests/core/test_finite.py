"""core.finite and the settings it guards: NaN (which compares false with everything, so it
never errs loudly) and infinity are refused by name at the constructor. Before, each setting
below took NaN."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tether.core.errors import ConfigurationError, InvalidInputError, TetherError
from tether.core.finite import check_number, is_number

NAN, INF = float("nan"), float("inf")


def test_check_number() -> None:
    assert check_number("x", 0) == 0.0 and check_number("x", 2.5, above=True) == 2.5
    for bad in (NAN, INF, -INF, -1, True, "1", None):
        with pytest.raises(ConfigurationError, match="x must be a finite number >= 0"):
            check_number("x", bad)
    with pytest.raises(ConfigurationError, match="> 0"):
        check_number("x", 0, above=True)
    with pytest.raises(InvalidInputError):
        check_number("x", NAN, error=InvalidInputError)
    assert [is_number(v) for v in (1, 1.5, NAN, INF, True)] == [True, True, False, False, False]


def _price(v: float) -> Any:
    from tether.llm import Price

    return Price(v, 1.0)


def _hedge(v: float) -> Any:
    from tether.llm import ScriptedModel
    from tether.llm.wrappers import HedgedModel

    return HedgedModel(ScriptedModel(["hi"]), delay=v)


def _ranking(v: float) -> Any:
    from tether.memory import Ranking

    return Ranking(vector_weight=v)


def _pg(v: float) -> Any:
    pytest.importorskip("psycopg")
    from tether.store.postgres import PostgresStore

    return PostgresStore("postgresql://u@h/db", retry_for=v)


@pytest.mark.parametrize(
    ("make", "error", "what"),
    [
        (_price, ConfigurationError, "Price.input_per_mtok"),  # a NaN cost on every call
        (_hedge, ConfigurationError, "HedgedModel delay"),
        (_ranking, InvalidInputError, "Ranking.vector_weight"),  # every hit scored NaN
        (_pg, ConfigurationError, "retry_for"),
    ],
    ids=["price", "hedge", "ranking", "postgres-retry_for"],
)
def test_settings_refuse_nan(
    make: Callable[[float], Any], error: type[TetherError], what: str
) -> None:
    for bad in (NAN, INF):
        with pytest.raises(error, match=what):
            make(bad)
    make(1.0)
