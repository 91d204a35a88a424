"""core.serde: JSON round trips, pydantic models, sets/bytes, stable fingerprints, clear errors."""

from __future__ import annotations

import collections
import dataclasses
import datetime as dt
import decimal
import enum
import pathlib
import types
import uuid
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import BaseModel, ConfigDict

from tether.core import serde

json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(),
)
json_values = st.recursive(
    json_scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=5),
        st.dictionaries(st.text(max_size=8), children, max_size=5),
    ),
    max_leaves=30,
)


@given(json_values)
def test_json_round_trip(value: Any) -> None:
    blob = serde.dumps(value)
    assert isinstance(blob, bytes)
    assert serde.loads(blob) == value
    # every accepted input form decodes the same way
    assert serde.loads(bytearray(blob)) == value
    assert serde.loads(memoryview(blob)) == value
    assert serde.loads(blob.decode()) == value


@given(st.dictionaries(st.text(max_size=6), json_scalars, max_size=8))
def test_fingerprint_ignores_key_order(d: dict[str, Any]) -> None:
    reordered = dict(reversed(list(d.items())))
    assert serde.fingerprint(d) == serde.fingerprint(reordered)
    assert len(serde.fingerprint(d)) == 32


def test_fingerprint_distinguishes_values() -> None:
    assert serde.fingerprint({"a": 1}) != serde.fingerprint({"a": 2})
    assert serde.fingerprint({"a": [1, 2]}) != serde.fingerprint({"a": [2, 1]})
    assert serde.fingerprint(None) == serde.fingerprint(None)


def test_loads_none_is_none() -> None:
    assert serde.loads(None) is None


class Address(BaseModel):
    city: str
    zip: str | None = None


class Person(BaseModel):
    name: str
    age: int
    when: dt.date
    address: Address
    tags: list[str] = []


def test_pydantic_models_serialize_in_json_mode() -> None:
    p = Person(name="Ada", age=36, when=dt.date(1851, 12, 10), address=Address(city="London"))
    data = serde.loads(serde.dumps({"who": p, "many": [p.address]}))
    assert data == {
        "who": {
            "name": "Ada",
            "age": 36,
            "when": "1851-12-10",
            "address": {"city": "London", "zip": None},
            "tags": [],
        },
        "many": [{"city": "London", "zip": None}],
    }
    assert Person.model_validate(data["who"]) == p


def test_dataclasses_sets_bytes_and_non_str_keys() -> None:
    @dataclasses.dataclass
    class Point:
        x: int
        y: list[int]

    assert serde.loads(serde.dumps(Point(1, [2, 3]))) == {"x": 1, "y": [2, 3]}
    assert serde.loads(serde.dumps({"s": {3, 1, 2}})) == {"s": [1, 2, 3]}
    assert serde.loads(serde.dumps(frozenset({"b", "a"}))) == ["a", "b"]
    assert serde.loads(serde.dumps(b"caf\xc3\xa9")) == "café"
    assert serde.loads(serde.dumps({1: "a"})) == {"1": "a"}
    assert serde.loads(serde.dumps((1, 2))) == [1, 2]


@given(st.sets(st.integers(-1000, 1000), max_size=10))
def test_sets_serialize_deterministically(s: set[int]) -> None:
    assert serde.dumps(s) == serde.dumps(set(sorted(s, reverse=True)))
    assert sorted(serde.loads(serde.dumps(s))) == sorted(s)


class Opaque:
    pass


@pytest.mark.parametrize(
    ("value", "type_name"),
    [
        ({"a": Opaque()}, "Opaque"),
        ([1, {"deep": [object()]}], "object"),
        ({"f": lambda: 1}, "function"),
    ],
)
def test_unserialisable_values_raise_a_clear_type_error(value: Any, type_name: str) -> None:
    with pytest.raises(TypeError) as ei:
        serde.dumps(value)
    msg = str(ei.value)
    assert f"cannot persist a value of type {type_name}" in msg
    assert "JSON-like" in msg
    with pytest.raises(TypeError, match=f"cannot persist a value of type {type_name}"):
        serde.fingerprint(value)


def test_integers_beyond_64_bits_are_rejected() -> None:
    with pytest.raises(TypeError):
        serde.dumps(2**70)


@given(json_values)
def test_unstorable_finds_nothing_in_json_that_dumps_writes(value: Any) -> None:
    assert serde.unstorable(value) is None
    serde.dumps(value)


def test_unstorable_names_where_a_nan_or_infinity_sits() -> None:
    """orjson writes NaN and infinity as null, silently; state refuses them by this path."""
    nan = serde.NONFINITE
    assert serde.dumps({"x": float("nan")}) == b'{"x":null}'  # why the check exists
    assert serde.unstorable(float("nan")) == ("", nan)
    assert serde.unstorable({"a": [1.0, {"b": float("-inf")}]}) == ("['a'][1]['b']", nan)
    assert serde.unstorable((1, float("inf"))) == ("[1]", nan)

    class Point(BaseModel):
        x: float

    @dataclasses.dataclass
    class Box:
        points: list[Point]

    assert serde.unstorable([Box([Point(x=1), Point(x=float("nan"))])]) == (
        "[0]['points'][1]['x']",
        nan,
    )
    np = pytest.importorskip("numpy")
    assert serde.unstorable({"v": np.array([1.0, np.inf])}) == ("['v'][1]", nan)
    assert serde.unstorable(np.float64("nan")) == ("", nan)
    assert serde.unstorable({"ok": np.array([1, 2])}) is None


