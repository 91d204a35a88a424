"""``tether worker`` (run a worker process) and ``tether workers list`` (the registry)."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from typing import Any

from rich import box
from rich.table import Table
from rich.text import Text

from tether.cli import commands as cmd
from tether.cli import logs
from tether.cli.argtypes import duration, port, positive_int
from tether.cli.drift_opts import add_drift_options, drift_choice, drift_monitor
from tether.cli.render import Output, fmt_time
from tether.core.errors import ConfigurationError, TetherError
from tether.graph.retention import Retention
from tether.store.server_clock import store_now
from tether.store.url import open_store
from tether.store.workers import WorkerRecord, WorkerRegistry, worker_state
from tether.worker import Worker, default_concurrency
from tether.worker.probe_token import TOKEN_ENV

COMMANDS = ("worker", "workers")


def _positive_float(text: str) -> float:
    """Seconds for a period the worker keeps (poll, lease, heartbeat): from a millisecond (a
    shorter poll would claim without ever yielding) to a day (a longer one overflows the
    clocks the heartbeat threads compute)."""
    try:
        x = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected seconds, got {text!r}") from None
    if not MIN_PERIOD <= x <= MAX_PERIOD:
        raise argparse.ArgumentTypeError(
            f"must be from {MIN_PERIOD} to {MAX_PERIOD:g} seconds, got {text}"
        )
    return x


MIN_PERIOD, MAX_PERIOD = 0.001, 86_400.0
MIN_LEASE_TTL = 1.0
"""A shorter lease is renewed more than three times a second: on a loaded host live workers
take each other's runs (a 0.01 s lease had three workers escalating a run between them)."""


def _lease_ttl(text: str) -> float:
    x = _positive_float(text)
    if x < MIN_LEASE_TTL:
        raise argparse.ArgumentTypeError(
            f"must be at least {MIN_LEASE_TTL:g} second, got {text}: a lease that short is "
            "lost by live workers on a busy host, which then take each other's runs (the "
            "default 15 suits most; a dead worker's runs are taken over at once anyway)"
        )
    return x


def _grace(text: str) -> float:
    try:
        x = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected seconds, got {text!r}") from None
    if not x >= 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {text}")
    return x


def _queues(text: str) -> list[str]:
    names = [q.strip() for q in text.split(",")]
    if not all(names):
        raise argparse.ArgumentTypeError(f"expected queue names separated by commas, got {text!r}")
    return names


