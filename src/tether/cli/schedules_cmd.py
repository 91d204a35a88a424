"""``tether schedules list|delete``: the store's cron schedules (``Runtime.schedule``)."""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

from rich import box
from rich.table import Table
from rich.text import Text

from tether.cli import commands as cmd
from tether.cli.render import Output, fmt_time
from tether.core.errors import ConfigurationError, InvalidInputError
from tether.store.timers import Schedule, TimerStore

COMMANDS = ("schedules",)


def add_parsers(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("schedules", parents=[common], help="the store's cron schedules")
    ssub = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    ssub.add_parser("list", parents=[common], help="every schedule, by name")
    d = ssub.add_parser(
        "delete", parents=[common], help="remove a schedule (the runs it started stay)"
    )
    d.add_argument("name", help="the schedule's name (tether schedules list)")


def run(args: argparse.Namespace, out: Output) -> int:
    """Run ``schedules ...``; returns the exit code."""
    if args.action == "delete":
        return asyncio.run(_delete(args, out))
    asyncio.run(_list(args, out))
    return 0


async def _delete(args: argparse.Namespace, out: Output) -> int:
    async with cmd.cli_store(cmd.settings(args, app=False)) as store:
        if not isinstance(store, TimerStore):
            raise ConfigurationError("this store keeps no schedules")
        gone = await store.delete_schedule(args.name)
    if not gone:
        raise InvalidInputError(
            f"no schedule named {args.name!r}; `tether schedules list` shows them"
        )
    if out.json_mode:
        out.emit_json({"deleted": args.name})
    else:
        out.print(f"schedule {args.name!r} deleted")
    return 0


async def _list(args: argparse.Namespace, out: Output) -> None:
    async with cmd.cli_store(cmd.settings(args, app=False)) as store:
        if not isinstance(store, TimerStore):
            raise ConfigurationError("this store keeps no schedules")
        rows = await store.list_schedules()
    if out.json_mode:
        out.emit_json([_json(s) for s in rows])
        return
    if not rows:
        out.err.print(Text("no schedules", style="dim"))
        return
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False)
    cols = ("NAME", "CRON", "TIMEZONE", "WORKFLOW", "QUEUE", "TENANT", "STATE", "NEXT", "LAST SLOT")
    for col in cols:
        table.add_column(col, no_wrap=True)
    for s in rows:
        queue = s.queue if not s.priority else f"{s.queue} (priority {s.priority})"
        table.add_row(
            s.name,
            s.cron,
            s.timezone,
            s.workflow,
            queue,
            Text("-", "dim") if s.tenant is None else s.tenant,
            Text("enabled", "green") if s.enabled else Text("disabled", "dim"),
            fmt_time(s.next_fire_at),
            fmt_time(s.last_slot),
        )
    out.print(table)


def _json(s: Schedule) -> dict[str, Any]:
    return {
        "name": s.name,
        "cron": s.cron,
        "timezone": s.timezone,
        "workflow": s.workflow,
        "input": s.input,
        "queue": s.queue,
        "priority": s.priority,
        "tenant": s.tenant,
        "enabled": s.enabled,
        "next_fire_at": s.next_fire_at,
        "last_slot": s.last_slot,
    }
