"""What the client does when the network breaks (a TCP proxy closes real sockets): the event
stream resumes with Last-Event-ID and misses or repeats nothing; a submit whose answer was
lost is retried into the same run; an unreachable server is a typed error."""

from __future__ import annotations

import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.client.conftest import LiveServer
from tests.client.proxy import Proxy
from tether import RunStatus
from tether.client import Client, ServerUnavailableError
from tether.core.backoff import Backoff

FAST = Backoff(max_attempts=8, initial_interval=0.05, max_interval=0.5, owner="test")


def test_event_stream_resumes_after_the_connection_drops(server: LiveServer) -> None:
    with Proxy(server.port) as proxy, Client(proxy.url, retry=FAST) as c:
        run = c.submit("count", {"n": 40, "pause": 0.02})
        got = []
        cuts = 0
        for ev in c.events(run.run_id):
            if not ev.seq:  # a live-only event (node progress) of the server's own worker
                continue
            got.append(ev.seq)
            if len(got) in (3, 15):  # drop the stream mid-run, twice
                cuts += proxy.cut() > 0
        assert cuts == 2
        assert proxy.connections >= 3, "the client reconnected after each drop"
        stored = [e.seq for e in c.events(run.run_id, follow=False)]
        assert got == stored, "every event once, in order"
        assert got == list(range(1, len(got) + 1))
        assert c.get(run.run_id).status is RunStatus.COMPLETED


def test_wait_survives_dropped_connections(server: LiveServer) -> None:
    with Proxy(server.port) as proxy, Client(proxy.url, retry=FAST) as c:
        run = c.submit("count", {"n": 30, "pause": 0.02})
        for _ in range(3):
            proxy.cut()
        assert c.wait(run.run_id, timeout=120).status is RunStatus.COMPLETED


def test_wait_outlives_a_server_restart(server: LiveServer) -> None:
    """Before: with the server unreachable for longer than the client's retries (a restart,
    a deploy), ``wait()`` raised ServerUnavailableError although the run went on and
    completed. It now waits through an outage of up to ``outage`` seconds."""
    brief = Backoff(max_attempts=2, initial_interval=0.01, max_interval=0.05, owner="test")
    with (
        Proxy(server.port) as proxy,
        Client(proxy.url, retry=brief, poll_interval=0.01) as c,
        Client(server.url) as direct,
    ):
        run = c.submit("count", {"n": 20, "pause": 0.02})
        proxy.down = True
        proxy.cut()
        with ThreadPoolExecutor(1) as pool:
            waiting = pool.submit(c.wait, run.run_id, 120)
            assert direct.wait(run.run_id, timeout=120).status is RunStatus.COMPLETED
            while proxy.refused < 20 and not waiting.done():  # tried far past its retries
                time.sleep(0.01)
            assert not waiting.done(), waiting.exception()
            proxy.down = False  # the server is back
            assert waiting.result(120).status is RunStatus.COMPLETED


def back_after_tries(proxy: Proxy, tries: int = 10) -> None:
    """The server comes back once the client has tried it ``tries`` times (past its retries)."""
    while proxy.refused < tries:
        time.sleep(0.01)
    proxy.down = False


def test_following_events_outlives_a_server_restart(server: LiveServer) -> None:
    """Before: following a run's events raised ServerUnavailableError once the server was
    unreachable for longer than the client's retries; now the stream is reopened when the
    server is back, with every event once, in order."""
    brief = Backoff(max_attempts=2, initial_interval=0.01, max_interval=0.05, owner="test")
    with (
        Proxy(server.port) as proxy,
        Client(proxy.url, retry=brief) as c,
        Client(server.url) as direct,
    ):
        run = c.submit("count", {"n": 30, "pause": 0.02})
        got: list[int] = []
        for ev in c.events(run.run_id, outage=120):
            if not ev.seq:
                continue
            got.append(ev.seq)
            if len(got) == 3:  # the server goes away; the run finishes meanwhile
                proxy.down = True
                proxy.cut()
                assert direct.wait(run.run_id, timeout=120).status is RunStatus.COMPLETED
                threading.Thread(target=back_after_tries, args=(proxy,), daemon=True).start()
        stored = [e.seq for e in direct.events(run.run_id, follow=False)]
        assert got == stored and got == list(range(1, len(got) + 1))


