"""One workflow per name, and a run resumes only with the workflow version it started with."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Annotated, Any, TypedDict

import pytest

from tether import (
    END,
    START,
    ConfigurationError,
    Graph,
    GraphDefinitionError,
    RunResult,
    RunStateError,
    RunStatus,
    Runtime,
    append,
    interrupt,
)
from tether.core.errors import WorkflowConflictError, WorkflowVersionError
from tether.store.memory import MemoryStore
from tether.store.sqlite import SqliteStore


class Review(TypedDict, total=False):
    log: Annotated[list[str], append]


RAN: list[str] = []


def draft(s: Any) -> dict[str, Any]:
    RAN.append("draft")
    return {"log": [f"draft:{interrupt('ok?')}"]}


def publish(s: Any) -> dict[str, Any]:
    RAN.append("publish")
    return {"log": "published"}


def delete_everything(s: Any) -> dict[str, Any]:
    RAN.append("delete_everything")
    return {"log": "deleted"}


def v1() -> Any:
    g = Graph(Review)  # no name: it is "review", from the state class
    g.add_node("draft", draft).add_node("publish", publish)
    g.add_edge(START, "draft").add_edge("draft", "publish").add_edge("publish", END)
    return g.compile()


def v2() -> Any:
    """Another workflow that happens to use the same state class, so the same default name."""
    g = Graph(Review)
    g.add_node("draft", draft).add_node("purge", delete_everything)
    g.add_edge(START, "draft").add_edge("draft", "purge").add_edge("purge", END)
    return g.compile()


WF = v1()


def test_two_different_workflows_under_one_name_are_refused() -> None:
    a, b = v1(), v2()
    assert a.name == b.name == "review"
    rt = Runtime(MemoryStore(), workflows=[a], recover=False)
    with pytest.raises(WorkflowConflictError, match=r"two different workflows are named 'review'"):
        rt.register(b)
    with pytest.raises(ConfigurationError, match=r"differ in nodes, edges.*name='\.\.\.'"):
        Runtime(MemoryStore(), workflows=[a, b], recover=False)
    # the very same workflow, or an identical rebuild (a re-imported module), is fine
    assert rt.register(a) is a
    again = v1()
    assert again.version == a.version
    assert rt.register(again) is again


def test_a_subgraph_named_like_its_parent_is_refused_at_build_time() -> None:
    child = v1()
    g = Graph(Review)
    with pytest.raises(GraphDefinitionError, match="same name as this graph"):
        g.add_node("child", child)


def _variant(**change: Any) -> Any:
    class Other(TypedDict, total=False):
        log: Annotated[list[str], append]
        extra: int

    state = change.get("state", Review)
    g = Graph(state, name="review")
    g.add_node("draft", change.get("fn", draft)).add_node("publish", publish)
    g.add_edge(START, "draft").add_edge("draft", "publish").add_edge("publish", END)
    if change.get("route"):
        g.add_conditional_edges("publish", lambda s: END, [END])
    return g.compile()


def test_the_version_follows_structure_not_bodies() -> None:
    base = _variant()
    assert base.version == WF.version == _variant().version
    assert len(base.version) == 16

    def draft(s: Any) -> dict[str, Any]:  # same name, another body: a bug fix
        return {"log": "fixed"}

    def rewrite(s: Any) -> dict[str, Any]:
        return {}

    class Wider(TypedDict, total=False):
        log: Annotated[list[str], append]
        extra: int

    class Retyped(TypedDict, total=False):
        log: Annotated[list[int], append]

    class Replaced(TypedDict, total=False):
        log: list[str]

    # a local function's qualname carries its scope, so compare with one defined alike
    assert _variant(fn=draft).version != base.version
    assert _variant(fn=draft).version == _variant(fn=draft).version
    assert _variant(fn=rewrite).version != _variant(fn=draft).version
    assert _variant(state=Wider).version != base.version
    assert _variant(state=Retyped).version != base.version
    assert _variant(state=Replaced).version != base.version
    assert _variant(route=True).version != base.version
    assert v2().version != base.version


def test_the_version_is_the_same_in_another_process_loaded_another_way() -> None:
    """A run started by ``python app.py`` (module ``__main__``) is resumed by the CLI with
    ``--app app.py:WF`` (another module name) in another process: same version."""
    path = Path(__file__).resolve()
    root = path.parents[2]
    code = f"from tether.core.refs import load_ref; print(load_ref({str(path) + ':WF'!r}).version)"
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=120,
        env={"PYTHONHASHSEED": "123", "PATH": ""},
        check=True,
    )
    assert out.stdout.strip() == WF.version


async def test_a_parked_run_is_not_resumed_by_another_workflow_of_its_name(
    tmp_path: Path,
) -> None:
    RAN.clear()
    db = tmp_path / "runs.db"
    old = v1()
    async with Runtime(SqliteStore(db), workflows=[old], recover=False) as rt:
        res = await rt.run(old, {})
        assert res.status is RunStatus.ESCALATED
        assert res.record is not None
        assert res.record.metadata["workflow_version"] == old.version

    new = v2()  # deployed later under the same name
    async with Runtime(SqliteStore(db), workflows=[new], recover=False) as rt:
        with pytest.raises(WorkflowVersionError, match="allow_version_change=True") as info:
            await rt.resume(res.run_id, "yes")
        assert isinstance(info.value, RunStateError)
        assert (info.value.recorded, info.value.current) == (old.version, new.version)
        run = await rt.get_run(res.run_id)
        assert run.status is RunStatus.ESCALATED and run.owner is None
        assert RAN == ["draft"]  # nothing of the other workflow ran

        # a deliberate migration: continue with the new structure, and record it
        done = await rt.resume(res.run_id, "yes", allow_version_change=True)
        assert isinstance(done, RunResult)
        assert done.status is RunStatus.COMPLETED
        assert done.state["log"] == ["draft:yes", "deleted"]
        run = await rt.get_run(res.run_id)
        assert run.metadata["workflow_version"] == new.version
        changed = [e for e in await rt.store.list_events(res.run_id) if e.type.startswith("work")]
        assert [(e.type, e.data["from"], e.data["to"]) for e in changed] == [
            ("workflow_version_changed", old.version, new.version)
        ]


async def test_the_same_workflow_resumes_from_another_runtime(tmp_path: Path) -> None:
    db = tmp_path / "runs.db"
    async with Runtime(SqliteStore(db), workflows=[v1()], recover=False) as rt:
        res = await rt.run(WF, {})
    async with Runtime(SqliteStore(db), workflows=[v1()], recover=False) as rt:
        done = await rt.resume(res.run_id, "yes")
        assert isinstance(done, RunResult) and done.status is RunStatus.COMPLETED


async def test_recovery_does_not_run_an_orphan_with_another_workflow_version(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    RAN.clear()
    db = tmp_path / "runs.db"
    async with Runtime(SqliteStore(db), workflows=[v1()], recover=False) as rt:
        handle = await rt.submit(WF, {})
    async with Runtime(SqliteStore(db), workflows=[v2()], recover=False) as rt:
        caplog.set_level("WARNING", logger="tether")
        assert await rt.recover_once() == []
        token = (await rt.get_run(handle.run_id)).lease_token
        # refused once, then left alone: no claim, release and traceback on every poll
        assert await rt.recover_once() == []
        run = await rt.get_run(handle.run_id)
        assert run.status is RunStatus.PLANNED and run.owner is None
        assert run.lease_token == token
        refusals = [r for r in caplog.records if handle.run_id in r.getMessage()]
        assert len(refusals) == 1 and refusals[0].levelname == "WARNING"
        assert refusals[0].exc_info is None
    assert RAN == []
    async with Runtime(SqliteStore(db), workflows=[v1()], recover=False) as rt:
        assert await rt.recover_once() == [handle.run_id]
        res = await rt.wait(handle.run_id, timeout=120)
        assert res.status is RunStatus.ESCALATED and RAN == ["draft"]


async def test_a_fork_records_the_version_it_runs_with(rt: Runtime) -> None:
    res = await rt.run(WF, {})
    fork = await rt.fork(res.run_id, 0)
    forked = await rt.wait(fork.run_id, timeout=120)
    assert forked.record is not None
    assert forked.record.metadata["workflow_version"] == WF.version


def test_routes_with_and_without_declared_targets_get_a_version() -> None:
    """Two routes from one node, one declaring its targets and one not (None vs a list in the
    fingerprint), must not break compiling."""
    g = Graph(Review, name="routes")
    g.add_node("a", lambda s: None).add_node("b", lambda s: None)
    g.add_edge(START, "a").add_edge("b", END)
    g.add_conditional_edges("a", lambda s: "b", ["b"])
    g.add_conditional_edges("a", lambda s: END)
    assert len(g.compile().version) == 16
