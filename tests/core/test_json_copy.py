"""core.json_copy: what a journaled call returned is kept as JSON (the node gets that copy),
and what a run records about itself (events, errors, escalations) is never refused."""

from __future__ import annotations

import collections
import dataclasses
import decimal
import pathlib
import types
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import BaseModel

from tether.core import serde
from tether.core.json_copy import dumps_record, journal_copy, record_copy, scrub_text

BROKEN = b"caf\xe9".decode("utf-8", "surrogateescape")


def test_scrub_text_replaces_only_lone_surrogates() -> None:
    assert scrub_text(BROKEN) == "caf\ufffd"
    assert scrub_text("\ud800 and \udfff") == "\ufffd and \ufffd"
    for fine in ("plain", "naïve ☃ 日本語 😀", ""):
        assert scrub_text(fine) is fine


class Item(BaseModel):
    name: str
    price: decimal.Decimal


@dataclasses.dataclass
class Row:
    id: int
    tags: tuple[str, ...]


def test_journal_copy_is_the_json_the_store_gives_back() -> None:
    got = journal_copy(
        {
            "text": f"read {BROKEN}",
            BROKEN: "a key too",
            "nan": float("nan"),
            "item": Item(name="tea", price=decimal.Decimal("2.50")),
            "row": Row(1, ("a", "b")),
            "pair": collections.namedtuple("P", "a b")(1, 2),
            "queue": collections.deque([3]),
            "view": types.MappingProxyType({"k": 1}),
            "amount": decimal.Decimal("10.50"),
            "path": pathlib.Path("/tmp/x"),
            "set": {2, 1},
            "raw": b"\xff",
        }
    )
    assert got == {
        "text": "read caf\ufffd",
        "caf\ufffd": "a key too",
        "nan": None,
        "item": {"name": "tea", "price": "2.50"},
        "row": {"id": 1, "tags": ["a", "b"]},
        "pair": [1, 2],
        "queue": [3],
        "view": {"k": 1},
        "amount": "10.50",
        "path": "/tmp/x",
        "set": [1, 2],
        "raw": "\ufffd",
    }
    assert journal_copy(got) == got  # a copy of a copy is the same: replay gives what live gave


def test_journal_copy_refuses_what_json_cannot_carry_at_all() -> None:
    with pytest.raises(TypeError, match="64-bit"):
        journal_copy({"id": 2**100})
    with pytest.raises(TypeError, match="object"):
        journal_copy([object()])


def test_a_record_is_never_refused() -> None:
    """Events, errors and escalations: a failure must be recorded whatever it quotes."""
    loop: list[Any] = []
    loop.append(loop)
    got = record_copy(
        {"id": 2**100, "thing": object(), "why": BROKEN, (1, 2): "tuple key", "loop": loop}
    )
    assert got["id"] == str(2**100) and got["why"] == "caf\ufffd"
    assert got["thing"].startswith("<object object at")
    assert got["(1, 2)"] == "tuple key"
    assert isinstance(got["loop"], list)  # a cycle ends as text where it repeats
    assert serde.loads(dumps_record({"ok": 1})) == {"ok": 1}


class _Weird:
    def __repr__(self) -> str:
        raise RuntimeError("no repr")


leaves = st.one_of(
    st.text(alphabet=st.characters(codec=None)),  # lone surrogates included
    st.integers(),  # beyond 64 bits included
    st.floats(),  # NaN and infinity included
    st.binary(max_size=8),
    st.just(object()),
    st.builds(_Weird),
    st.decimals(allow_nan=False),
    st.none(),
)
anything = st.recursive(
    leaves,
    lambda kids: st.one_of(
        st.lists(kids, max_size=4),
        st.tuples(kids, kids),
        st.dictionaries(st.one_of(st.text(max_size=4), st.integers()), kids, max_size=4),
    ),
    max_leaves=20,
)


@given(anything)
def test_dumps_record_writes_anything(value: Any) -> None:
    blob = dumps_record(value)
    serde.loads(blob)  # valid JSON, valid UTF-8
