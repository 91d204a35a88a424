"""``child_run_id``: stable, one URL path segment, at most 200 characters, never shared."""

from __future__ import annotations

import re

from hypothesis import given
from hypothesis import strategies as st

from tether.core.ids import MAX_ID, child_run_id, legacy_child_run_id, new_run_id

SEGMENT = re.compile(r"^[A-Za-z0-9_.:@-]{1,200}$")  # the server's run id pattern


def test_a_safe_task_id_is_kept_as_it_reads() -> None:
    assert child_run_id("0190abc", "1:sub:0") == "0190abc.1:sub:0"
    assert child_run_id("0190abc", "2:fan:0", 3) == "0190abc.2:fan:0.3"
    assert legacy_child_run_id("0190abc", "2:fan:0", 3) == "0190abc/2:fan:0/3"


def test_unsafe_names_are_spelt_safely_and_stay_apart() -> None:
    spaced = child_run_id("r", "1:review draft:0")
    underscored = child_run_id("r", "1:review_draft:0")
    assert SEGMENT.match(spaced) and spaced.startswith("r.1:review_draft:0-")
    assert underscored == "r.1:review_draft:0" != spaced
    assert child_run_id("r", "1:relecture é/x:0") != child_run_id("r", "1:relecture è/x:0")


@given(st.lists(st.text(min_size=1, max_size=300), min_size=1, max_size=3))
def test_every_child_id_is_one_path_segment(parts: list[str]) -> None:
    parent = new_run_id()
    child = child_run_id(parent, *parts)
    assert SEGMENT.match(child) and len(child) <= MAX_ID
    assert child == child_run_id(parent, *parts)  # found again by a re-run task
    assert child_run_id(child, "1:deeper:0").startswith(child[:30])  # nests
