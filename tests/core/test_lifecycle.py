"""The run lifecycle state machine (DESIGN §2): exact table, random walks, path_to."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tether.core.errors import IllegalTransitionError, UserError
from tether.core.lifecycle import (
    ACTIVE,
    FINISHED,
    PARKED,
    TERMINAL,
    TRANSITIONS,
    RunStatus,
    can_transition,
    check_transition,
    path_to,
)

S = RunStatus
ALL = list(RunStatus)

# The design's diagram, plus the three documented extra edges
# (VALIDATING → EXECUTING, WAITING_FOR_TOOL → ESCALATED | FAILED, VALIDATING → FAILED).
EXPECTED = {
    S.RECEIVED: {S.PLANNED, S.CANCELLED},
    S.PLANNED: {S.EXECUTING, S.CANCELLED},
    S.EXECUTING: {S.WAITING_FOR_TOOL, S.VALIDATING, S.ESCALATED, S.FAILED, S.CANCELLED},
    S.WAITING_FOR_TOOL: {S.EXECUTING, S.VALIDATING, S.ESCALATED, S.FAILED, S.CANCELLED},
    S.VALIDATING: {S.COMPLETED, S.EXECUTING, S.ESCALATED, S.FAILED, S.CANCELLED},
    S.ESCALATED: {S.EXECUTING, S.FAILED, S.CANCELLED},
    S.FAILED: {S.PLANNED},
    S.COMPLETED: set(),
    S.CANCELLED: set(),
}


def test_transition_table_is_pinned() -> None:
    assert {k: set(v) for k, v in TRANSITIONS.items()} == EXPECTED
    assert set(TRANSITIONS) == set(RunStatus)


def test_state_groups() -> None:
    assert {S.COMPLETED, S.CANCELLED} == TERMINAL
    assert {S.COMPLETED, S.CANCELLED, S.FAILED} == FINISHED
    assert {S.ESCALATED} == PARKED
    assert {S.RECEIVED, S.PLANNED, S.EXECUTING, S.WAITING_FOR_TOOL, S.VALIDATING} == ACTIVE
    # every status is in exactly one of ACTIVE, PARKED, FINISHED
    for s in RunStatus:
        assert [s in ACTIVE, s in PARKED, s in FINISHED].count(True) == 1, s


def test_status_is_a_str_enum() -> None:
    assert str(S.WAITING_FOR_TOOL) == "WAITING_FOR_TOOL"
    assert S("ESCALATED") is S.ESCALATED
    assert S.COMPLETED == "COMPLETED"


@pytest.mark.parametrize("state", sorted(TERMINAL, key=str))
def test_terminal_states_have_no_exit(state: RunStatus) -> None:
    assert TRANSITIONS[state] == frozenset()
    for dst in RunStatus:
        assert not can_transition(state, dst)
        with pytest.raises(IllegalTransitionError):
            check_transition(state, dst)


@pytest.mark.parametrize("state", [s for s in RunStatus if s not in TERMINAL and s != S.FAILED])
def test_every_live_state_can_be_cancelled(state: RunStatus) -> None:
    assert can_transition(state, S.CANCELLED)
    check_transition(state, S.CANCELLED)


def test_failed_only_goes_back_to_planned() -> None:
    assert TRANSITIONS[S.FAILED] == frozenset({S.PLANNED})
    with pytest.raises(IllegalTransitionError):
        check_transition(S.FAILED, S.CANCELLED)
    with pytest.raises(IllegalTransitionError):
        check_transition(S.FAILED, S.EXECUTING)
    # ...but a failed run can still reach CANCELLED through a re-plan
    assert path_to(S.FAILED, S.CANCELLED) == [S.PLANNED, S.CANCELLED]


def test_illegal_transition_error_carries_the_states() -> None:
    with pytest.raises(IllegalTransitionError) as ei:
        check_transition("COMPLETED", "EXECUTING")
    assert ei.value.src == "COMPLETED"
    assert ei.value.dst == "EXECUTING"
    assert str(ei.value) == "illegal lifecycle transition COMPLETED -> EXECUTING"
    assert isinstance(ei.value, UserError)


def test_check_transition_rejects_unknown_names() -> None:
    with pytest.raises(ValueError):
        check_transition("RUNNING", "COMPLETED")


@given(st.lists(st.sampled_from(ALL), max_size=60), st.sampled_from(ALL))
def test_random_walk_follows_the_table_or_raises(
    attempts: list[RunStatus], start: RunStatus
) -> None:
    cur = start
    taken = [cur]
    for dst in attempts:
        legal = dst in EXPECTED[cur]
        assert can_transition(cur, dst) is legal
        if legal:
            check_transition(cur.value, dst.value)  # str form accepted too
            cur = dst
            taken.append(cur)
        else:
            with pytest.raises(IllegalTransitionError) as ei:
                check_transition(cur, dst)
            assert (ei.value.src, ei.value.dst) == (cur.value, dst.value)
    for a, b in itertools.pairwise(taken):
        assert b in EXPECTED[a]
    if taken[0] in TERMINAL:
        assert taken == [taken[0]]


def _distance(src: RunStatus, dst: RunStatus) -> int | None:
    """Independent BFS over the expected table."""
    if src == dst:
        return 0
    seen, frontier, d = {src}, [src], 0
    while frontier:
        d += 1
        nxt = []
        for s in frontier:
            for t in EXPECTED[s]:
                if t == dst:
                    return d
                if t not in seen:
                    seen.add(t)
                    nxt.append(t)
        frontier = nxt
    return None


@given(st.sampled_from(ALL), st.sampled_from(ALL))
def test_path_to_is_a_shortest_legal_path(src: RunStatus, dst: RunStatus) -> None:
    dist = _distance(src, dst)
    if dist is None:
        with pytest.raises(IllegalTransitionError):
            path_to(src, dst)
        return
    path = path_to(src, dst)
    assert len(path) == dist
    cur = src
    for hop in path:
        check_transition(cur, hop)
        cur = hop
    assert cur == dst
    assert src not in path or src == dst


@pytest.mark.parametrize("src", ALL)
@pytest.mark.parametrize("dst", ALL)
def test_path_to_exhaustive(src: RunStatus, dst: RunStatus) -> None:
    dist = _distance(src, dst)
    if dist is None:
        with pytest.raises(IllegalTransitionError):
            path_to(src, dst)
    else:
        path = path_to(src, dst)
        assert len(path) == dist
        assert path == [] or path[-1] == dst


def test_path_to_examples() -> None:
    assert path_to(S.WAITING_FOR_TOOL, S.COMPLETED) == [S.VALIDATING, S.COMPLETED]
    assert path_to(S.EXECUTING, S.COMPLETED) == [S.VALIDATING, S.COMPLETED]
    assert path_to(S.RECEIVED, S.EXECUTING) == [S.PLANNED, S.EXECUTING]
    assert path_to(S.ESCALATED, S.ESCALATED) == []
    with pytest.raises(IllegalTransitionError):
        path_to(S.COMPLETED, S.EXECUTING)
    with pytest.raises(IllegalTransitionError):
        path_to(S.PLANNED, S.RECEIVED)
