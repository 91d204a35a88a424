"""``tether runs ...`` against a live ``tether serve`` (``--server URL`` / ``TETHER_SERVER``):
the same commands and output as on a store, through the HTTP API."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.cli.conftest import Result, run_cli
from tests.client.conftest import _make_keys
from tests.server.apps import workflows
from tests.server.live import ServerThread
from tether import RunStatus
from tether.client import Client
from tether.server.app import create_app
from tether.server.settings import ServerSettings


@dataclass
class Served:
    url: str
    completed: str
    escalated: str
    key: str | None = None
    store: str = ""


def _serve(db: Path, key: str | None) -> Iterator[Served]:
    settings = ServerSettings(store=f"sqlite:///{db}", workflows=workflows, embedded_workers=2)
    with ServerThread(create_app(settings)) as port:
        url = f"http://127.0.0.1:{port}"
        with Client(url, api_key=key) as c:
            done = c.wait(c.submit("count", {"n": 2}).run_id, timeout=120)
            asked = c.wait(c.submit("ask", {"question": "name?"}).run_id, timeout=120)
        assert done.status is RunStatus.COMPLETED and asked.status is RunStatus.ESCALATED
        yield Served(url, done.run_id, asked.run_id, key, f"sqlite:///{db}")


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    yield from _serve(tmp_path / "serve.db", None)


def tether(*args: str, server: str | None = None, key: str | None = None) -> Result:
    env = {"TETHER_SERVER": server} if server else {}
    if key:
        env["TETHER_API_KEY"] = key
    return run_cli(*args, store=None, env=env)


def test_list_and_show(served: Served) -> None:
    res = tether("runs", "list", "--server", served.url, "--json")
    assert res.rc == 0, res.err
    assert {r["run_id"] for r in res.json()} == {served.completed, served.escalated}
    res = tether("runs", "list", "--status", "escalated", "--json", server=served.url)
    assert [r["run_id"] for r in res.json()] == [served.escalated]

    table = tether("runs", "show", served.escalated, server=served.url)
    assert table.rc == 0, table.err
    assert "ESCALATED" in table.out and "name?" in table.out
    data = tether("runs", "show", served.completed, "--json", server=served.url).json()
    assert data["run"]["status"] == "COMPLETED" and data["state"]["i"] == 2
    assert data["run"]["event_seq"] > 0  # was 0: the server's count of the run's events
    listed = tether("runs", "list", "--json", server=served.url).json()
    assert all(r["event_seq"] > 0 for r in listed)
    at0 = tether("runs", "show", served.completed, "--step", "0", "--json", server=served.url)
    assert at0.json()["step"] == 0 and "i" not in at0.json()["state"]


def test_history(served: Served) -> None:
    res = tether("runs", "history", served.completed, server=served.url)
    assert res.rc == 0, res.err
    assert "tick" in res.out and "COMPLETED" in res.out and "lifecycle" in res.out
    data = tether("runs", "history", served.completed, "--json", server=served.url).json()
    assert [s["step"] for s in data["steps"]] == [0, 1, 2]
    assert data["transitions"][-1]["dst"] == "COMPLETED"
    page = tether("runs", "history", served.completed, "--limit", "1", "--json", server=served.url)
    assert [s["step"] for s in page.json()["steps"]] == [0] and page.json()["next_after"] == 0


def test_history_shows_what_the_store_shows(served: Served) -> None:
    """Before: through a server, a step's NEXT column was always '-' (the API left out the
    tasks a step planned), TASKS held node names where the store shows task ids, and the
    lifecycle was numbered by event seq (1, 2, 3, 34, 35) where the store numbers its
    transitions 1, 2, 3, 4, 5."""
    data = tether("runs", "history", served.completed, "--json", server=served.url).json()
    steps = data["steps"]
    assert [s["next_nodes"] for s in steps] == [["tick"], ["tick"], []]
    assert steps[1]["tasks"] == ["1:tick:0"] and steps[1]["nodes"] == ["tick"]
    assert [t["seq"] for t in data["transitions"]] == list(range(1, len(data["transitions"]) + 1))
    table = tether("runs", "history", served.completed, server=served.url).out
    step0 = next(line for line in table.splitlines() if line.strip().startswith("0 "))
    assert "tick" in step0  # the NEXT column


def test_resume_fork_cancel(served: Served) -> None:
    res = tether(
        "runs", "resume", served.escalated, "--value", '"Ada"', "--json", server=served.url
    )
    assert res.rc == 0, res.err
    data = res.json()
    assert data["previous_status"] == "ESCALATED" and data["status"] == "COMPLETED"
    assert data["state"]["answer"] == "the human said Ada"

    fork = tether(
        "runs",
        "fork",
        served.completed,
        "--step",
        "1",
        "--patch",
        '{"n": 4}',
        "--json",
        server=served.url,
    )
    assert fork.rc == 0, fork.err
    assert fork.json()["status"] == "COMPLETED" and fork.json()["state"]["i"] == 4

    with Client(served.url) as c:
        long = c.submit("count", {"n": 100000, "pause": 0.01}).run_id
    res = tether("runs", "cancel", long, "--reason", "enough", server=served.url)
    assert res.rc == 0, res.err
    assert "CANCELLED" in res.out


def test_errors(served: Served) -> None:
    res = tether("runs", "show", "nope", server=served.url)
    assert res.rc == 2 and "not found" in res.err
    res = tether("runs", "resume", served.completed, "--value", "1", server=served.url)
    assert res.rc == 2 and "COMPLETED" in res.err
    res = tether("worker", "--server", served.url)
    assert res.rc == 2 and "works on a store" in res.err
    res = tether("runs", "list", "--dead-letter", "--server", served.url)
    assert res.rc == 2 and "works on a store" in res.err
    res = tether("runs", "list", "--server", served.url, "--store", "sqlite:///x.db")
    assert res.rc == 2 and "either" in res.err
    res = tether("runs", "list", server="127.0.0.1:1")
    assert res.rc == 2 and "http://" in res.err


def test_api_key(tmp_path: Path) -> None:
    db = tmp_path / "keyed.db"
    keys = asyncio.run(_make_keys(db, {"a": ("tenant-a", ["read", "submit"])}))
    for served in _serve(db, keys["a"]):
        res = tether("runs", "list", server=served.url)
        assert res.rc == 2 and "API key" in res.err
        res = tether("runs", "list", "--json", server=served.url, key=keys["a"])
        assert res.rc == 0, res.err
        assert {r["run_id"] for r in res.json()} == {served.completed, served.escalated}
        res = tether("runs", "list", "--api-key", keys["a"], "--server", served.url)
        assert res.rc == 0, res.err


def test_resume_by_interrupt_id_and_store_only_options(served: Served) -> None:
    with Client(served.url) as c:
        asked = c.wait(c.submit("ask", {"question": "colour?"}).run_id, timeout=120)
    iid = asked.interrupts[0]["id"]
    res = tether("runs", "resume", asked.run_id, "--answer", f"{iid}=1", "--answer", f"{iid}x=2",
                 server=served.url)  # fmt: skip
    assert res.rc == 2 and "several interrupts" in res.err
    res = tether("runs", "resume", asked.run_id, "--value", "1", "--allow-version-change",
                 server=served.url)  # fmt: skip
    assert res.rc == 2 and "--allow-version-change" in res.err
    res = tether("runs", "resume", asked.run_id, "--answer", f"{iid}=\"blue\"", "--json",
                 server=served.url)  # fmt: skip
    assert res.rc == 0, res.err
    assert res.json()["state"]["answer"] == "the human said blue"
    res = tether("runs", "resume", asked.run_id, "--answer", f'{iid}="again"', server=served.url)
    assert res.rc == 2  # answered already: the run is COMPLETED


LEFT_OUT_OF_LISTS = {"input", "result"}
"""What the server's runs list leaves out (docs/client.md): null through --server."""


