"""Transient store errors: which to retry in place, for how long, and one log line per outage.

A database restart or failover drops every open connection (``AdminShutdown``, ``57P01``) and
refuses new ones for a moment. Such an error says nothing about the operation itself: the same
statement on a fresh connection a moment later succeeds. So a store retries it where it failed,
with jittered exponential backoff (``StoreRetry``: 0.05 s doubling to 1 s, computed by the
project's one wait rule, ``core.backoff.Backoff``), instead of failing
the run and leaving it stalled until its lease expires and another worker recovers it.

Only errors that mean "the server could not be reached or went away" are transient; an error the
server raised about the statement (a constraint, the fence, bad SQL) is not, and is raised at
once. ``OutageLog`` turns any number of failed attempts into one WARNING when the store becomes
unreachable and one INFO line when it answers again.

This module imports no driver: it recognises psycopg's errors only once psycopg is loaded (a
process that never imported it cannot have raised one), so the graph layer may use it freely.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import time
from dataclasses import dataclass

from tether.core.backoff import Backoff
from tether.core.errors import StoreFileLostError

TRANSIENT_SQLSTATES = frozenset(
    {
        "57P01",  # admin_shutdown: the server is stopping (or terminated this backend)
        "57P02",  # crash_shutdown: another backend crashed, the server restarts
        "57P03",  # cannot_connect_now: the server is starting up or shutting down
        "53300",  # too_many_connections: a slot frees up soon
    }
)
"""SQLSTATEs that mean "try again on a fresh connection"; any class 08 (connection) state too."""


def is_transient(exc: BaseException) -> bool:
    """True when ``exc`` says the store could not be reached or dropped the connection, so the
    same operation on a fresh connection may succeed (and nothing about it was wrong)."""
    pg = sys.modules.get("psycopg")
    if pg is None or not isinstance(exc, pg.OperationalError):
        return False
    state: str | None = exc.sqlstate
    # no SQLSTATE: libpq's own failures (connection refused, server closed the connection,
    # the connection is closed); they never come from a statement the server judged
    return state is None or state.startswith("08") or state in TRANSIENT_SQLSTATES


SQLITE_UNAVAILABLE = frozenset(
    {
        5,  # SQLITE_BUSY: another connection held the lock past busy_timeout
        6,  # SQLITE_LOCKED
        8,  # SQLITE_READONLY: the file (or its directory) cannot be written now
        10,  # SQLITE_IOERR: the disk failed a read or a write
        13,  # SQLITE_FULL: database or disk is full
        14,  # SQLITE_CANTOPEN
    }
)
"""Primary SQLite result codes that say the file cannot be used now, whatever was asked."""


def unavailable(exc: BaseException) -> bool:
    """True when ``exc`` says the store cannot serve now for a reason of its own, not of the
    operation asked: unreachable (``is_transient``, once the store's retries gave up), or a
    SQLite file that cannot be written or read now (a full disk, an I/O error, a lock held past
    ``busy_timeout``, a read-only file, the file deleted under the store). HTTP answers it
    503; the same operation may go through later, unchanged (a deleted file: once an operator
    put it back). The error itself or the one it was raised from."""
    for err in (exc, exc.__cause__):
        if err is None:
            continue
        if is_transient(err) or isinstance(err, StoreFileLostError):
            return True
        lite = sys.modules.get("sqlite3")
        if lite is not None and isinstance(err, lite.OperationalError):
            code = getattr(err, "sqlite_errorcode", None)
            if isinstance(code, int) and code & 0xFF in SQLITE_UNAVAILABLE:
                return True
    return False


def store_outage(exc: BaseException) -> bool:
    """True when ``exc`` is ``unavailable`` and was raised by tether's store (a frame of
    ``tether.store`` in its traceback): the run's store cannot serve now, which no retry of the
    run can cure and nothing about the run caused. A node's own database failing the same way
    (an SQLite file of the application's on a full disk) is the node's error, not this."""
    if not unavailable(exc):
        return False
    for err in (exc, exc.__cause__):
        tb = None if err is None else err.__traceback__
        while tb is not None:
            if str(tb.tb_frame.f_globals.get("__name__", "")).startswith("tether.store."):
                return True
            tb = tb.tb_next
    return isinstance(exc, StoreFileLostError)


def spares_run(exc: BaseException, recover: bool) -> bool:
    """True when a run that met ``exc`` is left ACTIVE rather than failed: its store cannot
    serve (``store_outage``) and either the runtime recovers runs (it resumes this one once
    its lease expired) or the store is unreachable (the failure could not be recorded anyway,
    and any recovering runtime resumes it later). A full SQLite disk under ``recover=False``
    fails the run: nothing in that runtime would ever resume it."""
    if not store_outage(exc):
        return False
    return recover or any(is_transient(e) for e in (exc, exc.__cause__) if e is not None)


def first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}".rstrip(": ")


@dataclass(frozen=True)
class StoreRetry:
    """How a store retries a transient error in place: ``first`` seconds, doubling up to
    ``cap``, each pause jittered down to half ("equal" jitter: never a busy loop); after
    ``give_up_after`` seconds of failures the error is raised (``give_up_after=0``: never
    retry). Bounded by time, not attempts: an outage lasts as long as it lasts."""

    first: float = 0.05
    cap: float = 1.0
    give_up_after: float = 30.0

    @property
    def backoff(self) -> Backoff:
        return Backoff(
            initial_interval=self.first, max_interval=self.cap, jitter="equal", owner="StoreRetry"
        )

    def start(self, outage: OutageLog | None = None) -> Retry:
        return Retry(self, outage)


NO_RETRY = StoreRetry(give_up_after=0.0)


class Retry:
    """The retries of one operation: ``if not await retry.pause(exc): raise``."""

    __slots__ = ("_backoff", "_outage", "_policy", "_started", "attempts")

    def __init__(self, policy: StoreRetry, outage: OutageLog | None) -> None:
        self._policy = policy
        self._backoff = policy.backoff
        self._outage = outage
        self._started = time.monotonic()
        self.attempts = 0

    async def pause(self, exc: BaseException) -> bool:
        """False when ``exc`` is not transient or the policy gave up: the caller raises it.
        Otherwise notes the outage, sleeps the next backoff and returns True: try again."""
        if not is_transient(exc):
            return False
        if self._outage is not None:
            self._outage.down(exc)
        elapsed = time.monotonic() - self._started
        limit = self._policy.give_up_after
        if elapsed >= limit:
            if self.attempts:
                exc.add_note(
                    f"gave up after {self.attempts} retries in {elapsed:.1f} s: the store stayed "
                    f"unreachable longer than retry_for={limit:g}s"
                )
            return False
        self.attempts += 1
        await asyncio.sleep(min(self._backoff.backoff(self.attempts), limit - elapsed))
        return True


class OutageLog:
    """One WARNING when ``what`` becomes unreachable, one INFO when it answers again, however
    many operations fail in between (each failure calls ``down``, each success ``up`` with the
    ``time.monotonic()`` it started at). ``meanwhile`` ends the WARNING: what goes on meanwhile.

    A restart flaps: while the server shuts down and starts up, some sessions are answered while
    others are refused ("shutting down", "starting up"). So an operation that was under way when
    the outage was noticed does not end it, and failures within ``settle`` seconds of the server
    answering again belong to the same outage: logged at DEBUG, not as a new one."""

    __slots__ = (
        "_log",
        "_meanwhile",
        "_quiet",
        "_up_at",
        "_what",
        "down_since",
        "outages",
        "settle",
    )

    def __init__(
        self, log: logging.Logger, what: str, meanwhile: str, *, settle: float = 5.0
    ) -> None:
        self._log = log
        self._what = what
        self._meanwhile = meanwhile
        self.settle = settle
        self.down_since: float | None = None
        self.outages = 0
        """Outages logged so far (tests wait on it)."""
        self._up_at: float | None = None
        self._quiet = False

    def down(self, exc: BaseException) -> None:
        if self.down_since is not None:
            return
        now = self.down_since = time.monotonic()
        self._quiet = self._up_at is not None and now - self._up_at < self.settle
        if self._quiet:  # the outage just logged flaps on
            self._log.debug("%s unreachable again (%s)", self._what, first_line(exc))
            return
        self.outages += 1
        self._log.warning("%s unreachable (%s); %s", self._what, first_line(exc), self._meanwhile)

    def up(self, started: float) -> None:
        since = self.down_since
        if since is None or started < since:
            return
        now = self._up_at = time.monotonic()
        self.down_since = None
        if not self._quiet:
            self._log.info("%s reachable again after %.1f s", self._what, now - since)
