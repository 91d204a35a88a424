"""SyncRuntime: an explicit, typed blocking twin for every public Runtime method (a new Runtime
method without one fails here), each exercised against a real store, and the loop-thread bridge
(errors instead of hangs, no thread left behind)."""

from __future__ import annotations

import inspect
import threading
import typing
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any, TypedDict

import pytest

from tether import END, START, Graph, RunContext, RunResult, SyncRuntime, append, interrupt
from tether.core.errors import ConfigurationError, RunStateError
from tether.core.lifecycle import RunStatus
from tether.graph.runtime import Runtime
from tether.graph.sync import SyncRunHandle
from tether.store.memory import MemoryStore
from tether.store.types import Event, RunRecord
from tether.testing.clock import FakeClock

ASYNC_ONLY = {
    "open": "a SyncRuntime opens its Runtime in its constructor",
    # RunHost (tether.graph.host): what the engine's own modules use of the Runtime
    "take_over": "RunHost: the engine resumes a run it holds the lease of",
    "run_subgraph": "RunHost: a subgraph node's child run, from inside a running node",
    "runs_here": "RunHost: whether this process executes a run",
    # worker processes (tether.worker): a Worker drives its Runtime on its own event loop
    "drain": "a Worker's graceful shutdown: stop claiming, hand runs back between steps",
    "add_dead_owner_source": "a Worker's registry names dead workers to its Runtime's claims",
}
"""Public Runtime methods that deliberately have no blocking twin, and why."""

EXTRA = {"iter_events", "store", "owner"}
"""SyncRuntime's own additions (``events`` returns a list; ``iter_events`` is the iterator)."""


class S(TypedDict):
    n: int
    log: Annotated[list[str], append]


def counter(name: str, steps: int = 3) -> Any:
    g = Graph(S, name=name)
    prev = START
    for i in range(steps):
        node = f"s{i}"
        g.add_node(node, lambda s, i=i: {"n": s["n"] + 1, "log": [f"s{i}"]})
        g.add_edge(prev, node)
        prev = node
    g.add_edge(prev, END)
    return g.compile()


def asking(name: str) -> Any:
    g = Graph(S, name=name)
    g.add_node("a", lambda s: {"n": s["n"] + 1})
    g.add_node("ask", lambda s: {"log": [interrupt("?")]})
    g.add_edge(START, "a").add_edge("a", "ask").add_edge("ask", END)
    return g.compile()


def sync_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "tether-sync" and t.is_alive()]


@pytest.fixture
def srt(tmp_path: Path) -> Iterator[SyncRuntime]:
    with SyncRuntime(f"sqlite:///{tmp_path / 'runs.db'}", recover=False) as rt:
        yield rt


# -- the method set ----------------------------------------------------------------------------


def public_methods(cls: type) -> dict[str, Any]:
    return {
        name: fn
        for name, fn in inspect.getmembers(cls, inspect.isfunction)
        if not name.startswith("_")
    }


def test_every_public_runtime_method_has_a_sync_twin_with_the_same_parameters() -> None:
    ours = public_methods(SyncRuntime)
    theirs = public_methods(Runtime)
    assert {n for n, f in theirs.items() if inspect.iscoroutinefunction(f)} - {"open"}
    missing = set(theirs) - set(ours) - set(ASYNC_ONLY)
    assert not missing, (
        f"Runtime methods without a SyncRuntime twin (or ASYNC_ONLY entry): {missing}"
    )
    assert set(ours) - set(theirs) <= EXTRA
    for name in set(theirs) - set(ASYNC_ONLY):
        want = [(p.name, p.kind) for p in inspect.signature(theirs[name]).parameters.values()]
        got = [(p.name, p.kind) for p in inspect.signature(ours[name]).parameters.values()]
        assert got == want, f"SyncRuntime.{name} takes {got}, Runtime.{name} takes {want}"
    init = [(p.name, p.kind, p.default) for p in inspect.signature(Runtime).parameters.values()]
    sync_init = [
        (p.name, p.kind, p.default) for p in inspect.signature(SyncRuntime).parameters.values()
    ]
    assert sync_init == init


