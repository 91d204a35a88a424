"""A worker's probe endpoint (``Worker(probe_port=...)``, ``tether worker --probe-port``):
``/healthz``, ``/readyz`` and ``/metrics`` over real HTTP, in this process and from a real
``tether worker`` process."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import time
from pathlib import Path
from typing import Any, TypedDict

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.worker.procs import GUARD, spawn
from tether import END, START, Graph, RunContext, RunStatus, Runtime
from tether.core.errors import ConfigurationError
from tether.worker import Worker
from tether.worker.probes import WorkerProbes

gates: dict[str, asyncio.Event] = {}
entered: dict[str, asyncio.Event] = {}


class S(TypedDict, total=False):
    i: int


async def step(state: S, ctx: RunContext) -> dict[str, Any]:
    if ctx.run_id in gates:
        entered[ctx.run_id].set()
        await gates[ctx.run_id].wait()
    return {"i": state.get("i", 0) + 1}


def _flow(name: str) -> Any:
    g = Graph(S, name=name)
    g.add_node("step", step)
    g.add_edge(START, "step")
    g.add_edge("step", END)
    return g.compile()


wf = _flow("probed")
billing_wf = _flow("billed")


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of a Prometheus text page: (name, sorted labels) -> value."""
    out: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


async def _until(what: str, check: Any) -> Any:
    async def loop() -> Any:
        while not (got := await check()):
            await asyncio.sleep(0.01)
        return got

    try:
        return await asyncio.wait_for(loop(), GUARD)
    except TimeoutError:
        raise AssertionError(f"timed out waiting for {what}") from None


async def test_probes_follow_the_worker_from_ready_to_drained(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'runs.db'}"
    async with Runtime(url, workflows=[wf, billing_wf], recover=False) as rt:
        first = await rt.submit(wf, {})
        held = await rt.submit(wf, {})
        other_queue = await rt.submit(billing_wf, {}, queue="billing")
    gates[held.run_id], entered[held.run_id] = asyncio.Event(), asyncio.Event()
    worker = Worker(url, [wf], concurrency=4, poll_interval=0.02, queues=["default"], probe_port=0)
    task = asyncio.create_task(worker.run())
    try:
        await asyncio.wait_for(worker.ready.wait(), GUARD)
        assert worker.probe_url is not None
        async with httpx.AsyncClient(base_url=worker.probe_url) as http:
            health = await http.get("/healthz")
            assert health.status_code == 200
            body = health.json()
            assert (body["status"], body["worker_id"], body["pid"]) == (
                "ok",
                worker.worker_id,
                os.getpid(),
            )
            assert (body["queues"], body["concurrency"], body["workflows"]) == (
                ["default"],
                4,
                ["probed"],
            )
            ready = await http.get("/readyz")
            assert ready.status_code == 200 and ready.json()["status"] == "ready"

            await asyncio.wait_for(entered[held.run_id].wait(), GUARD)
            async with Runtime(url, workflows=[wf], recover=False) as rt:
                assert (await rt.wait(first.run_id, timeout=GUARD)).status is RunStatus.COMPLETED

            page = await http.get("/metrics")
            assert page.status_code == 200
            assert page.headers["content-type"].startswith("text/plain")
            m = samples(page.text)
            assert m[("tether_worker_runs_in_flight", ())] == 1.0
            assert m[("tether_worker_concurrency", ())] == 4.0
            assert m[("tether_worker_draining", ())] == 0.0
            assert m[("tether_worker_ready", ())] == 1.0
            assert m[("tether_store_up", ())] == 1.0
            assert m[("tether_runs_finished_total", (("status", "COMPLETED"),))] == 1.0
            assert m[("tether_step_seconds_count", ())] >= 1.0
            assert m[("tether_node_seconds_count", (("node", "step"),))] >= 1.0
            # the queue it serves, read from the store; not the billing queue it does not serve
            running = ("tether_queue_depth", (("queue", "default"), ("state", "running")))
            assert m[running] == 1.0
            assert not any(labels and ("queue", "billing") in labels for _, labels in m)
            info = [k for k in m if k[0] == "tether_worker_info"]
            assert info and dict(info[0][1])["worker_id"] == worker.worker_id

            worker.stop(grace=GUARD)
            await _until("the drain", lambda: _true(worker.runtime.draining))
            draining = await http.get("/readyz")
            assert draining.status_code == 503
            assert draining.headers["content-type"] == "application/problem+json"
            problem = draining.json()
            assert problem["status"] == 503 and "draining" in problem["detail"]
            assert (await http.get("/healthz")).status_code == 200  # alive while it drains
            m = samples((await http.get("/metrics")).text)
            assert m[("tether_worker_draining", ())] == 1.0
            assert m[("tether_worker_ready", ())] == 0.0
            gates[held.run_id].set()
            assert await asyncio.wait_for(task, GUARD) == 0
        # stopped: the port is closed
        with pytest.raises(httpx.ConnectError):
            async with httpx.AsyncClient(base_url=worker.probe_url) as http:
                await http.get("/healthz")
        async with Runtime(url, workflows=[wf], recover=False) as rt:
            untouched = await rt.get_run(other_queue.run_id)  # not a queue it serves
            assert untouched.status is RunStatus.PLANNED and untouched.step == 0
    finally:
        gates.pop(held.run_id, None)
        worker.stop(immediate=True)
        await asyncio.gather(task, return_exceptions=True)


async def _true(value: bool) -> bool:
    return value


