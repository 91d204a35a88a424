"""``tether keys``: create, list and revoke the API keys of ``tether serve``.

A key is shown once, when it is made; the store keeps its argon2 hash. While the store holds
no live key, ``tether serve`` runs in local single-tenant mode (bound to 127.0.0.1 only).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from tether.cli import commands as cmd
from tether.cli.render import Output, fmt_time
from tether.core.errors import ConfigurationError, InvalidInputError
from tether.store.api_keys import SCOPES, ApiKeyRecord, ApiKeyStore
from tether.store.protocol import RunStore
from tether.store.url import open_store

COMMANDS = ("keys",)


def _scopes(text: str) -> list[str]:
    return [s.strip() for s in text.split(",") if s.strip()]


def add_parsers(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("keys", parents=[common], help="API keys of tether serve (per tenant)")
    ksub = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    c = ksub.add_parser("create", parents=[common], help="make a key (shown once)")
    c.add_argument("--tenant", required=True, metavar="NAME", help="whose runs the key sees")
    c.add_argument(
        "--scopes",
        type=_scopes,
        default=["read"],
        metavar="A,B",
        help=f"comma-separated, of {', '.join(SCOPES)} (default read)",
    )
    c.add_argument("--name", default="", metavar="TEXT", help="what the key is for")
    ls = ksub.add_parser("list", parents=[common], help="keys, newest first (never the key)")
    ls.add_argument("--tenant", metavar="NAME", help="only this tenant's keys")
    r = ksub.add_parser("revoke", parents=[common], help="revoke a key by its id")
    r.add_argument("key_id", metavar="KEY_ID")


def run(args: argparse.Namespace, out: Output) -> int:
    asyncio.run(_dispatch(args, out))
    return 0


def _json(k: ApiKeyRecord) -> dict[str, Any]:
    return {
        "key_id": k.key_id,
        "tenant": k.tenant,
        "scopes": k.scopes,
        "name": k.name,
        "created_at": k.created_at,
        "revoked_at": k.revoked_at,
    }


@contextlib.asynccontextmanager
async def _store(args: argparse.Namespace) -> AsyncIterator[RunStore]:
    """The store; ``keys create`` may make a new one (keys before the first ``serve``)."""
    s = cmd.settings(args, app=False)
    if args.action != "create":
        async with cmd.cli_store(s) as store:
            yield store
        return
    path = cmd.sqlite_path(s.store_url)
    if path is not None and not path.startswith("file:"):
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    store = open_store(s.store_url)
    try:
        await store.setup()
        yield store
    finally:
        await store.close()


async def _dispatch(args: argparse.Namespace, out: Output) -> None:
    async with _store(args) as store:
        if not isinstance(store, ApiKeyStore):
            raise ConfigurationError(f"{type(store).__name__} keeps no API keys")
        if args.action == "create":
            from tether.server.keys import create_key  # the server plane: only to create one

            rec, key = await create_key(store, args.tenant, args.scopes, args.name)
            if out.json_mode:
                out.emit_json({**_json(rec), "key": key})
            else:
                out.print(f"key {rec.key_id} for tenant {rec.tenant} ({', '.join(rec.scopes)}):")
                out.print(key)
                out.err.print("keep it now: it is not shown again (the store keeps a hash)")
        elif args.action == "list":
            keys = await store.list_api_keys(tenant=args.tenant)
            if out.json_mode:
                out.emit_json([_json(k) for k in keys])
            elif not keys:
                out.err.print("no API keys (tether serve runs in local mode)")
            for k in [] if out.json_mode else keys:
                state = f"revoked {fmt_time(k.revoked_at)}" if k.revoked_at else "active"
                out.print(
                    f"{k.key_id}  {k.tenant}  {','.join(k.scopes)}  {state}  "
                    f"{fmt_time(k.created_at)}  {k.name}"
                )
        elif args.action == "revoke":
            got = await store.revoke_api_key(args.key_id)
            if got is None:
                raise InvalidInputError(
                    f"no API key {args.key_id!r}; see `tether keys list` for the key ids"
                )
            if out.json_mode:
                out.emit_json(_json(got))
            else:
                out.print(f"key {got.key_id} revoked (servers stop accepting it within 30 s)")
