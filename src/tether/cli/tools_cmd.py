"""``tether tools switches|disable|enable``: the kill switches of the store (``KillSwitch``).

An operator in an incident stops a tool, a whole scope, or everything a tenant does, in every
worker sharing the store, without writing code: each executor sees the switch within its
``kill_refresh`` (0.5 s by default), and a refused call fails with ``ToolDisabledError``
before anything is journaled.
"""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

from rich import box
from rich.table import Table
from rich.text import Text

from tether.cli import commands as cmd
from tether.cli.render import Output, fmt_time
from tether.core.errors import ConfigurationError
from tether.store.control import ControlStore

COMMANDS = ("tools",)


def add_parsers(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("tools", parents=[common], help="kill switches: stop tools at run time")
    tsub = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    tsub.add_parser("switches", parents=[common], help="the kill switches in force")
    off = tsub.add_parser(
        "disable",
        parents=[common],
        help="stop a tool, a scope or a tenant's tools in every worker on the store",
    )
    on = tsub.add_parser("enable", parents=[common], help="lift a switch set by disable")
    for q in (off, on):
        q.add_argument("--tool", metavar="NAME", help="one tool, by name")
        q.add_argument(
            "--scope",
            metavar="SCOPE",
            help="every tool of this scope: read, write or destructive (instead of --tool)",
        )
        q.add_argument(
            "--tenant", metavar="NAME", help="only this tenant's calls (alone: all its tools)"
        )
    off.add_argument("--reason", required=True, metavar="TEXT", help="why: refused calls carry it")


def run(args: argparse.Namespace, out: Output) -> int:
    """Run ``tools ...``; returns the exit code."""
    return asyncio.run(_run(args, out))


async def _run(args: argparse.Namespace, out: Output) -> int:
    from tether.tools.killswitch import KillSwitch  # the tool plane: only for this command

    async with cmd.cli_store(cmd.settings(args, app=False)) as store:
        if not isinstance(store, ControlStore):
            raise ConfigurationError("this store keeps no kill switches")
        switch = KillSwitch(store)
        target = {k: getattr(args, k, None) for k in ("tool", "scope", "tenant")}
        if args.action == "disable":
            await switch.disable(**target, reason=args.reason)
        elif args.action == "enable":
            before = await switch.switches()
            if not any(_covers(s, target) for s in before):
                raise ConfigurationError(
                    f"no kill switch for {_what(target)}; `tether tools switches` lists them"
                )
            await switch.enable(**target)
        rows = await switch.switches()
    if out.json_mode:
        out.emit_json(rows)
        return 0
    if args.action != "switches":
        done = "disabled" if args.action == "disable" else "enabled again"
        out.print(f"{_what(target)}: {done}")
    _table(out, rows)
    return 0


def _covers(row: dict[str, Any], target: dict[str, str | None]) -> bool:
    return all(row[k] == target[k] for k in ("tool", "scope", "tenant"))


def _what(target: dict[str, Any]) -> str:
    what = (
        f"tool {target['tool']!r}"
        if target["tool"]
        else f"scope {target['scope']!r}"
        if target["scope"]
        else "every tool"
    )
    return what + (f" of tenant {target['tenant']!r}" if target["tenant"] else "")


def _table(out: Output, rows: list[dict[str, Any]]) -> None:
    if not rows:
        out.err.print(Text("no kill switch in force", style="dim"))
        return
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False)
    for col in ("TOOL", "SCOPE", "TENANT", "SINCE", "REASON"):
        table.add_column(col, no_wrap=col != "REASON")
    for r in rows:
        table.add_row(
            r["tool"] or Text("*", "dim"),
            r["scope"] or Text("*", "dim"),
            r["tenant"] or Text("*", "dim"),
            fmt_time(r["at"]),
            r["reason"],
        )
    out.print(table)