def add_parsers(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser(
        "worker",
        parents=[common],
        help="run a worker: execute the runs of the store's queues until SIGTERM",
        description="Execute runs of the --app workflows from the store until stopped. "
        "SIGTERM (or Ctrl-C) drains: no new runs, each run stops after its current step "
        "and is handed to another worker, up to --grace seconds; Ctrl-C while draining (twice, "
        "or after a SIGTERM) stops at once.",
    )
    p.add_argument("--queues", type=_queues, metavar="A,B", help="queues to serve (default: all)")
    p.add_argument(
        "--concurrency",
        type=positive_int,
        metavar="N",
        help=f"runs executed at once (default {default_concurrency()}, from the CPU count)",
    )
    p.add_argument(
        "--grace", type=_grace, default=30.0, metavar="S", help="drain time on SIGTERM (30)"
    )
    p.add_argument(
        "--lease-ttl", type=_lease_ttl, default=15.0, metavar="S", help="lease TTL (15; >= 1)"
    )
    p.add_argument(
        "--poll-interval",
        type=_positive_float,
        default=0.5,
        metavar="S",
        help="seconds between two looks for runs to claim (0.5)",
    )
    p.add_argument(
        "--heartbeat",
        type=_positive_float,
        metavar="S",
        help="seconds between two registry heartbeats (default lease TTL / 3); a worker "
        "silent for two of them is taken for dead and its runs are taken over",
    )
    p.add_argument(
        "--purge-after",
        type=duration,
        metavar="T",
        help="delete runs that finished more than T ago (30d, 12h), whole families only, "
        "swept every minute (default: keep every run)",
    )
    p.add_argument(
        "--keep-last",
        type=positive_int,
        metavar="N",
        help="once a run finishes, keep only its last N checkpoints (default: all)",
    )
    p.add_argument(
        "--probe-port",
        type=port,
        metavar="PORT",
        help="serve /healthz, /readyz and /metrics (Prometheus) on this port (0: any free "
        "port; default: none). Open unless --probe-token: it shows counts, never run data",
    )
    p.add_argument(
        "--probe-token",
        metavar="TOKEN",
        default=os.environ.get(TOKEN_ENV) or None,
        help=f"a bearer token /metrics asks for (env {TOKEN_ENV}, better than the command "
        "line; /healthz and /readyz answer without it, their status only)",
    )
    p.add_argument(
        "--probe-host",
        default="127.0.0.1",
        metavar="ADDR",
        help="address the probe endpoint binds (127.0.0.1; 0.0.0.0 for a cluster's probes)",
    )
    add_drift_options(p)
    logs.add_log_options(p)
    p.add_argument("--worker-id", metavar="NAME", help="worker id (env TETHER_WORKER_ID)")
    p.add_argument(
        "--deps",
        metavar="MODULE:ATTR",
        help="the nodes' dependencies (ctx.deps): a dict, or a function returning one, named "
        "like --app (module:attr or path/to/file.py:attr)",
    )

    workers = sub.add_parser("workers", parents=[common], help="the store's worker registry")
    wsub = workers.add_subparsers(dest="action", metavar="ACTION", required=True)
    wsub.add_parser("list", parents=[common], help="registered workers, newest first")


def run(args: argparse.Namespace, out: Output) -> int:
    """Run ``worker`` or ``workers ...``; returns the exit code."""
    if args.command == "workers":
        asyncio.run(_list(args, out))
        return 0
    undo = logs.configure(args, out)
    try:
        return asyncio.run(_work(args, out))
    finally:
        undo()


async def _work(args: argparse.Namespace, out: Output) -> int:
    settings = cmd.settings(args)
    if not settings.app:
        raise ConfigurationError(
            "tether worker needs the workflows to run: pass --app module:attr (or TETHER_APP)"
        )
    workflows = cmd.load_workflows(settings.app)
    deps = cmd.load_deps(args.deps) if args.deps else None
    try:
        store = open_store(settings.store_url)
    except TetherError:
        raise
    except Exception as exc:
        raise ConfigurationError(f"cannot open store {settings.store_url!r}: {exc}") from exc
    worker = Worker(
        store,
        workflows,
        queues=args.queues,
        concurrency=args.concurrency,
        grace=args.grace,
        lease_ttl=args.lease_ttl,
        poll_interval=args.poll_interval,
        owner=args.worker_id,
        heartbeat_interval=args.heartbeat,
        deps=deps,
        drift=drift_choice(args),
        drift_monitor=drift_monitor(args),
        retention=Retention(keep_last=args.keep_last, finished_ttl=args.purge_after),
        probe_port=args.probe_port,
        probe_host=args.probe_host,
        probe_token=args.probe_token,
    )
    worker.install_signal_handlers()
    started = asyncio.get_running_loop().create_task(worker.run())
    await _wait_registered(worker, started)
    queues = ",".join(worker.queues) if worker.queues is not None else "*"
    names = sorted(wf.name for wf in workflows)
    line: dict[str, Any] = {
        "worker": worker.worker_id,
        "owner": worker.owner,
        "store": _redacted(settings.store_url),
        "queues": queues,
        "concurrency": worker.concurrency,
        "workflows": names,
    }
    if worker.probe_url is not None:
        line["probes"] = worker.probe_url
    if worker.drift is not None:
        line["drift"] = sorted({f.workflow or "*" for f in worker.drift.feeds})
    if out.json_mode:  # one line (JSON lines), for log collectors and supervisors
        sys.stdout.write(json.dumps(line) + "\n")
        sys.stdout.flush()
    else:
        out.print(
            Text(
                f"worker {worker.worker_id} started: store {line['store']}, queues {queues}, "
                f"concurrency {worker.concurrency}, workflows {', '.join(names)}"
                + (f", drift checks of {', '.join(line['drift'])}" if "drift" in line else "")
                + (f", probes at {worker.probe_url}" if worker.probe_url else "")
                + " "
                f"(pid {worker.runtime.incarnation.pid})"
            )
        )
    code = await started
    logs.note(args, out, f"worker {worker.worker_id} stopped")
    return code


async def _wait_registered(worker: Worker, task: asyncio.Task[int]) -> None:
    """Until the worker is open and registered (or failed to open: its error is raised)."""
    ready = asyncio.ensure_future(worker.ready.wait())
    await asyncio.wait({ready, task}, return_when=asyncio.FIRST_COMPLETED)
    ready.cancel()
    if task.done():
        task.result()


def _redacted(url: str) -> str:
    """The store URL without a password."""
    scheme, sep, rest = url.partition("://")
    creds, at, host = rest.rpartition("@")
    if not sep or not at or ":" not in creds:
        return url
    return f"{scheme}://{creds.split(':', 1)[0]}:***@{host}"


async def _list(args: argparse.Namespace, out: Output) -> None:
    async with cmd.cli_store(cmd.settings(args)) as store:
        if not isinstance(store, WorkerRegistry):
            raise ConfigurationError("this store keeps no worker registry")
        rows = await store.list_workers()
        now = store_now(store)  # heartbeats are in the store's time (the server's, on PG)
    if out.json_mode:
        out.emit_json([{**_json(w), "state": worker_state(w, now)} for w in rows])
        return
    if not rows:
        out.err.print(Text("no workers registered", style="dim"))
        return
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False)
    for col in ("WORKER", "HOST", "PID", "STATE", "QUEUES", "CONC", "IN FLIGHT"):
        table.add_column(col, no_wrap=True)
    table.add_column("STARTED", no_wrap=True)
    table.add_column("LAST BEAT", no_wrap=True)
    for w in rows:
        state = worker_state(w, now)
        style = {"running": "green", "stopped": "dim"}.get(state, "yellow")
        table.add_row(
            w.worker_id,
            w.host,
            str(w.pid),
            Text(state, style=style),
            ",".join(w.queues) if w.queues is not None else "*",
            str(w.concurrency),
            str(w.in_flight),
            fmt_time(w.started_at),
            f"{max(0.0, now - w.heartbeat_at):.1f}s ago",
        )
    out.print(table)


def _json(w: WorkerRecord) -> dict[str, Any]:
    return {
        "owner": w.owner,
        "worker_id": w.worker_id,
        "host": w.host,
        "pid": w.pid,
        "started_at": w.started_at,
        "queues": w.queues,
        "concurrency": w.concurrency,
        "heartbeat_at": w.heartbeat_at,
        "in_flight": w.in_flight,
        "stopped_at": w.stopped_at,
        "heartbeat_every": w.heartbeat_every,
    }
