"""``tether migrate``: bring a store's schema to this tether's version, or say what that would do.

Every process that opens a store migrates it by itself (``SqlStore.setup``: one transaction
under a lock, each version applied once); this command makes that a step of its own in a
deployment (run it once before restarting workers and servers) and, with ``--dry-run``, shows
the versions a store lacks without touching it.
"""

from __future__ import annotations

import argparse
import asyncio
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.text import Text

from tether.cli import commands as cmd
from tether.cli.render import Output
from tether.core.errors import ConfigurationError, TetherError
from tether.store import schema
from tether.store.sql_store import SqlStore
from tether.store.url import open_store

COMMANDS = ("migrate",)


@dataclass(slots=True)
class MigrateView:
    store: str
    before: int
    after: int
    versions: list[int] = field(default_factory=list)
    """Applied (or, in a dry run, to apply), in order."""
    dry_run: bool = False


def add_parsers(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser(
        "migrate",
        parents=[common],
        help="bring the store's schema to this tether's version (--dry-run: only show)",
    )
    p.add_argument(
        "--dry-run", action="store_true", help="list the versions the store lacks; change nothing"
    )


def run(args: argparse.Namespace, out: Output) -> int:
    show(out, asyncio.run(migrate(cmd.settings(args, app=False), args.dry_run)))
    return 0


async def migrate(settings: cmd.Settings, dry_run: bool) -> MigrateView:
    url = settings.store_url
    if dry_run and not _exists(cmd.sqlite_path(url)):
        return MigrateView(url, 0, 0, schema.versions(), dry_run=True)  # nothing to open yet
    try:
        store = open_store(url)
    except TetherError:
        raise
    except Exception as exc:
        raise ConfigurationError(f"cannot open store {url!r}: {exc}") from exc
    try:
        if not isinstance(store, SqlStore):
            raise ConfigurationError(
                f"{url!r} is not a database: an in-memory store has no schema to migrate"
            )
        before = await store.schema_version()
        todo = store.pending_migrations(before)
        if dry_run:
            return MigrateView(url, before, before, todo, dry_run=True)
        await store.setup()
        after = await store.schema_version()
        return MigrateView(url, before, after, [v for v in todo if v <= after])
    finally:
        await store.close()


def _exists(path: str | None) -> bool:
    """Whether a SQLite URL's file exists (any other store: True, it is asked)."""
    return path is None or path.startswith("file:") or Path(path).exists()


def show(out: Output, view: MigrateView) -> None:
    if out.json_mode:
        out.emit_json(
            {
                "from": view.before,
                "to": view.after,
                "latest": schema.LATEST_VERSION,
                "versions": [{"version": v, "adds": schema.describe(v)} for v in view.versions],
                "dry_run": view.dry_run,
            }
        )
        return
    if not view.versions:
        out.print(Text.assemble(("up to date ", "bold"), f"schema v{view.before}"))
        return
    if view.dry_run:
        head = f"would migrate v{view.before} → v{view.versions[-1]}"
    else:
        head = f"migrated v{view.before} → v{view.after}"
    out.print(Text(head, "bold"))
    for v in view.versions:
        out.print(Text.assemble(f"  v{v}  ", (schema.describe(v), "dim")))
