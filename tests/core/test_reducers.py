"""State reducers: folding laws, order, dedup, right bias, no mutation (hypothesis)."""

from __future__ import annotations

import copy
import functools
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tether.core.reducers import (
    BUILTIN,
    Reducer,
    add,
    append,
    as_reducer,
    maximum,
    merge,
    minimum,
    replace,
    union,
)

ints = st.integers(min_value=-(10**6), max_value=10**6)
scalars = st.one_of(ints, st.text(max_size=4), st.booleans(), st.none())
# an update to a list reducer: one element, or a list of elements
list_updates = st.one_of(ints, st.lists(ints, max_size=5))
unhashable_updates = st.one_of(
    st.dictionaries(st.text(max_size=2), ints, max_size=2),
    st.lists(st.dictionaries(st.text(max_size=2), ints, max_size=2), max_size=3),
)
dict_updates = st.dictionaries(st.text(max_size=3), scalars, max_size=4)

CASES: list[tuple[Reducer, st.SearchStrategy[Any]]] = [
    (append, list_updates),
    (union, list_updates),
    (union, unhashable_updates),
    (merge, dict_updates),
    (add, ints),
    (maximum, ints),
    (minimum, ints),
    (replace, scalars),
]


_NONE: Any = object()


def fold(r: Reducer, updates: list[Any], init: Any = _NONE) -> Any:
    """Apply ``updates`` in order, starting from the field's initial value."""
    if init is _NONE:
        init = r.empty() if r.empty is not None else None
    return functools.reduce(r, updates, init)


def flat(updates: list[Any]) -> list[Any]:
    out: list[Any] = []
    for u in updates:
        out.extend(u if isinstance(u, list) else [u])
    return out


@pytest.mark.parametrize(("reducer", "strategy"), CASES, ids=lambda c: getattr(c, "name", ""))
def test_fold_is_associative(reducer: Reducer, strategy: st.SearchStrategy[Any]) -> None:
    @given(st.lists(strategy, max_size=8), st.lists(strategy, max_size=8))
    def check(a: list[Any], b: list[Any]) -> None:
        assert fold(reducer, a + b) == fold(reducer, b, fold(reducer, a))

    check()


@pytest.mark.parametrize(("reducer", "strategy"), CASES, ids=lambda c: getattr(c, "name", ""))
def test_reducers_never_mutate_their_inputs(
    reducer: Reducer, strategy: st.SearchStrategy[Any]
) -> None:
    @given(st.lists(strategy, min_size=1, max_size=6), strategy)
    def check(prefix: list[Any], update: Any) -> None:
        current = fold(reducer, prefix)
        before_cur, before_upd = copy.deepcopy(current), copy.deepcopy(update)
        out = reducer(current, update)
        assert current == before_cur
        assert update == before_upd
        if isinstance(current, list | dict) and reducer is not replace:
            assert out is not current

    check()


@given(st.lists(list_updates, max_size=10))
def test_append_preserves_order_and_length(updates: list[Any]) -> None:
    out = fold(append, updates)
    expected = flat(updates)
    assert out == expected
    assert len(out) == len(expected)


@given(st.lists(list_updates, max_size=10), st.lists(ints, max_size=5))
def test_append_extends_existing_value(updates: list[Any], start: list[int]) -> None:
    assert fold(append, updates, list(start)) == start + flat(updates)


def test_append_examples() -> None:
    assert append(None, 1) == [1]
    assert append([1], [2, 3]) == [1, 2, 3]
    assert append((1,), (2,)) == [1, 2]
    assert append([], "ab") == ["ab"]  # strings are single items, not sequences
    assert append.empty is not None and append.empty() == []


@given(st.lists(list_updates, max_size=10))
def test_union_never_duplicates_and_keeps_first_seen_order(updates: list[Any]) -> None:
    out = fold(union, updates)
    assert len(out) == len(set(out))
    expected: list[int] = []
    for x in flat(updates):
        if x not in expected:
            expected.append(x)
    assert out == expected


@given(st.lists(unhashable_updates, max_size=6))
def test_union_dedups_unhashable_items(updates: list[Any]) -> None:
    out = fold(union, updates)
    assert all(out.count(x) == 1 for x in out)
    assert all(x in out for x in flat(updates))


