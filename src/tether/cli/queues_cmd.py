"""``tether queues`` (what each queue holds, with its limits) and ``tether queues limit`` (set or
remove a limit shared by every worker: see ``tether.store.queue_limits``)."""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

from rich import box
from rich.table import Table
from rich.text import Text

from tether.cli import commands as cmd
from tether.cli.render import Output
from tether.core.errors import ConfigurationError
from tether.store.queue_limits import KINDS, QueueControl, QueueLimit, QueueStats
from tether.store.server_clock import store_now
from tether.store.workers import WorkerRecord, WorkerRegistry, worker_state

COMMANDS = ("queues",)
KEEP: Any = object()
"""``queues limit``: an option left out (its current value stays)."""


def _limit(text: str) -> int | None:
    if text.lower() in ("none", "off", "-"):
        return None
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a whole number or 'none', got {text!r}"
        ) from None
    if n < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {n}")
    return n


def add_parsers(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser(
        "queues", parents=[common], help="queue depth, age and the limits shared by all workers"
    )
    qsub = p.add_subparsers(dest="action", metavar="ACTION")
    qsub.add_parser("list", parents=[common], help="every queue holding runs, with its limits")
    lim = qsub.add_parser(
        "limit",
        parents=[common],
        help="set a queue's, workflow's or tenant's limit (an option left out keeps its value; "
        "'none' removes it); with neither option, remove the whole limit",
    )
    lim.add_argument("key", metavar="NAME", help="the queue (or workflow, tenant) name")
    lim.add_argument(
        "--kind", choices=KINDS, default="queue", help="what NAME names (default: queue)"
    )
    lim.add_argument(
        "--max-running",
        type=_limit,
        default=KEEP,
        metavar="N",
        help="at most N of its runs executing at once across all workers ('none': no cap)",
    )
    lim.add_argument(
        "--max-depth",
        type=_limit,
        default=KEEP,
        metavar="N",
        help="a queue holds at most N unfinished runs; submit refuses more (QueueFullError; "
        "'none': no cap)",
    )


def run(args: argparse.Namespace, out: Output) -> int:
    """Run ``queues ...``; returns the exit code."""
    asyncio.run(_run(args, out))
    return 0


async def _run(args: argparse.Namespace, out: Output) -> None:
    async with cmd.cli_store(cmd.settings(args, app=False)) as store:
        if not isinstance(store, QueueControl):
            raise ConfigurationError("this store keeps no queue limits")
        if getattr(args, "action", None) == "limit":
            out.err.print(Text(await _set_limit(store, args)))
            return
        stats, limits = await store.queue_stats(), await store.queue_limits()
        workers = await store.list_workers() if isinstance(store, WorkerRegistry) else None
        now = store_now(store)
    live = None if workers is None else [w for w in workers if worker_state(w, now) == "running"]
    _show(out, stats, limits, now, live)


async def _set_limit(store: QueueControl, args: argparse.Namespace) -> str:
    """Set the limit ``args`` name, keeping the value of an option left out (setting
    ``--max-running`` alone kept no ``--max-depth`` set before: a queue lost its backpressure
    without a word); neither option removes the whole limit. Returns what was done."""
    kind, key = args.kind, args.key
    held = next(
        (lim for lim in await store.queue_limits() if (lim.kind, lim.key) == (kind, key)), None
    )
    what = f"{kind} {key}"
    if args.max_running is KEEP and args.max_depth is KEEP:
        await store.set_queue_limit(kind, key)
        return f"{what}: limit removed" if held is not None else f"{what}: had no limit"
    max_running = held.max_running if held is not None else None
    max_depth = held.max_depth if held is not None else None
    if args.max_running is not KEEP:
        max_running = args.max_running
    if args.max_depth is not KEEP:
        max_depth = args.max_depth
    await store.set_queue_limit(kind, key, max_running=max_running, max_depth=max_depth)
    if max_running is None and max_depth is None:
        return f"{what}: limit removed" if held is not None else f"{what}: had no limit"
    caps = [f"max running {_num(max_running)}"]
    if kind == "queue":
        caps.append(f"max depth {_num(max_depth)}")
    return f"{what}: limit set ({', '.join(caps)})"


def _serving(live: list[WorkerRecord] | None, queue: str) -> int | None:
    """How many running registered workers claim from ``queue`` (None: no registry)."""
    if live is None:
        return None
    return sum(1 for w in live if w.queues is None or queue in w.queues)


def _show(
    out: Output,
    stats: list[QueueStats],
    limits: list[QueueLimit],
    now: float,
    live: list[WorkerRecord] | None = None,
) -> None:
    by_queue = {lim.key: lim for lim in limits if lim.kind == "queue"}
    names = sorted({s.queue for s in stats} | set(by_queue))
    seen = {s.queue: s for s in stats}
    if out.json_mode:
        out.emit_json(
            {
                "queues": [
                    {
                        **_json(seen.get(q, QueueStats(q)), by_queue.get(q), now),
                        "workers": _serving(live, q),
                    }
                    for q in names
                ],
                "limits": [_limit_json(lim) for lim in limits],
            }
        )
        return
    if not names and not limits:
        out.err.print(Text("no queued runs and no limits", style="dim"))
        return
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False)
    for col in (
        "QUEUE",
        "WAITING",
        "DELAYED",
        "RUNNING",
        "OLDEST WAIT",
        "MAX RUNNING",
        "MAX DEPTH",
        "WORKERS",
    ):
        table.add_column(col, no_wrap=True)
    unserved: list[tuple[str, int]] = []
    for q in names:
        s, lim = seen.get(q, QueueStats(q)), by_queue.get(q)
        serving = _serving(live, q)
        if serving == 0 and s.waiting:
            unserved.append((q, s.waiting))
        table.add_row(
            q,
            str(s.waiting),
            str(s.delayed),
            str(s.running),
            f"{s.oldest_age(now):.1f}s" if s.oldest_waiting_at is not None else "-",
            _num(lim.max_running if lim else None),
            _num(lim.max_depth if lim else None),
            "-" if serving is None else str(serving),
        )
    out.print(table)
    for q, waiting in unserved:
        # a run submitted to a queue nobody claims from waits without a word otherwise
        out.err.print(
            Text(
                f"queue {q}: {waiting} run(s) waiting and no running worker serves it; start "
                f"one with `tether worker --queues {q}` (a runtime embedded in an app that "
                "serves it is not counted here)",
                style="yellow",
            )
        )
    others = [lim for lim in limits if lim.kind != "queue"]
    if others:
        extra = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False)
        for col in ("KIND", "NAME", "MAX RUNNING"):
            extra.add_column(col, no_wrap=True)
        for lim in others:
            extra.add_row(lim.kind, lim.key, _num(lim.max_running))
        out.print(extra)


def _num(n: int | None) -> str:
    return "-" if n is None else str(n)


def _json(s: QueueStats, lim: QueueLimit | None, now: float) -> dict[str, Any]:
    return {
        "queue": s.queue,
        "waiting": s.waiting,
        "delayed": s.delayed,
        "running": s.running,
        "depth": s.depth,
        "oldest_waiting_at": s.oldest_waiting_at,
        "oldest_age": s.oldest_age(now),
        "max_running": lim.max_running if lim else None,
        "max_depth": lim.max_depth if lim else None,
    }


def _limit_json(lim: QueueLimit) -> dict[str, Any]:
    return {
        "kind": lim.kind,
        "key": lim.key,
        "max_running": lim.max_running,
        "max_depth": lim.max_depth,
    }