def test_unstorable_names_lone_surrogates_and_huge_integers_that_dumps_refuses() -> None:
    """A lone surrogate (bytes decoded with ``surrogateescape``, a JSON body's ``"\\ud800"``) and
    an integer beyond 64 bits pass type checks as str and int, then fail the commit."""
    broken = b"caf\xe9".decode("utf-8", "surrogateescape")  # 'caf\udce9'
    for bad in (broken, "\ud800", 2**64, -(2**63) - 1):
        with pytest.raises(TypeError):
            serde.dumps(bad)
    assert serde.unstorable(broken) == ("", serde.SURROGATE)
    assert serde.unstorable({"notes": ["ok", "café", broken]}) == ("['notes'][2]", serde.SURROGATE)
    assert serde.unstorable({broken: 1}) == (f"[{broken!r}]", serde.SURROGATE)  # a key too
    assert serde.unstorable({"n": [2**64 - 1, -(2**63), 2**64]}) == ("['n'][2]", serde.HUGE_INT)

    class Tag(enum.StrEnum):
        A = "\ud800"

    assert serde.unstorable([Tag.A]) == ("[0]", serde.SURROGATE)
    assert serde.unstorable(["naïve", "日本語", "😀", 2**64 - 1, -(2**63)]) is None


def test_unstorable_names_bytes_that_would_come_back_changed() -> None:
    """``dumps`` writes bytes as text: binary bytes came back from the store with U+FFFD in
    place of what did not decode (a PNG's header, a pickle) while the live value looked fine."""
    png = b"\x89PNG\r\n\x1a\n\x00\x00"
    assert serde.loads(serde.dumps(png)) != png.decode("latin-1")  # what it would have kept
    assert serde.unstorable(png) == ("", serde.NOT_UTF8)
    assert serde.unstorable({"files": [b"ok", png]}) == ("['files'][1]", serde.NOT_UTF8)
    assert serde.unstorable([b"plain", "caf\xc3\xa9".encode("latin-1"), b""]) is None


class _Priced(BaseModel):
    price: decimal.Decimal
    where: pathlib.Path


class _Loose(BaseModel):
    model_config = ConfigDict(arbitrary_types_allowed=True)
    thing: object


@dataclasses.dataclass
class _Holder:
    thing: object


_Pair = collections.namedtuple("_Pair", "a b")


class _Flavour(enum.Enum):
    SWEET = 1


class _Float(float):
    pass


# what dumps writes: natively, through pydantic's JSON mode, or by serde's own default
_WRITTEN = [
    _Flavour.SWEET, [1], collections.OrderedDict(a=1), frozenset([1]), {1: "int key"},
    {_Flavour.SWEET: 1}, {None: 1}, dt.datetime(2026, 1, 1), uuid.uuid4(), b"caf\xc3\xa9",
    _Priced(price=decimal.Decimal("1.5"), where=pathlib.Path("/x")), _Holder(1), {"k": {2, 1}},
]  # fmt: skip
# what dumps refuses: each an object that is not JSON-like, at the path given
_REFUSED = [
    (_Pair(1, 2), ""), (types.MappingProxyType({"a": 1}), ""), (collections.deque([1]), ""),
    (_Float(1.5), ""), (bytearray(b"x"), ""), (decimal.Decimal("1.5"), ""), (range(3), ""),
    ({(1, 2): "tuple key"}, "[(1, 2)]"), (_Loose(thing=object()), "['thing']"),
    (_Holder(object()), "['thing']"), ([1, [2, {"x": decimal.Decimal(1)}]], "[1][1]['x']"),
]  # fmt: skip


@pytest.mark.parametrize("value", _WRITTEN, ids=lambda v: type(v).__name__)
def test_unstorable_passes_every_object_dumps_writes(value: Any) -> None:
    serde.dumps(value)
    assert serde.unstorable(value) is None


@pytest.mark.parametrize(("value", "path"), _REFUSED, ids=lambda v: type(v).__name__)
def test_unstorable_names_every_object_dumps_refuses(value: Any, path: str) -> None:
    """Before: it looked only for NaN, surrogates and huge integers, so a node writing a
    ``Decimal`` passed the check and failed the commit with a bare TypeError."""
    with pytest.raises(TypeError):
        serde.dumps(value)
    found = serde.unstorable(value)
    assert found is not None and found[0] == path and serde.is_unsupported(found[1])
    assert found[1].startswith("an object of type ")


def _nested(depth: int, inner: Any = 0) -> Any:
    for _ in range(depth):
        inner = [inner]
    return inner


def test_unstorable_names_values_nested_deeper_than_what_is_kept() -> None:
    """Before: anything deeper than 200 levels passed the check, so 255 and more failed at the
    write with orjson's bare "Recursion limit reached" (and copying a deeper input recursed)."""
    limit = serde.MAX_DEPTH
    assert serde.unstorable(_nested(limit)) is None
    serde.dumps(_nested(50, _nested(limit)))  # room left for the stored forms' own levels
    for depth in (limit + 1, 255, 100_000):
        assert serde.unstorable(_nested(depth)) == ("", serde.TOO_DEEP)
        assert serde.unstorable({"a": [{"b": _nested(depth)}]}) == ("", serde.TOO_DEEP)
    loop: list[Any] = []
    loop.append(loop)  # a value that contains itself is found too, not a RecursionError
    assert serde.unstorable(loop) == ("", serde.TOO_DEEP)
    with pytest.raises(TypeError, match="nested deeper than 254 levels"):
        serde.dumps(_nested(300))