def test_union_examples() -> None:
    assert union(None, 1) == [1]
    assert union([1, 2], [2, 3, 1, 4]) == [1, 2, 3, 4]
    assert union([1], {2}) == [1, 2]
    assert union([{"a": 1}], [{"a": 1}, {"a": 2}]) == [{"a": 1}, {"a": 2}]


@given(st.lists(dict_updates, max_size=8))
def test_merge_is_right_biased(updates: list[dict[str, Any]]) -> None:
    out = fold(merge, updates)
    expected: dict[str, Any] = {}
    for u in updates:
        for k, v in u.items():
            expected[k] = v
    assert out == expected
    if updates:
        last = updates[-1]
        assert all(out[k] == v for k, v in last.items())


def test_merge_rejects_non_dict_update() -> None:
    with pytest.raises(TypeError, match="merge reducer expects a dict update, got list"):
        merge({}, [1])


@given(st.lists(ints, min_size=1, max_size=10))
def test_add_max_min_fold_to_builtins(values: list[int]) -> None:
    assert fold(add, values) == sum(values)
    assert fold(maximum, values) == max(values)
    assert fold(minimum, values) == min(values)


def test_add_concatenates_non_numbers() -> None:
    assert fold(add, ["a", "b", "c"]) == "abc"
    assert add(None, 5) == 5


def test_replace_takes_the_update() -> None:
    assert replace(1, 2) == 2
    assert replace([1], None) is None


def test_builtin_names() -> None:
    assert sorted(BUILTIN) == ["add", "append", "max", "merge", "min", "replace", "union"]
    assert {r.name for r in (add, append, maximum, merge, minimum, replace, union)} == set(BUILTIN)
    for name, r in BUILTIN.items():
        assert as_reducer(name) is r
        assert as_reducer(r) is r


def test_as_reducer_custom_and_errors() -> None:
    def longest(cur: Any, upd: Any) -> Any:
        return upd if cur is None or len(upd) > len(cur) else cur

    r = as_reducer(longest)
    assert r.name.startswith("custom:") and r.name.endswith("longest")
    assert r("ab", "abc") == "abc"
    with pytest.raises(ValueError, match=r"unknown reducer 'appendd'; built-ins are \["):
        as_reducer("appendd")
    with pytest.raises(TypeError, match="not a reducer"):
        as_reducer(42)  # type: ignore[arg-type]


@pytest.mark.parametrize("name", ["append", "union", "merge", "add", "max", "min"])
def test_subgraph_fold_is_equivalent_to_sequential_application(name: str) -> None:
    """A subgraph hands its writes to the parent folded into one write per field; applying
    that one write must equal applying every write in order."""
    from tether.graph.subgraph import _fold

    reducer = BUILTIN[name]
    strategy = {
        "append": list_updates,
        "union": list_updates,
        "merge": dict_updates,
        "add": ints,
        "max": ints,
        "min": ints,
    }[name]

    @given(st.lists(strategy, min_size=1, max_size=6), st.lists(strategy, max_size=3))
    def check(values: list[Any], prefix: list[Any]) -> None:
        current = fold(reducer, prefix)
        assert reducer(copy.deepcopy(current), _fold(name, values)) == fold(
            reducer, values, current
        )

    check()


def test_builtin_max_min_and_operator_add_mean_the_named_reducers() -> None:
    """``max(None, 3)`` raises, so the builtins cannot serve as plain reducers (a field's first
    write has no current value); they mean tether's, which also rebuild without user code."""
    import operator

    assert as_reducer(max) is maximum and as_reducer(min) is minimum
    assert as_reducer(operator.add) is add
    assert maximum(None, 3) == 3 and minimum(None, 3) == 3 and add(None, [1]) == [1]


def test_a_reducer_that_cannot_take_current_and_update_is_refused() -> None:
    with pytest.raises(TypeError, match=r"cannot be called as \(current, update\) -> new"):
        as_reducer(lambda only: only)
    with pytest.raises(TypeError, match=r"tether\.append, merge, add, maximum, minimum, union"):
        as_reducer(lambda a, b, c: a)
    # two positional arguments, however they are declared, are fine
    for ok in (
        lambda a, b: b,
        lambda a, b, c=0: b,
        lambda *args: args[-1],
        functools.partial(lambda x, a, b: b, 1),
    ):
        assert as_reducer(ok).name.startswith("custom:")
