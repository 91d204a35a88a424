"""``tether.client`` against a live ``tether serve`` (real uvicorn, SQLite, embedded workers):
every method, sync and async."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from tests.client.conftest import LiveServer
from tether import InvalidInputError, RunStatus
from tether.client import AsyncClient, Client, Run


def test_submit_wait_get(server: LiveServer) -> None:
    with Client(server.url) as c:
        run = c.submit("echo", {"text": "hi"}, metadata={"by": "test"})
        assert run.workflow == "echo" and run.run_id
        done = c.wait(run.run_id, timeout=120)
        assert done.status is RunStatus.COMPLETED and done.finished and done.settled
        assert done.state == {"text": "hi", "answer": "HI"}
        got = c.get(run.run_id)
        assert got.metadata["by"] == "test"
        assert got.status is RunStatus.COMPLETED
        assert c.health()


def test_wait_with_no_time_left_looks_once(server: LiveServer) -> None:
    """``wait(timeout=0)`` answered TimeoutError for a run that had finished long before (the
    wait was cut before it first looked); a negative or NaN timeout is a caller's mistake."""
    with Client(server.url) as c:
        run = c.submit("echo", {"text": "hi"})
        assert c.wait(run.run_id, timeout=120).status is RunStatus.COMPLETED
        assert c.wait(run.run_id, timeout=0).status is RunStatus.COMPLETED
        for bad in (-1, float("nan"), True):
            with pytest.raises(InvalidInputError, match="wait timeout must be a finite number"):
                c.wait(run.run_id, timeout=bad)


def test_run_is_submit_then_wait(server: LiveServer) -> None:
    with Client(server.url) as c:
        assert c.run("echo", {"text": "x"}).state["answer"] == "X"  # type: ignore[index]


def test_idempotency_key_gives_one_run(server: LiveServer) -> None:
    with Client(server.url) as c:
        a = c.submit("echo", {"text": "once"}, idempotency_key="k-1")
        b = c.submit("echo", {"text": "once"}, idempotency_key="k-1")
        assert a.run_id == b.run_id


def test_list_pages_and_filters(server: LiveServer) -> None:
    with Client(server.url) as c:
        ids = [c.submit("echo", {"text": str(i)}).run_id for i in range(5)]
        for run_id in ids:
            c.wait(run_id, timeout=120)
        c.wait(c.submit("ask", {"question": "q"}).run_id, timeout=120)
        listed = [r.run_id for r in c.list_runs(workflow="echo", page_size=2)]
        assert listed == list(reversed(ids)), "newest first, across three pages"
        first = c.list_page(workflow="echo", limit=2)
        assert len(first.items) == 2 and first.next_cursor is not None
        assert [r.run_id for r in c.list_runs(workflow="echo", limit=3)] == listed[:3]
        waiting = list(c.list_runs(status=RunStatus.ESCALATED))
        assert [r.workflow for r in waiting] == ["ask"]
        assert all(r.state is None for r in waiting), "list items are summaries"


def test_events_follow_and_pages(server: LiveServer) -> None:
    with Client(server.url) as c:
        run = c.submit("count", {"n": 5, "pause": 0.01})
        followed = list(c.events(run.run_id))
        live = [e for e in followed if e.seq]  # the stored events (live-only ones: seq 0)
        progress = {e.kind for e in followed if not e.seq}
        assert progress <= {"step_started", "node_started", "node_finished"}
        seqs = [e.seq for e in live]
        assert seqs == sorted(set(seqs)) and seqs[0] == 1
        assert live[-1].kind == "lifecycle" and live[-1].data["to"] == "COMPLETED"
        stored = list(c.events(run.run_id, follow=False))
        assert [e.seq for e in stored] == seqs
        tail = list(c.events(run.run_id, after=seqs[-3]))
        assert [e.seq for e in tail] == seqs[-2:]
        page = c.events_page(run.run_id, limit=2)
        assert [e.seq for e in page.items] == seqs[:2] and page.next_cursor