async def test_readiness_says_why_it_is_not_ready(tmp_path: Path) -> None:
    worker = Worker(f"sqlite:///{tmp_path / 'runs.db'}", [wf], lease_ttl=3.0)
    probes = WorkerProbes(worker)
    why = probes.not_ready()
    assert why is not None and why.startswith("starting")
    task = asyncio.create_task(worker.run())
    try:
        await asyncio.wait_for(worker.ready.wait(), GUARD)
        assert probes.not_ready() is None
        assert worker.beat is not None
        worker.beat.last_ok = time.monotonic() - 10 * worker.stale_after  # beats keep failing
        why = probes.not_ready()
        assert why is not None and "no heartbeat written" in why
    finally:
        worker.stop()
        await asyncio.wait_for(task, GUARD)


async def test_a_probe_port_in_use_is_a_configuration_error(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        worker = Worker(f"sqlite:///{tmp_path / 'runs.db'}", [wf], probe_port=port)
        with pytest.raises(ConfigurationError, match=f"cannot listen on 127.0.0.1:{port}"):
            await worker.run()
    with pytest.raises(ConfigurationError, match="probe_port"):
        Worker(f"sqlite:///{tmp_path / 'runs.db'}", [wf], probe_port=70000)


def test_tether_worker_serves_its_probes_until_sigterm(tmp_path: Path) -> None:
    worker = spawn(f"sqlite:///{tmp_path / 'runs.db'}", tmp_path, "probed-1", "--probe-port", "0")
    try:
        probes = worker.info["probes"]
        assert probes.startswith("http://127.0.0.1:")
        with httpx.Client(base_url=probes, timeout=GUARD) as http:
            assert http.get("/readyz").json()["worker_id"] == "probed-1"
            m = samples(http.get("/metrics").text)
            assert m[("tether_worker_runs_in_flight", ())] == 0.0
            host = http.get("/healthz").json()["host"]
            info = (("host", host), ("queues", "*"), ("worker_id", "probed-1"))
            assert m[("tether_worker_info", info)] == 1.0
        worker.signal(signal.SIGTERM)
        assert worker.wait() == 0
    finally:
        worker.kill()


@pytest.mark.parametrize("port", ["-1", "65536", "http"])
def test_tether_worker_refuses_a_bad_probe_port(
    port: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from tether.cli.main import main

    argv = ["worker", "--app", "tests.worker.worker_app:workflows", "--probe-port", port]
    assert main([*argv, "--store", f"sqlite:///{tmp_path / 'runs.db'}"]) == 2
    assert "port" in capsys.readouterr().err


TOKEN = "probe-token-0123456789abcdef"


async def test_a_probe_token_guards_the_metrics_and_the_description(tmp_path: Path) -> None:
    worker = Worker(f"sqlite:///{tmp_path / 'runs.db'}", [wf], probe_port=0, probe_token=TOKEN)
    task = asyncio.create_task(worker.run())
    try:
        await asyncio.wait_for(worker.ready.wait(), GUARD)
        assert worker.probe_url is not None
        async with httpx.AsyncClient(base_url=worker.probe_url, timeout=GUARD) as http:
            for auth in (None, "Bearer wrong-token-0123456789", f"Basic {TOKEN}", "Bearer"):
                headers = {"Authorization": auth} if auth else {}
                refused = await http.get("/metrics", headers=headers)
                assert refused.status_code == 401, auth
                assert refused.headers["content-type"].startswith("application/problem+json")
                assert refused.headers["www-authenticate"].startswith("Bearer")
                assert "probe token" in refused.json()["detail"]
                # a cluster's probes send no token: the status, nothing about the worker
                assert (await http.get("/healthz", headers=headers)).json() == {"status": "ok"}
                assert (await http.get("/readyz", headers=headers)).json() == {"status": "ready"}
            allowed = {"Authorization": f"Bearer {TOKEN}"}
            scraped = await http.get("/metrics", headers=allowed)
            assert scraped.status_code == 200
            assert samples(scraped.text)[("tether_worker_runs_in_flight", ())] == 0.0
            health = (await http.get("/healthz", headers=allowed)).json()
            assert health["worker_id"] == worker.worker_id and health["pid"] == os.getpid()
    finally:
        worker.stop()
        await asyncio.wait_for(task, GUARD)


@pytest.mark.parametrize("token", ["short", "has spaces in it 0123456789", "tab\there-0123456789"])
def test_a_weak_probe_token_is_refused(token: str, tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="probe token must be at least 16"):
        Worker(f"sqlite:///{tmp_path / 'runs.db'}", [wf], probe_port=0, probe_token=token)


def test_tether_worker_takes_its_probe_token_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TETHER_PROBE_TOKEN", TOKEN)  # the spawned worker inherits it
    worker = spawn(f"sqlite:///{tmp_path / 'runs.db'}", tmp_path, "probed-2", "--probe-port", "0")
    try:
        with httpx.Client(base_url=worker.info["probes"], timeout=GUARD) as http:
            assert http.get("/metrics").status_code == 401
            ok = http.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
            assert ok.status_code == 200 and "tether_worker_runs_in_flight" in ok.text
        worker.signal(signal.SIGTERM)
        assert worker.wait() == 0
    finally:
        worker.kill()


def test_tether_worker_refuses_a_weak_probe_token(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from tether.cli.main import main

    argv = ["worker", "--app", "tests.worker.worker_app:workflows", "--probe-port", "0"]
    argv += ["--probe-token", "short", "--store", f"sqlite:///{tmp_path / 'runs.db'}"]
    assert main(argv) == 2
    assert "probe token" in capsys.readouterr().err
