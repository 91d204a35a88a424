"""``tether approvals``: list, show, approve and reject approval requests (signing with a PEM
key file), make an approver key pair (``keygen``) and register approvers (``approver add``,
``approver list``).

Approvers belong to a tenant (``--tenant``; none: the approvers of runs without a tenant): an
approver decides only the requests of its tenant's runs (``tether.governance.approvals_tenant``).

``approve``/``reject`` record the signed decision; once the request is decided its run is
resumed and left to the workers (``Approvals(runtime, execute=False)``). Resuming needs the
run's workflow (``--app``, or the reference stored on the run); without it the decision stays
recorded and a warning says how to resume the run.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.text import Text

from tether.cli import commands as cmd
from tether.cli.argtypes import duration
from tether.cli.render import Output, fmt_time
from tether.core.errors import ConfigurationError, InvalidInputError
from tether.core.lifecycle import ACTIVE

if TYPE_CHECKING:  # the governance plane loads when a command runs, not for every `tether`
    from tether.governance.approvals import ApprovalRecord, Approvals

COMMANDS = ("approvals",)


def add_parsers(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("approvals", parents=[common], help="signed approvals of governed calls")
    asub = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    ls = asub.add_parser("list", parents=[common], help="approval requests, newest first")
    ls.add_argument("--status", metavar="S", help="pending, approved, rejected or void")
    ls.add_argument("--run", metavar="RUN_ID", help="only this run's requests")
    ls.add_argument("--tenant", metavar="NAME", help="only this tenant's requests")
    show = asub.add_parser("show", parents=[common], help="one request: the intent, who, why")
    show.add_argument("approval_id", metavar="ID")
    for action in ("approve", "reject"):
        a = asub.add_parser(action, parents=[common], help=f"{action} a request (signed)")
        a.add_argument("approval_id", metavar="ID")
        a.add_argument("--approver", required=True, metavar="NAME", help="your approver id")
        a.add_argument("--key", required=True, metavar="FILE", help="your PEM private key")
        a.add_argument(
            "--valid-for",
            type=duration,
            default=3600.0,
            metavar="S",
            help="signature lifetime (3600 s; 90s, 30m, 24h)",
        )
        if action == "reject":
            a.add_argument("--reason", default="", metavar="TEXT", help="why")
    kg = asub.add_parser("keygen", parents=[common], help="make an Ed25519 key pair")
    kg.add_argument("--out", required=True, metavar="FILE", help="private key; FILE.pub public")
    ap = asub.add_parser("approver", parents=[common], help="manage approvers")
    apsub = ap.add_subparsers(dest="approver_action", metavar="ACTION", required=True)
    add = apsub.add_parser("add", parents=[common], help="register (or re-key) an approver")
    add.add_argument("approver_id", metavar="ID")
    add.add_argument("--role", required=True, metavar="R")
    add.add_argument("--public-key", required=True, metavar="FILE", help="PEM public key")
    add.add_argument(
        "--tenant",
        metavar="NAME",
        help="the tenant whose runs they decide (none: runs without a tenant)",
    )
    als = apsub.add_parser("list", parents=[common], help="registered approvers")
    als.add_argument("--tenant", metavar="NAME", help="only this tenant's approvers")


def run(args: argparse.Namespace, out: Output) -> int:
    """Run ``approvals ...``; returns the exit code."""
    if args.action == "keygen":
        _keygen(Path(args.out), out)
        return 0
    asyncio.run(_dispatch(args, out))
    return 0


def _read(path: str, what: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise InvalidInputError(f"cannot read {what} {path!r}: {exc.strerror}") from None


def _keygen(path: Path, out: Output) -> None:
    pub = Path(f"{path}.pub")
    for p in (path, pub):
        if p.exists():
            raise InvalidInputError(
                f"{p} exists already; pick another --out (keys are not overwritten)"
            )
    from tether.governance.approvals import generate_key, private_pem, public_pem

    key = generate_key()
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(private_pem(key))
        pub.write_text(public_pem(key), encoding="ascii")
    except OSError as exc:
        raise InvalidInputError(f"cannot write the key to {path}: {exc.strerror}") from None
    _say(out, {"private_key": str(path), "public_key": str(pub)}, f"wrote {path} and {pub}")


def _say(out: Output, data: Any, text: str) -> None:
    if out.json_mode:
        out.emit_json(data)
    else:
        out.print(text)


@contextlib.asynccontextmanager
async def _approvals(s: cmd.Settings) -> AsyncIterator[Approvals]:
    from tether.governance.approvals import Approvals

    async with cmd.cli_runtime(s) as rt:
        yield Approvals(rt, execute=False)


def _store_flag(s: cmd.Settings) -> str:
    """`` --store URL`` when the store was named on the command line: the commands this one
    suggests must look in the same store."""
    return f" --store {s.store_url}" if s.store_origin == "--store" else ""


async def _decide(ap: Approvals, args: argparse.Namespace, out: Output) -> None:
    from tether.governance.approvals import load_private_key, sign

    s = cmd.settings(args)
    key = load_private_key(_read(args.key, "the key file"), f"--key {args.key}")
    rec = await ap.get(args.approval_id)
    token = sign(key, rec, args.action, valid_for=args.valid_for)
    try:
        if args.action == "approve":
            rec = await ap.approve(rec.approval_id, args.approver, token)
        else:
            rec = await ap.reject(rec.approval_id, args.approver, token, args.reason)
    except ConfigurationError as exc:  # recorded, but this process cannot resume the run
        rec = await ap.get(rec.approval_id)
        if rec.status == "pending" or not any(
            d["approver"] == args.approver for d in rec.decisions
        ):
            raise
        out.warning(
            f"the decision is recorded, but the run was not resumed: {exc}; resume it with "
            f"`tether runs resume {rec.run_id} --app module:workflow{_store_flag(s)}`"
        )
    _say(out, _json(rec), f"approval {rec.approval_id}: {rec.status}")
    if not out.json_mode and ap.runtime is not None:
        run = await ap.runtime.store.get_run(rec.run_id)
        if run.status in ACTIVE and run.owner is None:
            out.err.print(
                Text(
                    f"run {rec.run_id} is queued ({run.status.value}): a worker continues it "
                    f"(`tether worker --app module:workflow{_store_flag(s)}`); follow it with "
                    f"`tether runs show {rec.run_id}{_store_flag(s)}`",
                    style="dim",
                )
            )


async def _dispatch(args: argparse.Namespace, out: Output) -> None:
    s = cmd.settings(args)
    if s.server:  # through a tether serve server (--server / TETHER_SERVER)
        from tether.cli import server_approvals

        await server_approvals.dispatch(args, out, s)
        return
    async with _approvals(s) as ap:
        if args.action == "list":
            recs = await ap.list(status=args.status, run_id=args.run, tenant=args.tenant)
            if out.json_mode:
                out.emit_json([_json(r) for r in recs])
            for r in [] if out.json_mode else recs:
                out.print(
                    f"{r.approval_id}  {r.status:<8}  {r.intent.get('tool')}  run {r.run_id}  "
                    f"{fmt_time(r.created_at)}  {r.reason}"
                )
        elif args.action == "show":
            r = await ap.get(args.approval_id)
            _say(out, _json(r), "\n".join(f"{k}: {v}" for k, v in _json(r).items()))
        elif args.action in ("approve", "reject"):
            await _decide(ap, args, out)
        elif args.action == "approver" and args.approver_action == "list":
            found = await ap.approvers(args.tenant)
            if out.json_mode:
                out.emit_json([_approver_json(a) for a in found])
            for a in [] if out.json_mode else found:
                out.print(
                    f"{a.approver_id}  {a.role}  {_whose(a.tenant)}  {fmt_time(a.updated_at)}"
                )
        elif args.action == "approver":
            pem = _read(args.public_key, "the public key file")
            a = await ap.register_approver(args.approver_id, args.role, pem, tenant=args.tenant)
            _say(
                out,
                _approver_json(a),
                f"approver {a.approver_id} ({a.role}) registered for {_whose(a.tenant)}",
            )


def _whose(tenant: str | None) -> str:
    return "runs without a tenant" if tenant is None else f"tenant {tenant}"


def _approver_json(a: Any) -> dict[str, Any]:
    return {"approver": a.approver_id, "role": a.role, "tenant": a.tenant}


def _json(r: ApprovalRecord) -> dict[str, Any]:
    return {
        "approval_id": r.approval_id,
        "status": r.status,
        "run_id": r.run_id,
        "intent": r.intent,
        "reason": r.reason,
        "rule": r.rule,
        "decisions": [{k: v for k, v in d.items() if k != "signature"} for d in r.decisions],
        "deadline_at": r.deadline_at,
        "used_at": r.used_at,
        "history": r.history,
    }
