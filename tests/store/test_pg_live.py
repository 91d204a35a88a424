"""The PostgreSQL live-event channel: what one process sends, another hears, in order, in as
many notifications as it takes; nobody hears itself; nothing unreadable gets through."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest

from tether.store.pg_live import MAX_PAYLOAD, PgLiveChannel, live_channel_for, parse, payloads
from tether.store.postgres import PostgresStore
from tether.store.types import Event

pytestmark = pytest.mark.postgres


def token(run_id: str, i: int) -> Event:
    return Event(run_id, 0, "model_token", 1000.0 + i, 2, "talk", {"model": "m", "delta": f"{i} "})


async def test_what_one_process_sends_another_hears_in_order(pg_dsn: str, pg_schema: str) -> None:
    worker, server = (
        PostgresStore(pg_dsn, schema=pg_schema),
        PostgresStore(pg_dsn, schema=pg_schema),
    )
    await worker.setup()
    await server.setup()
    heard: list[Event] = []
    mine: list[Event] = []
    done = asyncio.Event()
    n = 2000  # several notifications' worth

    def deliver(ev: Event) -> None:
        heard.append(ev)
        if len(heard) == n + 1:
            done.set()

    sending = worker.live_channel(mine.append)
    hearing = server.live_channel(deliver)
    try:
        hearing.listen()
        sending.listen()  # a process that also listens never hears itself
        assert await hearing.listening(30) and await sending.listening(30)
        for i in range(n):
            sending.send(token("run-a", i))
        sending.send(Event("run-b", 0, "model_token", 5.0, 0, None, {"delta": 'ü\n"x"'}))
        await asyncio.wait_for(done.wait(), 60)
    finally:
        await sending.close()
        await hearing.close()
        await worker.close()
        await server.close()
    assert [e.data["delta"] for e in heard[:n]] == [f"{i} " for i in range(n)]
    assert heard[0] == token("run-a", 0)
    assert heard[n] == Event("run-b", 0, "model_token", 5.0, 0, None, {"delta": 'ü\n"x"'})
    assert mine == []


def test_payloads_stay_under_the_limit_and_skip_what_cannot_fit() -> None:
    events = [token("r", i) for i in range(500)]
    huge = Event("r", 0, "model_token", 1.0, 0, None, {"delta": "x" * 10_000})
    texts = list(payloads("me", [*events[:250], huge, *events[250:]]))
    assert len(texts) > 1 and all(len(t.encode()) <= MAX_PAYLOAD + 16 for t in texts)
    back = [ev for t in texts for ev in parse(t, "other")]
    assert back == events  # the one event larger than a notification is left out
    assert [ev for t in texts for ev in parse(t, "me")] == []  # a process never hears itself


def test_unreadable_payloads_are_ignored() -> None:
    for text in ("", "{", "[]", json.dumps({"o": "x", "e": [[1, 2]]}), json.dumps({"e": 3})):
        assert parse(text, "me") == []


def test_channel_names_are_plain_identifiers() -> None:
    assert live_channel_for("tether_x") == "tether_live_tether_x"
    odd = live_channel_for('Weird "schema" name' * 5)
    assert odd.startswith("tether_live_") and len(odd) <= 63 and odd.isascii()


async def test_a_follower_in_another_runtime_gets_the_tokens_before_the_step(
    pg_dsn: str, pg_schema: str
) -> None:
    """``Runtime.events`` in a runtime that executes nothing follows a run another runtime
    (its own store, as another process would have) executes: the model's tokens arrive, in
    order, and before the step's ``model_call`` event."""
    from typing import TypedDict

    from tether import END, START, Graph, RunContext, Runtime
    from tether.llm.fakes import ScriptedModel

    gate = asyncio.Event()
    reply = "tokens cross processes over NOTIFY."

    class S(TypedDict, total=False):
        answer: str

    async def talk(state: S, ctx: RunContext) -> dict[str, Any]:
        await gate.wait()  # the follower is following before the model talks
        said = await ScriptedModel([reply], stream_chunk=5).chat("go", stream=True)
        return {"answer": said.text}

    g = Graph(S, name="talk")
    g.add_node("talk", talk).add_edge(START, "talk").add_edge("talk", END)
    wf = g.compile()
    worker = Runtime(PostgresStore(pg_dsn, schema=pg_schema), workflows=[wf])
    follower = Runtime(PostgresStore(pg_dsn, schema=pg_schema), workflows=[wf], recover=False)
    async with worker, follower:
        handle = await follower.start(wf, {}, execute=False)
        seen = []
        async for ev in follower.events(handle.run_id):
            seen.append(ev)
            gate.set()
    kinds = [e.type for e in seen]
    tokens = [e for e in seen if e.type == "model_token"]
    assert "".join(e.data["delta"] for e in tokens) == reply and all(e.seq == 0 for e in tokens)
    assert kinds.index("model_token") < kinds.index("model_call")
    assert kinds[-1] == "lifecycle" and seen[-1].data["to"] == "COMPLETED"


async def test_a_reconnection_releases_the_barriers_it_can_no_longer_hear() -> None:
    """A barrier sent while the LISTEN connection was down never comes back; once the channel
    is back it lets its waiters go instead of leaving them (and their entries) behind."""
    from contextlib import nullcontext

    from tether.store.pg_live import PgLiveChannel

    channel = PgLiveChannel("postgresql://unused", "s", lambda: nullcontext(), lambda ev: None, 1.0)
    waiting = asyncio.get_running_loop().create_future()
    channel._barriers["nonce"] = waiting
    channel._missed()
    assert waiting.done() and channel._barriers == {}


async def test_a_stalled_server_holds_one_send_and_loses_no_event(
    pg_dsn: str, pg_schema: str
) -> None:
    """Before: each flush (every 10 ms of tokens) started a send task of its own, so with the
    server stalled (or the pool busy) they piled up, each waiting for a pooled connection,
    and all took their turn at the pool ahead of the store's own statements once it answered
    again. One send is in flight at a time now; the queue waits for it, and nothing is lost."""
    worker, server = (
        PostgresStore(pg_dsn, schema=pg_schema),
        PostgresStore(pg_dsn, schema=pg_schema),
    )
    await worker.setup()
    await server.setup()
    gate = asyncio.Event()  # the server answers only once it is set
    flight = {"now": 0, "most": 0}

    @contextlib.asynccontextmanager
    async def stalled() -> AsyncIterator[Any]:
        flight["now"] += 1
        flight["most"] = max(flight["most"], flight["now"])
        try:
            await gate.wait()
            async with worker._conn() as conn:
                yield conn
        finally:
            flight["now"] -= 1

    heard: list[Event] = []
    done = asyncio.Event()
    n = 500

    def deliver(ev: Event) -> None:
        heard.append(ev)
        if len(heard) == n:
            done.set()

    sending = PgLiveChannel(pg_dsn, pg_schema, stalled, lambda ev: None, 10.0)
    hearing = server.live_channel(deliver)
    try:
        hearing.listen()
        assert await hearing.listening(30)
        for i in range(n):
            sending.send(token("run-a", i))
            if i % 10 == 9:
                sending._flush()  # what the 10 ms timer does, 50 times over
                await asyncio.sleep(0)  # the sends started get to run (and wait)
        assert flight["most"] == 1 and len(sending._sends) == 1
        gate.set()  # the server answers again
        await sending.flush()
        await asyncio.wait_for(done.wait(), 60)
    finally:
        gate.set()
        await sending.close()
        await hearing.close()
        await worker.close()
        await server.close()
    assert [e.data["delta"] for e in heard] == [f"{i} " for i in range(n)]