def test_history_state_and_fork(server: LiveServer) -> None:
    with Client(server.url) as c:
        run = c.wait(c.submit("count", {"n": 3}).run_id, timeout=120)
        steps = list(c.history(run.run_id))
        assert [s.step for s in steps] == list(range(run.step + 1))
        assert steps[1].nodes == ["tick"]
        at1 = c.state(run.run_id, 1)
        assert at1.step == 1 and at1.state["i"] == 1
        assert c.state(run.run_id).state["i"] == 3
        fork = c.fork(run.run_id, 1, {"n": 5})
        assert fork.parent_run_id == run.run_id
        done = c.wait(fork.run_id, timeout=120)
        assert done.status is RunStatus.COMPLETED and done.state["i"] == 5  # type: ignore[index]


def test_interrupt_resume(server: LiveServer) -> None:
    with Client(server.url) as c:
        run = c.submit("ask", {"question": "six times seven?"})
        parked = c.wait(run.run_id, timeout=120)
        assert parked.status is RunStatus.ESCALATED
        assert parked.interrupts[0]["payload"] == {"question": "six times seven?"}
        pending = c.interrupts()
        assert [i["run_id"] for i in pending] == [run.run_id]
        c.resume(run.run_id, 42)
        done = c.wait(run.run_id, timeout=120)
        assert done.status is RunStatus.COMPLETED
        assert done.state["answer"] == "the human said 42"  # type: ignore[index]


def test_cancel(server: LiveServer) -> None:
    with Client(server.url) as c:
        run = c.submit("count", {"n": 100000, "pause": 0.01})
        cancelled = c.cancel(run.run_id, "enough")
        assert cancelled.status is RunStatus.CANCELLED
        assert c.wait(run.run_id, timeout=120).status is RunStatus.CANCELLED


def test_workflows(server: LiveServer) -> None:
    with Client(server.url) as c:
        wfs = {w.name: w for w in c.workflows()}
        assert set(wfs) == {"echo", "ask", "count", "refunds"}
        node_ids = {n["id"] for n in wfs["count"].graph["nodes"]}
        assert "tick" in node_ids and wfs["count"].version


async def test_async_client(server: LiveServer) -> None:
    async with AsyncClient(server.url) as c:
        run = await c.submit("echo", {"text": "async"})
        done = await c.wait(run.run_id, timeout=120)
        assert isinstance(done, Run) and done.state == {"text": "async", "answer": "ASYNC"}
        kinds = [e.kind async for e in c.events(run.run_id)]
        assert "lifecycle" in kinds
        assert [r.run_id async for r in c.list_runs(limit=1)] == [run.run_id]
        assert [s.step async for s in c.history(run.run_id)] == [0, 1]


def test_bad_url_is_a_configuration_error() -> None:
    from tether.core.errors import ConfigurationError

    with pytest.raises(ConfigurationError, match="http://"):
        Client("127.0.0.1:8000")


def test_watch_runs(server: LiveServer) -> None:
    with Client(server.url) as c:
        first = c.wait(c.submit("echo", {"text": "before"}).run_id, timeout=120)
        changes = c.watch_runs()
        opening = next(changes)  # the snapshot starts with the runs there are
        assert opening.run_id == first.run_id and opening.state is None
        new = c.submit("count", {"n": 3, "pause": 0.01})
        statuses = []
        for run in changes:
            if run.run_id == new.run_id:
                statuses.append(run.status)
                if run.status is RunStatus.COMPLETED:
                    break
        changes.close()
        assert statuses[-1] is RunStatus.COMPLETED


def test_events_follow_carries_the_live_only_events(server: LiveServer) -> None:
    """A run the server executes itself streams its node progress too (no id, seq 0): the
    client yields them instead of taking them for the stored event before them."""
    with Client(server.url) as c:
        run = c.submit("ask", {"question": "q"})
        assert c.wait(run.run_id, timeout=120).status is RunStatus.ESCALATED
    followed: list[Any] = []
    subscribed = threading.Event()

    def follow() -> None:
        with Client(server.url) as reader:
            for ev in reader.events(run.run_id):
                followed.append(ev)
                subscribed.set()  # a frame came: the stream listens to the run since before it

    with ThreadPoolExecutor(1) as pool:
        done = pool.submit(follow)
        assert subscribed.wait(120)
        with Client(server.url) as c:
            c.resume(run.run_id, "yes")
        done.result(timeout=120)
    kinds = [e.kind for e in followed if not e.seq]
    assert "node_started" in kinds and "node_finished" in kinds
    stored = [e.seq for e in followed if e.seq]
    assert stored == list(range(1, len(stored) + 1))


