"""Cost of a call from a price table: dollars per million input and output tokens.

Lookup order for a model ``provider:name``: the exact name, then the longest matching glob
(``local:*``, ``openai:gpt-4o-mini*``). Extend or replace the table per model or globally; the
``TETHER_PRICES`` environment variable can name a JSON file ``{"model": [in, out], ...}`` that
is merged over the defaults.
"""

from __future__ import annotations

import fnmatch
import functools
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import orjson

from tether.core.errors import ConfigurationError
from tether.core.finite import check_number
from tether.llm.types import Usage


@dataclass(frozen=True, slots=True)
class Price:
    input_per_mtok: float
    output_per_mtok: float

    def __post_init__(self) -> None:
        # a NaN price (an empty cell of a price table) would make every cost NaN
        check_number("Price.input_per_mtok (dollars per million tokens)", self.input_per_mtok)
        check_number("Price.output_per_mtok (dollars per million tokens)", self.output_per_mtok)

    def cost(self, usage: Usage) -> float:
        return (
            usage.input_tokens * self.input_per_mtok + usage.output_tokens * self.output_per_mtok
        ) / 1_000_000


def _as_price(name: str, price: object) -> Price:
    """``price`` as a Price: one already, or two numbers ``[input, output]``. Not text (``"12"``
    was read as [1, 2]), not three numbers, not ``{"input": ...}`` (a KeyError from pricing)."""
    if isinstance(price, Price):
        return price
    numbers: list[float] = []
    if isinstance(price, list | tuple) and len(price) == 2:
        for part in price:
            if isinstance(part, int | float | str) and not isinstance(part, bool):
                try:
                    numbers.append(float(part))
                except ValueError:
                    break
    if len(numbers) != 2:
        raise ConfigurationError(
            f"price for {name!r} must be Price(...) or [input_per_mtok, output_per_mtok] (two "
            f"numbers: dollars per million input and output tokens), got {price!r}"
        )
    return Price(numbers[0], numbers[1])


class PriceTable:
    def __init__(self, prices: Mapping[str, Price | tuple[float, float]] | None = None) -> None:
        self._exact: dict[str, Price] = {}
        self._globs: list[tuple[str, Price]] = []
        self._resolved: dict[str, Price | None] = {}
        for name, price in (prices or {}).items():
            self.set(name, price)

    def set(self, name: str, price: Price | tuple[float, float] | list[float]) -> None:
        price = _as_price(name, price)
        self._resolved.clear()
        if any(c in name for c in "*?["):
            self._globs = [(g, p) for g, p in self._globs if g != name]
            self._globs.append((name, price))
            self._globs.sort(key=lambda gp: -len(gp[0]))
        else:
            self._exact[name] = price

    def price(self, model: str) -> Price | None:
        try:
            return self._resolved[model]
        except KeyError:
            pass
        found = self._exact.get(model)
        if found is None:
            found = next((p for g, p in self._globs if fnmatch.fnmatchcase(model, g)), None)
        if len(self._resolved) < 4096:
            self._resolved[model] = found
        return found

    def cost(self, model: str, usage: Usage) -> float | None:
        price = self.price(model)
        return None if price is None else price.cost(usage)

    def merged(self, other: Mapping[str, Price | tuple[float, float]]) -> PriceTable:
        table = PriceTable()
        table._exact = dict(self._exact)
        table._globs = list(self._globs)
        for name, price in other.items():
            table.set(name, price)
        return table

    @classmethod
    def from_file(cls, path: str | Path, base: PriceTable | None = None) -> PriceTable:
        try:
            data = orjson.loads(Path(path).read_bytes())
        except (OSError, orjson.JSONDecodeError) as exc:
            raise ConfigurationError(f"cannot read price table {str(path)!r}: {exc}") from exc
        if not isinstance(data, dict):
            raise ConfigurationError(f"price table {str(path)!r} must be a JSON object")
        try:
            return (base or cls()).merged(data)
        except ConfigurationError as exc:
            raise ConfigurationError(f"price table {str(path)!r}: {exc}") from None


DEFAULT_PRICES = PriceTable(
    {
        "local:*": (0.0, 0.0),
        "scripted:*": (0.0, 0.0),
        "function:*": (0.0, 0.0),
        "openai:gpt-4o-mini*": (0.15, 0.60),
        "openai:gpt-4o*": (2.50, 10.00),
        "openai:gpt-4.1-mini*": (0.40, 1.60),
        "openai:gpt-4.1-nano*": (0.10, 0.40),
        "openai:gpt-4.1*": (2.00, 8.00),
        "anthropic:claude-3-5-haiku*": (0.80, 4.00),
        "anthropic:claude-haiku-4*": (1.00, 5.00),
        "anthropic:claude-sonnet-4*": (3.00, 15.00),
        "anthropic:claude-3-7-sonnet*": (3.00, 15.00),
        "anthropic:claude-opus-4*": (15.00, 75.00),
    }
)


def default_prices() -> PriceTable:
    """The built-in table, with ``TETHER_PRICES`` (a JSON file) merged over it when set; the
    file is read once per path and modification time."""
    path = os.environ.get("TETHER_PRICES")
    if not path:
        return DEFAULT_PRICES
    try:
        mtime = os.stat(path).st_mtime_ns
    except OSError as exc:
        raise ConfigurationError(
            f"cannot read price table {path!r} (TETHER_PRICES): {exc}"
        ) from exc
    return _from_env_file(path, mtime)


@functools.lru_cache(maxsize=8)
def _from_env_file(path: str, mtime: int) -> PriceTable:
    return PriceTable.from_file(path, DEFAULT_PRICES)
