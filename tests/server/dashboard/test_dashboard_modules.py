"""The dashboard's pure modules, run in Chromium as the page runs them: the graph layout
(cycles, long edges, no overlaps) and the state diff."""

from __future__ import annotations

import re
from typing import Any

from playwright.sync_api import Page

from tests.server.dashboard.server import Served

GRAPH = {
    "nodes": [
        {"id": i, "label": i}
        for i in ["__start__", "supervisor", "researcher", "tools", "writer", "__end__"]
    ],
    "edges": [
        {"source": "__start__", "target": "supervisor"},
        {"source": "supervisor", "target": "researcher", "conditional": True, "label": "more"},
        {"source": "supervisor", "target": "writer", "conditional": True, "label": "done"},
        {"source": "researcher", "target": "tools"},
        {"source": "tools", "target": "researcher"},  # a cycle
        {"source": "researcher", "target": "supervisor"},  # a cycle back up
        {"source": "tools", "target": "tools"},  # a self loop
        {"source": "__start__", "target": "writer"},  # spans several layers
        {"source": "writer", "target": "__end__"},
    ],
    "entry": ["supervisor"],
}


def module(page: Page, served: Served, name: str, call: str, arg: Any) -> Any:
    page.goto(f"{served.base}/runs")
    base = re.search(r'href="(/assets/[0-9a-f]+)/app.css"', page.content())
    assert base is not None
    return page.evaluate(
        f"async (arg) => {{ const m = await import('{base[1]}/js/{name}.js'); return {call}; }}",
        arg,
    )


def test_graph_layout(page: Page, served: Served) -> None:
    lay = module(page, served, "graph_layout", "m.layout(arg)", GRAPH)
    nodes = {n["id"]: n for n in lay["nodes"]}
    assert set(nodes) == {n["id"] for n in GRAPH["nodes"]}
    boxes = list(nodes.values())
    for i, a in enumerate(boxes):  # no two nodes overlap
        for b in boxes[i + 1 :]:
            apart_x = a["x"] + a["w"] <= b["x"] or b["x"] + b["w"] <= a["x"]
            apart_y = a["y"] + a["h"] <= b["y"] or b["y"] + b["h"] <= a["y"]
            assert apart_x or apart_y, (a["id"], b["id"])
        assert a["x"] >= 0 and a["x"] + a["w"] <= lay["width"]
        assert a["y"] >= 0 and a["y"] + a["h"] <= lay["height"]
    assert nodes["__start__"]["y"] < nodes["supervisor"]["y"] < nodes["researcher"]["y"]
    assert nodes["researcher"]["y"] < nodes["tools"]["y"]
    assert nodes["__end__"]["y"] == max(n["y"] for n in boxes)  # the end is the bottom row
    edges = {(e["source"], e["target"]): e for e in lay["edges"]}
    assert len(edges) == len(GRAPH["edges"])
    back = {k for k, e in edges.items() if e["back"]}
    assert back == {("tools", "researcher"), ("researcher", "supervisor"), ("tools", "tools")}
    for key, e in edges.items():
        if not e["back"]:  # forward edges run downwards
            ys = [p["y"] for p in e["points"]]
            assert ys == sorted(ys), key
    assert len(edges[("__start__", "writer")]["points"]) > 2  # routed through its layers
    paths = module(page, served, "graph_layout", "arg.map(e => m.edgePath(e))", lay["edges"])
    assert all(p.startswith("M") and "C" in p for p in paths)


def test_state_diff(page: Page, served: Served) -> None:
    before = {"log": ["a"], "n": 1, "user": {"name": "x", "tags": [1]}, "gone": True}
    after = {"log": ["a", "b"], "n": 2, "user": {"name": "x", "tags": [2]}, "new": None}
    changes = module(page, served, "diff", "m.diff(arg[0], arg[1])", [before, after])
    got = {(c["op"], c["path"]) for c in changes}
    assert got == {
        ("add", "log[1]"),
        ("chg", "n"),
        ("chg", "user.tags[0]"),
        ("del", "gone"),
        ("add", "new"),
    }
    assert module(page, served, "diff", "m.diff(arg, arg)", after) == []
