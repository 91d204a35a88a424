"""Versions of one workflow, ``shipping``, for the upgrade tests (``tether runs upgrade --app
tests.graph.upgrade_app:new_code``).

* ``v1``: pack -> ship (ship asks a question when the input says ``ask``);
* ``v2`` (the new code): pack -> label -> ship: a node added, every v1 node kept;
* ``v3``: box -> ship: ``pack`` is gone, so a run that has not packed yet cannot move to it;
* ``v4``: v2 without the ``note`` state field;
* ``v5``: v2 with ``note`` an ``int``: a run that noted text cannot carry it over.
"""

from __future__ import annotations

from typing import Annotated, Any, TypedDict

from tether import END, START, Graph, append
from tether.graph.context import interrupt


class Parcel(TypedDict, total=False):
    log: Annotated[list[str], append]
    note: str
    ask: bool


class Lean(TypedDict, total=False):
    log: Annotated[list[str], append]
    ask: bool


class Counted(TypedDict, total=False):
    log: Annotated[list[str], append]
    note: int
    ask: bool


FAILING: set[str] = set()
"""Nodes that raise while named here (a FAILED run, for the tests)."""


def pack(s: Any) -> dict[str, Any]:
    if "pack" in FAILING:
        raise RuntimeError("the packing machine is jammed")
    return {"log": ["pack"]}


def label(s: Any) -> dict[str, Any]:
    return {"log": ["label"]}


def box(s: Any) -> dict[str, Any]:
    return {"log": ["box"]}


def ship(s: Any) -> dict[str, Any]:
    if s.get("ask"):
        return {"log": [f"ship:{interrupt('which carrier?')}"]}
    return {"log": ["ship"]}


def _chain(state: type[Any], *nodes: Any) -> Any:
    g = Graph(state, name="shipping")
    prev = START
    for fn in nodes:
        g.add_node(fn.__name__, fn)
        g.add_edge(prev, fn.__name__)
        prev = fn.__name__
    g.add_edge(prev, END)
    return g.compile()


v1 = _chain(Parcel, pack, ship)
v2 = _chain(Parcel, pack, label, ship)
v3 = _chain(Parcel, box, ship)
v4 = _chain(Lean, pack, label, ship)
v5 = _chain(Counted, pack, label, ship)
new_code = [v2]