def test_methods_are_explicit_and_typed_not_forwarded() -> None:
    assert not hasattr(SyncRuntime, "__getattr__")  # mypy would see Any for every typo
    hints = {n: typing.get_type_hints(f) for n, f in public_methods(SyncRuntime).items()}
    assert hints["run"]["return"] is RunResult
    assert hints["wait"]["return"] is RunResult
    assert hints["start"]["return"] is SyncRunHandle
    assert hints["get_run"]["return"] is RunRecord
    assert hints["events"]["return"] == list[Event]
    for name, fn in public_methods(SyncRuntime).items():
        assert not inspect.iscoroutinefunction(fn), name
        assert "return" in hints[name], f"SyncRuntime.{name} has no return annotation"


# -- each method, against SQLite ---------------------------------------------------------------


def test_run_resume_history_state_and_events(srt: SyncRuntime) -> None:
    res = srt.run(asking("sync_ask"), {"n": 1, "log": []})
    assert isinstance(res, RunResult) and res.status is RunStatus.ESCALATED
    done = srt.resume(res.run_id, "answer")
    assert done.status is RunStatus.COMPLETED and done.unwrap() == {"n": 2, "log": ["answer"]}
    assert [h.step for h in srt.history(res.run_id)] == [0, 1, 2]
    assert [h.step for h in srt.history(res.run_id, after_step=0, limit=1)] == [1]
    assert srt.get_state(res.run_id, 1) == {"n": 2, "log": []}
    events = srt.events(res.run_id)
    assert events[-1].type == "lifecycle" and events[-1].data["to"] == "COMPLETED"
    assert [e.seq for e in srt.iter_events(res.run_id, follow=False)] == [e.seq for e in events]


def test_start_wait_and_the_sync_handle(srt: SyncRuntime) -> None:
    handle = srt.start(counter("sync_start"), {"n": 0, "log": []})
    assert isinstance(handle, SyncRunHandle) and handle.created
    assert handle.result() == {"n": 3, "log": ["s0", "s1", "s2"]}
    assert srt.wait(handle.run_id).status is RunStatus.COMPLETED
    assert [e.type for e in handle.events()][-1] == "lifecycle"
    again = srt.start(counter("sync_start"), {"n": 0, "log": []}, idempotency_key="k")
    assert srt.start(counter("sync_start"), {"n": 0, "log": []}, idempotency_key="k").run_id == (
        again.run_id
    )


def test_resume_without_waiting_returns_a_sync_handle(srt: SyncRuntime) -> None:
    res = srt.run(asking("sync_nowait"), {"n": 0, "log": []})
    handle = srt.resume(res.run_id, "later", wait=False)
    assert isinstance(handle, SyncRunHandle)
    assert handle.wait().unwrap() == {"n": 1, "log": ["later"]}


def test_iter_events_follows_a_live_run_and_can_stop_early(srt: SyncRuntime) -> None:
    gate = threading.Event()

    def slow(s: S) -> dict[str, Any]:
        assert gate.wait(60), "hang guard"
        return {"n": s["n"] + 1}

    g = Graph(S, name="sync_live")
    g.add_node("slow", slow, thread=True).add_edge(START, "slow").add_edge("slow", END)
    handle = srt.start(g.compile(), {"n": 0, "log": []})
    seen: list[str] = []
    for ev in srt.iter_events(handle.run_id):  # follows: ends when the run settles
        seen.append(ev.type)
        if ev.type == "node_start" or len(seen) == 3:
            gate.set()
    assert handle.wait().status is RunStatus.COMPLETED
    assert seen[-1] == "lifecycle"
    stream = srt.iter_events(handle.run_id, follow=True)
    first = next(stream)
    stream.close()  # leaving early closes the async stream on the loop
    assert first.seq == 1