async def test_a_closed_client_says_so(server: LiveServer) -> None:
    """Before: a closed AsyncClient raised httpx's RuntimeError ('Cannot send a request, as
    the client has been closed'), and a closed Client said 'this SyncRuntime is closed'."""
    from tether.core.errors import ConfigurationError

    c = Client(server.url)
    c.close()
    c.close()  # twice is fine
    for call in (lambda: c.get("r"), lambda: list(c.events("r")), lambda: c.workflows()):
        with pytest.raises(ConfigurationError, match=r"this Client of http://.* is closed"):
            call()
    a = AsyncClient(server.url)
    await a.aclose()
    await a.aclose()
    with pytest.raises(ConfigurationError, match="is closed; open a new one"):
        await a.get("r")
    with pytest.raises(ConfigurationError, match="is closed; open a new one"):
        _ = [ev async for ev in a.events("r")]


def test_bad_settings_are_refused_when_the_client_is_made(server: LiveServer) -> None:
    """Before: timeout=0 or -1 made every call fail as 'no answer' (health() False),
    timeout=nan raised ValueError from inside httpx at the first call, an API key with a
    non-ASCII character raised UnicodeEncodeError and one with a line break inside was sent
    as no answer at all; poll_interval=-1 was taken."""
    from tether.core.errors import ConfigurationError

    for bad in (0, -1, float("nan"), float("inf")):
        with pytest.raises(ConfigurationError, match="timeout"):
            Client(server.url, timeout=bad)
    with pytest.raises(ConfigurationError, match="poll_interval"):
        Client(server.url, poll_interval=-1)
    for key, where in (("tk_a\nb", "position 4"), ("tk_é", "position 3"), ("tk a", "position 2")):
        with pytest.raises(ConfigurationError, match=where) as err:
            Client(server.url, api_key=key)
        assert key not in str(err.value)  # a secret is not echoed
    with Client(server.url, api_key="  \n", timeout=5) as c:  # nothing but blanks: no key
        assert c.health()


def test_an_async_client_serves_one_asyncio_run_after_another(server: LiveServer) -> None:
    """Before: the second ``asyncio.run`` with the same AsyncClient failed inside httpx with
    RuntimeError('Event loop is closed'): its pooled connection belonged to the first loop."""
    import asyncio

    made_outside = AsyncClient(server.url)
    assert asyncio.run(made_outside.health())
    assert asyncio.run(made_outside.health())
    run = asyncio.run(made_outside.submit("echo", {"text": "again"}))
    done = asyncio.run(made_outside.wait(run.run_id, timeout=120))
    assert done.state == {"text": "again", "answer": "AGAIN"}

    async def events(c: AsyncClient) -> list[str]:
        return [e.kind async for e in c.events(run.run_id)]  # a stream, under a new loop too

    assert "lifecycle" in asyncio.run(events(made_outside))
    asyncio.run(made_outside.aclose())  # closes under a loop its connections do not belong to
    with pytest.raises(Exception, match="is closed; open a new one"):
        asyncio.run(made_outside.health())

    async def make() -> AsyncClient:
        c = AsyncClient(server.url)
        assert await c.health()
        return c

    made_inside = asyncio.run(make())
    assert [w.name for w in asyncio.run(made_inside.workflows())]

    async def use_and_close(c: AsyncClient) -> Run:
        async with c:
            return await c.get(run.run_id)

    assert asyncio.run(use_and_close(made_inside)).run_id == run.run_id


async def test_a_base_url_ending_in_v1_is_named_as_the_mistake(server: LiveServer) -> None:
    """Before: ``health()`` on ``http://host/v1`` raised NotFoundError('no route GET
    /v1/healthz'), and ``get`` 'no route GET /v1/v1/runs/ID', without saying the base URL
    was the mistake."""
    from tether.client import NotFoundError

    async with AsyncClient(f"{server.url}/v1/") as c:
        for call in (c.health, lambda: c.get("some-run"), c.workflows):
            with pytest.raises(NotFoundError) as err:
                await call()
            text = str(err.value)
            assert "ends with /v1" in text and f"use the server root, {server.url}" in text
    with Client(f"{server.url}/v1") as sync, pytest.raises(NotFoundError, match="server root"):
        sync.health()
    async with AsyncClient(server.url) as right:  # the right URL: a run not found as before
        from tether.core.errors import RunNotFoundError

        with pytest.raises(RunNotFoundError):
            await right.get("some-run")
