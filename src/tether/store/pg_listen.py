"""Hear other processes on PostgreSQL: a ``LISTEN`` connection per channel and store.

Writers send ``pg_notify`` in the transaction that makes a run claimable (``store.wakeup``);
``wakeup_listener`` holds its own autocommit connection listening on the schema's wake-up
channel and hands each notification to the store's wake-up hub (the live-event channel,
``store.pg_live``, uses the same ``PgListener``). When the connection drops (a server restart,
a killed backend) it logs one WARNING, reconnects with backoff, logs one INFO once back, and
calls ``missed`` then: for wake-ups every subscriber is woken, since what was announced
meanwhile was missed (the runtimes' polls covered the gap).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

import psycopg

from tether.store.wakeup import Wakeup, parse_payload

log = logging.getLogger("tether.store")

BACKOFF = (0.05, 2.0)
"""First and longest pause between reconnection attempts (seconds)."""


class PgListener:
    """A background task handing each NOTIFY payload on ``channel`` to ``heard``, and telling
    ``missed`` when it is back after a lost connection (what was sent meanwhile is gone);
    ``what`` names the channel in its log lines, ``meanwhile`` what happens while it is down."""

    def __init__(
        self,
        dsn: str,
        channel: str,
        connect_timeout: float,
        *,
        heard: Callable[[str], None],
        missed: Callable[[], None],
        what: str,
        meanwhile: str,
    ) -> None:
        self.dsn = dsn
        self.channel = channel
        self.connect_timeout = connect_timeout
        self.heard = heard
        self.missed = missed
        self.what = what
        self.meanwhile = meanwhile
        self.listening = asyncio.Event()
        """Set while the LISTEN connection is up (tests and the bench wait on it)."""
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(
                self._run(), name=f"tether-listen-{self.channel}"
            )

    async def close(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    async def _run(self) -> None:
        pause, down = BACKOFF[0], False
        while True:
            try:
                conn = await psycopg.AsyncConnection.connect(
                    self.dsn, autocommit=True, connect_timeout=max(1, int(self.connect_timeout))
                )
                async with conn:
                    await conn.execute(f'LISTEN "{self.channel}"')
                    self.listening.set()
                    if down:
                        log.info("%s LISTEN on %s is back", self.what, self.channel)
                        down = False
                        self.missed()
                    pause = BACKOFF[0]
                    async for note in conn.notifies():
                        self.heard(note.payload)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.listening.clear()
                if not down:
                    log.warning(
                        "%s LISTEN on %s lost (%s); %s",
                        self.what,
                        self.channel,
                        str(exc).strip().splitlines()[0]
                        if str(exc).strip()
                        else type(exc).__name__,
                        self.meanwhile,
                    )
                    down = True
            self.listening.clear()
            await asyncio.sleep(pause)
            pause = min(pause * 2, BACKOFF[1])


def wakeup_listener(dsn: str, channel: str, hub: Wakeup, connect_timeout: float) -> PgListener:
    """The LISTEN connection relaying other processes' wake-ups to ``hub``."""

    def heard(text: str) -> None:
        hub.notify(*parse_payload(text))

    def missed() -> None:  # missed meanwhile: every runtime claims
        hub.notify("", 0.0)

    return PgListener(
        dsn,
        channel,
        connect_timeout,
        heard=heard,
        missed=missed,
        what="wake-up",
        meanwhile="runtimes poll until it is back",
    )
