"""The audit log's canonical JSON: its one-pass writer for plain data (``_plain_text``) and its
reused C encoder write exactly what ``json.dumps(sort_keys, compact separators, ASCII)`` writes
of ``plain_json``'s copy, the text every hash of an existing audit chain was taken over."""

from __future__ import annotations

import json
import math
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from tether.governance.signing import canonical_json, plain_json


def reference(value: Any, strict: bool = False) -> str:
    plain = plain_json(value, strict=strict)
    return json.dumps(plain, sort_keys=True, separators=(",", ":"), ensure_ascii=True)


scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**80), max_value=2**80)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.sampled_from([0.0, -0.0, 1e16, 1e-7, 5e-324, 2.0**53 + 1, 1e22])
    | st.text(alphabet=st.characters(codec="utf-8") | st.sampled_from('\u2028\x00\x1f"\\/é😀'))
)
plain = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.text(max_size=6), inner, max_size=4)
        | st.tuples(inner, inner)
    ),
    max_leaves=25,
)
odd = st.recursive(  # what the long way converts first: non-string keys, NaN, sets, bytes
    scalars | st.just(math.nan) | st.just(math.inf) | st.binary(max_size=4),
    lambda inner: (
        st.dictionaries(st.integers(-3, 3) | st.text(max_size=3), inner, max_size=3)
        | st.lists(inner, max_size=3)
    ),
    max_leaves=12,
)


@settings(max_examples=400, deadline=None)
@given(plain)
def test_plain_data_is_written_as_json_dumps_writes_it(value: Any) -> None:
    assert canonical_json(value) == reference(value)
    assert canonical_json({"data": value, "kind": "x"}) == reference({"data": value, "kind": "x"})


@settings(max_examples=300, deadline=None)
@given(odd)
def test_data_needing_conversion_takes_the_long_way_to_the_same_text(value: Any) -> None:
    wrapped = {"v": value}
    assert canonical_json(wrapped) == reference(wrapped)


def test_a_lone_surrogate_and_a_huge_int_are_written_alike() -> None:
    for value in ({"s": "\ud800"}, {"n": 10**40}, {"t": (1, [2, {"b": 1, "a": 2}])}):
        assert canonical_json(value) == reference(value)