def test_submit_then_recover_once_executes_it(tmp_path: Path) -> None:
    wf = counter("sync_submit")
    with SyncRuntime(f"sqlite:///{tmp_path / 'q.db'}", recover=False, workflows=[wf]) as srt:
        handle = srt.submit(wf, {"n": 10, "log": []})
        assert srt.get_run(handle.run_id).status is RunStatus.PLANNED
        assert srt.recover_once() == [handle.run_id]
        assert handle.wait().state["n"] == 13


def test_cancel_fork_list_and_get_run(srt: SyncRuntime) -> None:
    parked = srt.run(asking("sync_cancel"), {"n": 0, "log": []})
    rec = srt.cancel(parked.run_id, reason="no longer needed")
    assert rec.status is RunStatus.CANCELLED
    with pytest.raises(RunStateError):
        srt.cancel(parked.run_id)
    done = srt.run(counter("sync_fork"), {"n": 0, "log": []})
    fork = srt.fork(done.run_id, 1, {"n": 100})
    assert isinstance(fork, SyncRunHandle)
    assert fork.wait().state["n"] == 102
    assert srt.get_run(fork.run_id).parent_run_id == done.run_id
    ids = [r.run_id for r in srt.list_runs(limit=10)]
    assert {parked.run_id, done.run_id, fork.run_id} <= set(ids)
    assert [r.run_id for r in srt.list_runs(status=[RunStatus.CANCELLED])] == [parked.run_id]


def test_threads_on_the_sync_runtime(srt: SyncRuntime) -> None:
    wf = counter("sync_thread", 1)
    first = srt.run(wf, {"n": 0, "log": []}, thread_id="t1")
    second = srt.run(wf, {"log": ["again"]}, thread_id="t1")
    assert second.state == {"n": 2, "log": ["s0", "again", "s0"]}  # continued the thread
    assert {r.run_id for r in srt.list_runs(thread_id="t1")} == {first.run_id, second.run_id}


def test_prune_purge_register_and_workflow_for() -> None:
    clock = FakeClock(1000.0)
    wf = counter("sync_retention", 5)
    with SyncRuntime(MemoryStore(clock=clock), recover=False, clock=clock) as srt:
        assert srt.register(wf) is wf
        res = srt.run(wf, {"n": 0, "log": []})
        assert srt.workflow_for(srt.get_run(res.run_id)) is wf
        assert srt.prune(res.run_id, keep_last=2) == 4
        assert [h.step for h in srt.history(res.run_id)] == [4, 5]
        assert srt.purge(60) == 0
        clock.advance(120)
        assert srt.purge(60) == 1
        assert srt.list_runs() == []
        assert srt.store is srt.runtime.store and srt.owner == srt.runtime.owner


# -- the bridge --------------------------------------------------------------------------------


def test_close_is_idempotent_stops_the_thread_and_later_calls_raise() -> None:
    before = len(sync_threads())
    srt = SyncRuntime(MemoryStore(), recover=False)
    assert len(sync_threads()) == before + 1
    srt.close()
    srt.close()
    assert len(sync_threads()) == before
    with pytest.raises(ConfigurationError, match="closed"):
        srt.list_runs()


def test_a_runtime_that_fails_to_open_leaves_no_thread_behind() -> None:
    before = len(sync_threads())
    with pytest.raises(ConfigurationError):
        SyncRuntime("nosuchscheme://nowhere")
    assert len(sync_threads()) == before


@pytest.mark.timeout(120)  # hang guard: before the check, this deadlocked
def test_calling_it_from_inside_a_node_raises_instead_of_hanging() -> None:
    box: dict[str, SyncRuntime] = {}

    def inner(s: S, ctx: RunContext) -> dict[str, Any]:
        box["rt"].list_runs()  # on the runtime's own loop thread: would wait on itself
        return {}

    g = Graph(S, name="sync_reentrant")
    g.add_node("inner", inner).add_edge(START, "inner").add_edge("inner", END)
    with SyncRuntime(MemoryStore(), recover=False) as srt:
        box["rt"] = srt
        res = srt.run(g.compile(), {"n": 0, "log": []})
    assert res.status is RunStatus.FAILED
    assert isinstance(res.cause, ConfigurationError)
    assert "its own event loop" in str(res.cause)
