"""Dashboard bench: what a person waits for in headless Chromium (Debian's /usr/bin/chromium
via Playwright) against a real server process (SQLite store, embedded workers).

* open a run with 20,000 events: from navigation start (a new tab, assets cached or not) or
  from the click in the runs list (in-app), to the graph drawn and the first events rendered;
* the runs list: from navigation start to the rows rendered, and the requests it took (API
  requests, and all requests with a cold and a warm cache);
* a new run → visible in an open runs list, without a reload (submit over HTTP → row in the
  DOM, both on this machine's clock).

Times come from the page itself (a MutationObserver notes when each thing appears), not from
polling. Prints a table and writes ``bench/results/dashboard.json``::

    .venv/bin/python bench/dashboard.py            # 5 repeats
    .venv/bin/python bench/dashboard.py --repeats 9
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
RESULTS = BENCH / "results" / "dashboard.json"
CHROMIUM = "/usr/bin/chromium"
EVENTS = 20_000
LIST_RUNS = 200
TARGETS = {"open_20k_ms": 1000.0, "list_ms": 300.0, "list_api_requests": 2, "new_run_ms": 1000.0}

sys.path.insert(0, str(ROOT))
from tests.server.dashboard.server import Served, start, stop  # noqa: E402

WATCH = """
window.__marks = {};
window.__rows = {};
const watch = {
  graph: "#graph svg .g-node",
  firstEvent: '.ev-row[data-seq="1"] .chip',
  row: "#runs-table tbody tr",
};
new MutationObserver(() => {
  const now = performance.now();
  for (const [k, sel] of Object.entries(watch)) {
    if (!(k in window.__marks) && document.querySelector(sel)) window.__marks[k] = now;
  }
  for (const tr of document.querySelectorAll("tr[data-run-id]")) {
    if (!(tr.dataset.runId in window.__rows)) window.__rows[tr.dataset.runId] = Date.now();
  }
}).observe(document, { subtree: true, childList: true });
"""


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def wait_marks(page: Any, *keys: str) -> dict[str, float]:
    page.wait_for_function(
        "keys => keys.every(k => k in window.__marks)", arg=list(keys), timeout=60_000
    )
    marks: dict[str, float] = page.evaluate("window.__marks")
    return marks


def seed(served: Served) -> str:
    ids = [served.submit("quick", {"n": i}) for i in range(LIST_RUNS)]
    served.wait(ids[-1], "COMPLETED")
    chatter = served.submit("chatter", {"events": EVENTS})
    served.wait(chatter, "COMPLETED")
    return chatter


def open_run(browser: Any, served: Served, run_id: str, repeats: int) -> dict[str, Any]:
    url = f"{served.base}/runs/{run_id}?tab=events"
    cold: list[float] = []
    warm: list[float] = []
    click: list[float] = []
    for _ in range(repeats):
        ctx = browser.new_context(viewport={"width": 1440, "height": 900})
        ctx.add_init_script(WATCH)
        page = ctx.new_page()
        page.goto(url)  # cold: nothing cached
        m = wait_marks(page, "graph", "firstEvent")
        cold.append(max(m["graph"], m["firstEvent"]))
        page.goto(url)  # warm: assets from the cache
        m = wait_marks(page, "graph", "firstEvent")
        warm.append(max(m["graph"], m["firstEvent"]))
        page.goto(f"{served.base}/runs?workflow=chatter")  # in-app: a click in the list
        page.wait_for_selector(f'tr[data-run-id="{run_id}"]')
        page.evaluate("window.__marks = {}; window.__t0 = performance.now()")
        page.click(f'tr[data-run-id="{run_id}"] td:nth-child(3)')
        page.evaluate("window.__t0 = window.__t0")  # the click has been dispatched
        m = wait_marks(page, "graph")
        page.click('button[data-tab="events"]')
        m = wait_marks(page, "graph", "firstEvent")
        t0 = page.evaluate("window.__t0")
        click.append(m["graph"] - t0)
        ctx.close()
    return {"cold_ms": cold, "warm_ms": warm, "in_app_graph_ms": click}


def network_counter(ctx: Any, page: Any) -> Any:
    """Count the requests that reach the network (not those served from the browser's
    cache) from now on; calling the result stops counting: (all, API)."""
    cdp = ctx.new_cdp_session(page)
    cdp.send("Network.enable")
    sent: dict[str, str] = {}
    cached: set[str] = set()
    cdp.on(
        "Network.requestWillBeSent", lambda e: sent.__setitem__(e["requestId"], e["request"]["url"])
    )
    cdp.on("Network.requestServedFromCache", lambda e: cached.add(e["requestId"]))

    def stop() -> tuple[int, int]:
        cdp.detach()
        urls = [u for rid, u in sent.items() if rid not in cached]
        return len(urls), sum(1 for u in urls if "/v1/" in u)

    return stop


def runs_list(browser: Any, served: Served, repeats: int) -> dict[str, Any]:
    times: list[float] = []
    api_counts: list[int] = []
    cold_total: list[int] = []
    warm_total: list[int] = []
    for _ in range(repeats):
        ctx = browser.new_context(viewport={"width": 1440, "height": 900})
        ctx.add_init_script(WATCH)
        page = ctx.new_page()
        for phase in ("cold", "warm"):
            net = network_counter(ctx, page)
            page.goto(f"{served.base}/runs")
            m = wait_marks(page, "row")
            page.wait_for_timeout(300)  # requests made right after the rows show count too
            sent, api = net()
            (cold_total if phase == "cold" else warm_total).append(sent)
            if phase == "warm":
                times.append(m["row"])
                api_counts.append(api)
        ctx.close()
    return {
        "ms": times,
        "api_requests": max(api_counts),
        "requests_cold_cache": max(cold_total),
        "requests_warm_cache": max(warm_total),
    }


def new_run_latency(browser: Any, served: Served, repeats: int) -> list[float]:
    ctx = browser.new_context(viewport={"width": 1440, "height": 900})
    ctx.add_init_script(WATCH)
    page = ctx.new_page()
    page.goto(f"{served.base}/runs")
    wait_marks(page, "row")
    page.wait_for_selector("#live-indicator:not([hidden])")
    out: list[float] = []
    for i in range(repeats):
        t0 = time.time() * 1000
        run_id = served.submit("quick", {"n": 10_000 + i})
        page.wait_for_function("id => id in window.__rows", arg=run_id, timeout=60_000)
        out.append(page.evaluate("id => window.__rows[id]", run_id) - t0)
        page.wait_for_timeout(100)
    ctx.close()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    from playwright.sync_api import sync_playwright

    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp:
        served = start(Path(tmp))
        try:
            chatter = seed(served)
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
                opened = open_run(browser, served, chatter, args.repeats)
                listed = runs_list(browser, served, args.repeats)
                fresh = new_run_latency(browser, served, max(10, args.repeats * 2))
                version = browser.version
                browser.close()
        finally:
            stop(served)

    med = statistics.median
    rows = [
        (
            "open a run with 20,000 events, new tab, cold cache",
            med(opened["cold_ms"]),
            "ms",
            "< 1000",
        ),
        (
            "open a run with 20,000 events, new tab, warm cache",
            med(opened["warm_ms"]),
            "ms",
            "< 1000",
        ),
        (
            "open a run from the runs list (click → graph)",
            med(opened["in_app_graph_ms"]),
            "ms",
            "< 1000",
        ),
        ("runs list load (navigation → rows), warm cache", med(listed["ms"]), "ms", "< 300"),
        ("runs list API requests", listed["api_requests"], "", "<= 2"),
        ("runs list network requests in all, cold cache", listed["requests_cold_cache"], "", ""),
        ("runs list network requests in all, warm cache", listed["requests_warm_cache"], "", ""),
        ("new run → visible in the list, median", med(fresh), "ms", "< 1000"),
        ("new run → visible in the list, p95", pct(fresh, 0.95), "ms", "< 1000"),
    ]
    print(f"{'measure':<52} {'value':>9}  target")
    for name, value, unit, target in rows:
        shown = f"{value:,.0f} {unit}".strip() if isinstance(value, float) else str(value)
        print(f"{name:<52} {shown:>9}  {target}")
    result = {
        "open_20k_ms": {k: [round(x, 1) for x in v] for k, v in opened.items()},
        "list": {**listed, "ms": [round(x, 1) for x in listed["ms"]]},
        "new_run_ms": [round(x, 1) for x in fresh],
        "summary": {name: (round(v, 1) if isinstance(v, float) else v) for name, v, _, _ in rows},
        "targets": TARGETS,
        "meta": {
            "date": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime()),
            "chromium": version,
            "repeats": args.repeats,
            "events": EVENTS,
            "runs_in_store": LIST_RUNS,
            "cpus": os.cpu_count(),
            "load_avg_1m": [round(load_before, 1), round(os.getloadavg()[0], 1)],
        },
    }
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(f"load average (1 min) before / after: {load_before:.1f} / {os.getloadavg()[0]:.1f}")
    print(f"wrote {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
