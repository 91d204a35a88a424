"""The Python client and A2A against a live ``tether serve`` (its own process: create_app on a
SQLite file, 2 embedded workers, uvicorn on 127.0.0.1), measured from this process.

* ``get``: ``Client.get`` of one finished run, p50/p95 ms, beside a bare ``httpx.Client.get``
  of the same URL (what the client adds: JSON to ``Run``, error mapping, and the sync bridge's
  hand-off to its loop thread); ``get_async``: ``AsyncClient.get`` beside a bare
  ``httpx.AsyncClient`` on one loop;
* ``submit``: runs accepted per second by ``AsyncClient.submit``, 16 in flight at once (each
  carries an idempotency key), for trivial ``echo`` runs the workers then execute;
* ``submit_to_done``: one run at a time, ``submit`` + ``wait`` (over the SSE stream) until
  COMPLETED, p50/p95 ms;
* ``sse``: event latency, from the event's commit time (``created_at``, written by the
  worker) to its arrival in ``client.events()``, p50/p95 ms, over a 100-step run;
* ``a2a``: the official a2a-sdk client, blocking ``SendMessage`` to the ``echo`` agent until
  the task is completed (a whole tether run per message), p50/p95 ms; and the same through
  ``tether.tools.a2a_tool`` (card fetched once).

Absolute times on a shared machine are noise; compare the client with bare httpx.

    python bench/client_bench.py [--quick]      # results: bench/results/client.json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any, TypedDict

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "client.json"


# -- the server process ----------------------------------------------------------------------
class Echo(TypedDict, total=False):
    text: str
    answer: str


class Count(TypedDict, total=False):
    n: int
    i: int


def _workflows() -> list[Any]:
    from tether import END, START, Graph

    def shout(state: Echo) -> dict[str, Any]:
        return {"answer": state.get("text", "").upper()}

    def tick(state: Count) -> dict[str, Any]:
        return {"i": state.get("i", 0) + 1}

    echo = Graph(Echo, name="echo")
    echo.add_node("shout", shout).add_edge(START, "shout").add_edge("shout", END)
    count = Graph(Count, name="count")
    count.add_node("tick", tick).add_edge(START, "tick")
    count.add_conditional_edges(
        "tick", lambda s: "tick" if s.get("i", 0) < s.get("n", 1) else END, ["tick", END]
    )
    return [echo.compile(), count.compile()]


def serve(db: str, port_file: str) -> None:
    import uvicorn

    from tether.server.app import create_app
    from tether.server.settings import ServerSettings

    settings = ServerSettings(store=f"sqlite:///{db}", workflows=_workflows(), embedded_workers=2)
    server = uvicorn.Server(
        uvicorn.Config(create_app(settings), host="127.0.0.1", port=0, log_level="warning")
    )

    async def main() -> None:
        task = asyncio.create_task(server.serve())
        while not server.started:
            await asyncio.sleep(0.01)
        port = server.servers[0].sockets[0].getsockname()[1]
        await asyncio.to_thread(Path(port_file).write_text, str(port))
        await task

    asyncio.run(main())


# -- measures ----------------------------------------------------------------------------------
def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def _ms(values: list[float]) -> dict[str, float]:
    return {
        "p50_ms": round(statistics.median(values) * 1000, 3),
        "p95_ms": round(_pct(values, 0.95) * 1000, 3),
        "n": len(values),
    }


def measure_get(url: str, n: int) -> dict[str, Any]:
    """Interleaved blocks of 50 calls each way, so a busy moment of the machine hits both."""
    import httpx

    from tether.client import Client

    with Client(url) as c, httpx.Client(base_url=url) as h:
        run = c.wait(c.submit("echo", {"text": "x"}).run_id, timeout=120)
        path = f"/v1/runs/{run.run_id}"
        client_t: list[float] = []
        raw_t: list[float] = []
        for block in range(max(1, n // 50) + 1):
            for _ in range(50):
                t0 = time.perf_counter()
                c.get(run.run_id)
                if block:
                    client_t.append(time.perf_counter() - t0)
            for _ in range(50):
                t0 = time.perf_counter()
                h.get(path).json()
                if block:
                    raw_t.append(time.perf_counter() - t0)
    return {"client": _ms(client_t), "httpx": _ms(raw_t)}


async def measure_get_async(url: str, n: int) -> dict[str, Any]:
    """The same on one event loop: ``AsyncClient.get`` against a bare ``httpx.AsyncClient``
    (no thread hand-off: what the client itself adds)."""
    import httpx

    from tether.client import AsyncClient

    async with AsyncClient(url) as c, httpx.AsyncClient(base_url=url) as h:
        run = await c.wait((await c.submit("echo", {"text": "y"})).run_id, timeout=120)
        path = f"/v1/runs/{run.run_id}"
        client_t: list[float] = []
        raw_t: list[float] = []
        for block in range(max(1, n // 50) + 1):
            for _ in range(50):
                t0 = time.perf_counter()
                await c.get(run.run_id)
                if block:
                    client_t.append(time.perf_counter() - t0)
            for _ in range(50):
                t0 = time.perf_counter()
                (await h.get(path)).json()
                if block:
                    raw_t.append(time.perf_counter() - t0)
    return {"async_client": _ms(client_t), "httpx_async": _ms(raw_t)}


async def measure_submit(url: str, n: int, in_flight: int = 16) -> dict[str, Any]:
    from tether.client import AsyncClient

    async with AsyncClient(url) as c:
        sem = asyncio.Semaphore(in_flight)

        async def one(i: int) -> None:
            async with sem:
                await c.submit("echo", {"text": str(i)})

        await asyncio.gather(*(one(i) for i in range(20)))  # warm-up
        t0 = time.perf_counter()
        await asyncio.gather(*(one(i) for i in range(n)))
        wall = time.perf_counter() - t0
    return {"runs_per_s": round(n / wall, 1), "n": n, "in_flight": in_flight}


def measure_submit_to_done(url: str, n: int) -> dict[str, Any]:
    from tether.client import Client

    with Client(url) as c:
        times = []
        for i in range(n):
            t0 = time.perf_counter()
            run = c.submit("echo", {"text": str(i)})
            c.wait(run.run_id, timeout=120)
            times.append(time.perf_counter() - t0)
    return _ms(times)


def measure_sse(url: str, steps: int) -> dict[str, Any]:
    from tether.client import Client

    with Client(url) as c:
        lat = []
        run = c.submit("count", {"n": steps})
        for ev in c.events(run.run_id):
            now = time.time()
            if ev.created_at:
                lat.append(max(0.0, now - ev.created_at))
    return _ms(lat)


async def measure_a2a(url: str, n: int) -> dict[str, Any]:
    import httpx
    from a2a.client import ClientConfig, create_client
    from a2a.helpers import new_text_part
    from a2a.types import Message, Role, SendMessageRequest

    from tether.tools import ToolExecutor
    from tether.tools.a2a_tool import a2a_tool

    times = []
    async with httpx.AsyncClient(timeout=60) as http:
        client = await create_client(
            f"{url}/a2a/echo", client_config=ClientConfig(streaming=False, httpx_client=http)
        )
        for i in range(n + 5):
            msg = Message(
                role=Role.ROLE_USER, parts=[new_text_part(f"m{i}")], message_id=str(uuid.uuid4())
            )
            t0 = time.perf_counter()
            [_ async for _ in client.send_message(SendMessageRequest(message=msg))]
            if i >= 5:
                times.append(time.perf_counter() - t0)
    tools = ToolExecutor([a2a_tool(f"{url}/a2a/echo", name="echo")])
    tool_t = []
    for i in range(n + 5):
        t0 = time.perf_counter()
        (await tools.call("echo", {"message": f"t{i}"})).unwrap()
        if i >= 5:
            tool_t.append(time.perf_counter() - t0)
    return {"sdk_client": _ms(times), "a2a_tool": _ms(tool_t)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--serve", nargs=2, metavar=("DB", "PORT_FILE"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.serve:
        serve(*args.serve)
        return
    scale = 0.2 if args.quick else 1.0
    with tempfile.TemporaryDirectory() as tmp:
        port_file = Path(tmp) / "port"
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        proc = subprocess.Popen(
            [sys.executable, __file__, "--serve", str(Path(tmp) / "bench.db"), str(port_file)],
            env=env,
        )
        try:
            for _ in range(6000):
                if port_file.exists() and port_file.read_text():
                    break
                if proc.poll() is not None:
                    raise SystemExit("the server process exited")
                time.sleep(0.01)
            url = f"http://127.0.0.1:{port_file.read_text()}"
            result: dict[str, Any] = {
                "get": measure_get(url, int(1000 * scale)),
                "get_async": asyncio.run(measure_get_async(url, int(1000 * scale))),
                "submit": asyncio.run(measure_submit(url, int(1000 * scale))),
                "submit_to_done": measure_submit_to_done(url, int(100 * scale)),
                "sse": measure_sse(url, 100),
                "a2a": asyncio.run(measure_a2a(url, int(50 * scale))),
            }
        finally:
            proc.terminate()
            proc.wait(60)
    result["meta"] = {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "cpus": os.cpu_count(),
        "store": "sqlite, 2 embedded workers, server in its own process",
        "quick": bool(args.quick),
    }
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    g, ga, s = result["get"], result["get_async"], result["sse"]
    rows = [
        ("GET run, Client", f"{g['client']['p50_ms']} / {g['client']['p95_ms']} ms"),
        ("GET run, bare httpx", f"{g['httpx']['p50_ms']} / {g['httpx']['p95_ms']} ms"),
        (
            "GET run, AsyncClient",
            f"{ga['async_client']['p50_ms']} / {ga['async_client']['p95_ms']} ms",
        ),
        (
            "GET run, bare httpx.AsyncClient",
            f"{ga['httpx_async']['p50_ms']} / {ga['httpx_async']['p95_ms']} ms",
        ),
        ("submits accepted (16 in flight)", f"{result['submit']['runs_per_s']} /s"),
        (
            "submit + wait, echo",
            f"{result['submit_to_done']['p50_ms']} / {result['submit_to_done']['p95_ms']} ms",
        ),
        ("SSE commit -> client", f"{s['p50_ms']} / {s['p95_ms']} ms"),
        (
            "A2A SendMessage (sdk client)",
            f"{result['a2a']['sdk_client']['p50_ms']} / {result['a2a']['sdk_client']['p95_ms']} ms",
        ),
        (
            "A2A through a2a_tool",
            f"{result['a2a']['a2a_tool']['p50_ms']} / {result['a2a']['a2a_tool']['p95_ms']} ms",
        ),
    ]
    width = max(len(r[0]) for r in rows)
    print(f"{'measure':<{width}}  p50 / p95 (or rate)")
    for name, value in rows:
        print(f"{name:<{width}}  {value}")
    print(f"-> {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