def test_list_json_is_the_stores_field_by_field(served: Served) -> None:
    """Before: through a server, idempotency_key, input_hash and parent_step were null and
    lease_token 0 where the store had them (docs/client.md says the output is the same)."""
    with Client(served.url) as c:
        keyed = c.wait(c.submit("count", {"n": 1}, idempotency_key="mine").run_id, timeout=120)
        fork = c.wait(c.fork(served.completed, 1, {"n": 3}).run_id, timeout=120)
    assert fork.status is RunStatus.COMPLETED
    through = tether("runs", "list", "--json", server=served.url)
    direct = run_cli("runs", "list", "--json", store=served.store)
    assert through.rc == 0 and direct.rc == 0, through.err + direct.err
    by_id = {r["run_id"]: r for r in through.json()}
    stored = direct.json()
    assert set(by_id) == {r["run_id"] for r in stored} and len(stored) == 4
    for want in stored:
        got = by_id[want["run_id"]]
        assert set(got) == set(want)
        for field in want:
            expected = None if field in LEFT_OUT_OF_LISTS else want[field]
            assert got[field] == expected, (want["run_id"], field)
    assert by_id[keyed.run_id]["idempotency_key"] == "mine"
    assert by_id[fork.run_id]["parent_step"] == 1
    assert by_id[keyed.run_id]["input_hash"] and by_id[keyed.run_id]["lease_token"] >= 1
    shown = tether("runs", "show", keyed.run_id, server=served.url)
    assert "mine" in shown.out  # the idempotency row, as on a store


def test_history_names_each_transitions_actor(served: Served) -> None:
    """Before: through a server the lifecycle's ACTOR column was blank (read from lifecycle
    events, which carry no actor) where the store shows api:local and worker:..."""
    through = tether("runs", "history", served.completed, "--json", server=served.url)
    direct = run_cli("runs", "history", served.completed, "--json", store=served.store)
    assert through.rc == 0 and direct.rc == 0, through.err + direct.err
    moves = through.json()["transitions"]
    assert moves == direct.json()["transitions"]
    assert moves[0]["actor"] == "api:local"
    assert any(m["actor"].startswith("worker:") for m in moves)
    table = tether("runs", "history", served.completed, server=served.url).out
    assert "api:local" in table


def test_version_names_the_servers(served: Served) -> None:
    """Before: ``tether version --server URL`` printed the local version only, and said
    nothing when the server did not answer."""
    mine = tether("version").out.split()[-1]
    res = tether("version", "--server", served.url)
    assert res.rc == 0, res.err
    assert res.out.splitlines() == [f"tether {mine}", f"server {mine} ({served.url})"]
    data = tether("version", "--json", server=served.url).json()
    assert data["server"] == {"url": served.url, "version": mine}
    gone = tether("version", "--server", "http://127.0.0.1:1")
    assert gone.rc == 2 and "unreachable" in gone.err and "Traceback" not in gone.err
    assert gone.out.strip() == f"tether {mine}"
    gone = tether("version", "--json", "--server", "http://127.0.0.1:1")
    assert gone.rc == 2 and "unreachable" in gone.json()["server"]["error"]
