"""``tether trace RUN``: the run's timeline in the terminal, rebuilt from its stored events, so
it works for any run in the store, traced or not (``tether.observability.timeline``).

``--follow`` keeps drawing a live run until it settles (completes, fails, is cancelled or
escalates); ``--export json`` prints the run's spans as a JSON document; ``--export otlp`` sends
them to an OTLP endpoint: ``--endpoint`` or the standard ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``
/ ``OTEL_EXPORTER_OTLP_ENDPOINT`` (nothing is sent anywhere else).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
from typing import Any

from rich.live import Live
from rich.text import Text

from tether.cli import commands as cmd
from tether.cli.argtypes import positive_int
from tether.cli.render import Output
from tether.cli.trace_render import render_timeline
from tether.core.errors import InvalidInputError
from tether.core.lifecycle import ACTIVE
from tether.observability.exporters import build_exporter, otlp_protocol
from tether.observability.timeline import Timeline, build_timeline
from tether.observability.timeline_export import export_document, send_spans
from tether.observability.trace_ids import run_trace_ids
from tether.store.protocol import RunStore
from tether.store.types import Event, RunRecord

COMMANDS = ("trace",)
EVENT_PAGE = 1000
ENDPOINT_ENVS = ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT")


def _interval(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0.05 <= value <= 60:
        raise argparse.ArgumentTypeError(f"expected seconds between 0.05 and 60, got {text!r}")
    return value


def add_parsers(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser(
        "trace",
        parents=[common],
        help="a run's timeline: steps, nodes, model and tool calls, trips, approvals",
    )
    p.add_argument("run_id", metavar="RUN_ID")
    p.add_argument("--follow", action="store_true", help="keep drawing a live run until it settles")
    p.add_argument(
        "--export",
        choices=("json", "otlp"),
        help="print the run's spans as JSON, or send them to the OTLP endpoint",
    )
    p.add_argument(
        "--endpoint",
        metavar="URL",
        help="OTLP endpoint for --export otlp (default: OTEL_EXPORTER_OTLP_TRACES_ENDPOINT or "
        "OTEL_EXPORTER_OTLP_ENDPOINT)",
    )
    p.add_argument(
        "--protocol",
        choices=("http", "grpc"),
        help="OTLP protocol (default: OTEL_EXPORTER_OTLP_PROTOCOL, else http)",
    )
    p.add_argument("--width", type=positive_int, metavar="N", help="columns to draw in")
    p.add_argument(
        "--interval", type=_interval, default=0.5, metavar="S", help="--follow: seconds per look"
    )


def run(args: argparse.Namespace, out: Output) -> int:
    """Run ``trace ...``; returns the exit code."""
    if args.follow and args.export:
        raise InvalidInputError("--follow draws a live run; export it once it settled")
    return asyncio.run(_run(args, out))


async def read_run(store: RunStore, run_id: str) -> tuple[RunRecord, list[Event]]:
    """The run and all its events (RunNotFoundError names a missing run)."""
    run = await store.get_run(run_id)
    events: list[Event] = []
    while True:
        after = events[-1].seq if events else 0
        page = await store.list_events(run_id, after_seq=after, limit=EVENT_PAGE)
        events.extend(page)
        if len(page) < EVENT_PAGE:
            return run, events


async def _run(args: argparse.Namespace, out: Output) -> int:
    async with cmd.cli_store(cmd.settings(args, app=False)) as store:
        if args.follow:
            return await _follow(store, args, out)
        run, events = await read_run(store, args.run_id)
    now = time.time()
    tl = build_timeline(run, events, now)
    if args.export == "otlp":
        endpoint = _endpoint(args)
        protocol = f"otlp-{args.protocol}" if args.protocol else otlp_protocol()
        exporter = build_exporter(protocol, endpoint)
        sent = send_spans(
            tl, run_trace_ids(run.run_id, run.metadata), now, exporter, where=endpoint
        )
        if out.json_mode:
            out.emit_json({"run_id": run.run_id, "spans": sent, "endpoint": endpoint})
        else:
            out.print(Text(f"sent {sent} spans of run {run.run_id} to {endpoint} ({protocol})"))
    elif args.export == "json" or out.json_mode:
        out.emit_json(export_document(tl, run_trace_ids(run.run_id, run.metadata), now))
    else:
        out.print(render_timeline(tl, width=_width(args, out), now=now))
    return 0


def _endpoint(args: argparse.Namespace) -> str:
    if args.endpoint:
        if not args.endpoint.startswith(("http://", "https://")):
            raise InvalidInputError(
                f"--endpoint must be an http:// or https:// URL, got {args.endpoint!r}"
            )
        return str(args.endpoint)
    for name in ENDPOINT_ENVS:
        value = os.environ.get(name, "").strip()
        if value:
            return value
    raise InvalidInputError(
        "--export otlp needs an endpoint: pass --endpoint http://127.0.0.1:4318 or set "
        "OTEL_EXPORTER_OTLP_ENDPOINT (tether sends nothing anywhere you did not name)"
    )


def _width(args: argparse.Namespace, out: Output) -> int:
    return int(args.width) if args.width else min(out.out.width, 140)


async def _follow(store: RunStore, args: argparse.Namespace, out: Output) -> int:
    run = await store.get_run(args.run_id)
    events: list[Event] = []
    width = _width(args, out)

    async def look() -> tuple[RunRecord, Timeline, float]:
        nonlocal run
        run = await store.get_run(args.run_id)
        while True:
            after = events[-1].seq if events else 0
            page = await store.list_events(args.run_id, after_seq=after, limit=EVENT_PAGE)
            events.extend(page)
            if len(page) < EVENT_PAGE:
                break
        now = time.time()
        return run, build_timeline(run, events, now), now

    run, tl, now = await look()
    if not out.out.is_terminal:  # a pipe or a file: one drawing, once the run settled
        while run.status in ACTIVE:
            await asyncio.sleep(args.interval)
            run, tl, now = await look()
        out.print(render_timeline(tl, width=width, now=now))
        return 0
    with Live(render_timeline(tl, width=width, now=now), console=out.out) as live:
        while run.status in ACTIVE:
            await asyncio.sleep(args.interval)
            run, tl, now = await look()
            live.update(render_timeline(tl, width=width, now=now))
    return 0
