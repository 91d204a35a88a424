"""``tether audit verify`` (check the hash chains, name the first broken record: exit 1) and
``tether audit list`` (the records, oldest first): see ``tether.governance.audit``."""

from __future__ import annotations

import argparse
import asyncio
import math
import time
from typing import TYPE_CHECKING, Any

from rich import box
from rich.table import Table
from rich.text import Text

from tether.cli import commands as cmd
from tether.cli.argtypes import positive_int, when
from tether.cli.render import Output
from tether.store.audit import NO_TENANT, AuditRow

if TYPE_CHECKING:  # the governance plane loads when the command runs, not for every `tether`
    from tether.governance.audit_verify import AuditVerification

COMMANDS = ("audit",)
EXIT_BROKEN = 1


def add_parsers(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("audit", parents=[common], help="the hash-chained governance audit log")
    asub = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    tenant_help = "one tenant's chain ('' for runs without a tenant); default: every chain"
    v = asub.add_parser(
        "verify", parents=[common], help="check the chains; exit 1 naming the first broken record"
    )
    v.add_argument("--tenant", default=None, metavar="T", help=tenant_help)
    ls = asub.add_parser("list", parents=[common], help="audit records, oldest first")
    ls.add_argument("--tenant", default=None, metavar="T", help=tenant_help)
    ls.add_argument("--run", default=None, metavar="RUN_ID", help="only this run's records")
    ls.add_argument(
        "--since",
        type=when,
        default=None,
        metavar="T",
        help="written from T: a duration ago (24h, 7d), an ISO date or Unix seconds",
    )
    ls.add_argument(
        "--limit", type=positive_int, default=100, metavar="N", help="at most N records"
    )


def run(args: argparse.Namespace, out: Output) -> int:
    """Run ``audit ...``; returns the exit code."""
    return asyncio.run(_run(args, out))


async def _run(args: argparse.Namespace, out: Output) -> int:
    from tether.governance.audit import StoreAuditLog, audit_store
    from tether.governance.audit_verify import verify_all, verify_audit

    async with cmd.cli_store(cmd.settings(args, app=False)) as store:
        audit_store(store)  # a clear error for a store that keeps no audit log
        if args.action == "list":
            page = await StoreAuditLog(store).records(
                tenant=args.tenant, run_id=args.run, since=args.since, limit=args.limit
            )
            _list(out, page.records)
            return 0
        if args.tenant is None:
            results = await verify_all(store)
        else:
            results = [await verify_audit(store, args.tenant)]
    _verified(out, results)
    return 0 if all(r.ok for r in results) else EXIT_BROKEN


def _tenant(t: str) -> str:
    return "(no tenant)" if t == NO_TENANT else t


def _verified(out: Output, results: list[AuditVerification]) -> None:
    if out.json_mode:
        out.emit_json({"ok": all(r.ok for r in results), "chains": [_json(r) for r in results]})
        return
    if not results:
        out.err.print(Text("no audit records", style="dim"))
    for r in results:
        if r.broken is None:
            line = f"ok      {_tenant(r.tenant)}: {r.records} records, head {r.head_seq} "
            out.print(Text(line + r.head_hash[:16], style="green"))
        else:
            out.print(Text(f"BROKEN  {_tenant(r.tenant)}: {r.broken.message}", style="bold red"))


def _json(r: AuditVerification) -> dict[str, Any]:
    b = r.broken
    return {
        "tenant": r.tenant,
        "ok": r.ok,
        "records": r.records,
        "head_seq": r.head_seq,
        "head_hash": r.head_hash,
        "broken": None if b is None else {"seq": b.seq, "reason": b.reason, "message": b.message},
    }


def _fine(ts: float) -> bool:
    return math.isfinite(ts) and -1e11 < ts < 1e11  # what gmtime can show


def _data(r: AuditRow) -> Any:
    """The record's data; its stored text when that is not JSON (a row edited by hand)."""
    try:
        return r.data
    except ValueError:
        return r.data_json


def _list(out: Output, rows: list[AuditRow]) -> None:
    if out.json_mode:
        out.emit_json(
            [
                {
                    "tenant": r.tenant,
                    "seq": r.seq,
                    "ts": r.ts,
                    "run_id": r.run_id,
                    "kind": r.kind,
                    "data": _data(r),
                    "prev_hash": r.prev_hash,
                    "hash": r.hash,
                }
                for r in rows
            ]
        )
        return
    if not rows:
        out.err.print(Text("no audit records", style="dim"))
        return
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False)
    for col in ("TENANT", "SEQ", "TIME", "RUN", "KIND", "DATA", "HASH"):
        table.add_column(col, no_wrap=col != "DATA")
    for r in rows:
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(r.ts)) if _fine(r.ts) else "?"
        table.add_row(
            _tenant(r.tenant), str(r.seq), when, r.run_id or "-", r.kind, r.data_json, r.hash[:12]
        )
    out.print(table)
