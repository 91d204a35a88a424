"""``tether approvals list|show|approve|reject`` through a ``tether serve`` server
(``--server URL``): the request is read from the server, the decision signed here with the
approver's key (it never leaves this machine) and sent with the signature."""

from __future__ import annotations

import argparse
from typing import Any

from tether.cli import commands as cmd
from tether.cli.render import Output, fmt_time
from tether.client import Approval, AsyncClient
from tether.core.errors import ConfigurationError, InvalidInputError
from tether.governance.approvals import ApprovalRecord, load_private_key, sign


def _json(a: Approval) -> dict[str, Any]:
    return {k: v for k, v in a.raw.items() if k != "signature"}


def _record(a: Approval) -> ApprovalRecord:
    intent = a.raw.get("intent")
    if not isinstance(intent, dict):
        raise InvalidInputError(
            f"the server sent approval {a.approval_id} without its intent, so there is "
            "nothing to sign; is it a tether server of this version?"
        )
    return ApprovalRecord(
        approval_id=a.approval_id,
        run_id=a.run_id,
        intent_hash=str(a.raw.get("intent_hash") or ""),
        intent=intent,
        reason=a.reason,
        rule=dict(a.raw.get("rule") or {}),
        status=a.status,
    )


def _read_key(path: str) -> bytes:
    from pathlib import Path

    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise InvalidInputError(f"cannot read the key file {path!r}: {exc.strerror}") from None


async def dispatch(args: argparse.Namespace, out: Output, s: cmd.Settings) -> None:
    assert s.server is not None
    async with AsyncClient(s.server, s.api_key) as c:
        if args.action == "list":
            items = await c.approvals(args.status, run_id=args.run)
            if out.json_mode:
                out.emit_json([_json(a) for a in items])
                return
            for a in items:
                out.print(
                    f"{a.approval_id}  {a.status:<8}  {a.tool}  run {a.run_id}  "
                    f"{fmt_time(a.created_at)}  {a.reason}"
                )
        elif args.action == "show":
            a = await c.approval(args.approval_id)
            if out.json_mode:
                out.emit_json(_json(a))
            else:
                out.print("\n".join(f"{k}: {v}" for k, v in _json(a).items()))
        elif args.action in ("approve", "reject"):
            key = load_private_key(_read_key(args.key), f"--key {args.key}")
            a = await c.approval(args.approval_id)
            token = sign(key, _record(a), args.action, valid_for=args.valid_for)
            if args.action == "approve":
                a = await c.approve(a.approval_id, args.approver, signature=token)
            else:
                a = await c.reject(
                    a.approval_id, args.approver, signature=token, reason=args.reason
                )
            if out.json_mode:
                out.emit_json(_json(a))
            else:
                out.print(f"approval {a.approval_id}: {a.status}")
        else:
            raise ConfigurationError(
                f"`tether approvals {args.action}` works on a store, not through a server: "
                "drop --server and pass --store URL"
            )