def test_wait_gives_up_on_an_outage_longer_than_it_was_told(server: LiveServer) -> None:
    brief = Backoff(max_attempts=2, initial_interval=0.01, max_interval=0.05, owner="test")
    with Proxy(server.port) as proxy, Client(proxy.url, retry=brief, poll_interval=0.01) as c:
        run = c.submit("count", {"n": 100000, "pause": 0.01})
        proxy.down = True
        proxy.cut()
        with pytest.raises(ServerUnavailableError, match="unreachable for"):
            c.wait(run.run_id, 120, outage=0.2)
        proxy.down = False
        c.cancel(run.run_id)


def test_submit_whose_answer_is_lost_is_one_run(server: LiveServer) -> None:
    with Proxy(server.port) as proxy, Client(proxy.url, retry=FAST) as c:
        proxy.drop_responses = 1  # the server accepts the run; its answer never arrives
        run = c.submit("echo", {"text": "once"})
        assert proxy.connections >= 2, "retried on a new connection"
        runs = list(c.list_runs(workflow="echo"))
        assert [r.run_id for r in runs] == [run.run_id], "the retry did not make a second run"


def test_a_thread_turn_whose_answer_is_lost_is_one_turn(server: LiveServer) -> None:
    """A turn of a thread was sent without a key and never retried: a lost answer was a
    ServerUnavailableError for a turn that had gone through (and sending it again, a second
    turn)."""
    with Proxy(server.port) as proxy, Client(proxy.url, retry=FAST) as c:
        proxy.drop_responses = 1
        run = c.submit("echo", {"text": "once"}, thread_id="lossy")
        assert proxy.connections >= 2, "retried on a new connection"
        assert [r.run_id for r in c.list_runs(thread_id="lossy")] == [run.run_id]


def test_a_lost_answer_to_an_unsafe_call_is_not_repeated(server: LiveServer) -> None:
    with Proxy(server.port) as proxy, Client(proxy.url, retry=FAST) as c:
        run = c.submit("count", {"n": 100000, "pause": 0.01})
        proxy.cut()  # the next call opens a new connection: the one that loses its answer
        proxy.drop_responses = 1
        with pytest.raises(ServerUnavailableError):
            c.cancel(run.run_id)  # not retried: it may have been applied
        assert c.wait(run.run_id, timeout=120).status is RunStatus.CANCELLED


def test_unreachable_server() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again below: nothing listens there
    fast = Backoff(max_attempts=3, initial_interval=0.01, max_interval=0.02, owner="test")
    with Client(f"http://127.0.0.1:{port}", retry=fast) as c:
        with pytest.raises(ServerUnavailableError, match="after 3 attempts"):
            c.get("r-1")
        assert not c.health()
        # a server never reached is a wrong URL, not an outage: no hour-long wait for it
        with pytest.raises(ServerUnavailableError):
            c.wait("r-1", outage=3600)
        with pytest.raises(ServerUnavailableError):
            list(c.events("r-1", outage=3600))
        with pytest.raises(ServerUnavailableError):
            next(iter(c.watch_runs(outage=3600)))


def test_a_silent_stream_is_reopened(server: LiveServer, monkeypatch: pytest.MonkeyPatch) -> None:
    """The peer vanished without closing: no byte, not even the 1 s heartbeat, for longer than
    the stream's idle limit, and the client reopens the stream after its last event."""
    import tether.client.http as client_http

    monkeypatch.setattr(client_http, "STREAM_IDLE", 3.0)
    with Proxy(server.port) as proxy, Client(proxy.url, retry=FAST) as c:
        run = c.submit("count", {"n": 60, "pause": 0.02})
        got = []
        frozen = 0
        for ev in c.events(run.run_id):
            if not ev.seq:  # a live-only event (node progress) of the server's own worker
                continue
            got.append(ev.seq)
            if len(got) == 3:
                frozen = proxy.freeze()
        assert frozen > 0
        assert got == [e.seq for e in c.events(run.run_id, follow=False)]
        assert got == list(range(1, len(got) + 1))
