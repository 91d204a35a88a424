"""Which store errors are retried in place, and the one-line-per-outage log (no server)."""

from __future__ import annotations

import logging
import sqlite3
import time

import pytest

from tether.store.transient import OutageLog, StoreRetry, is_transient

psycopg = pytest.importorskip("psycopg")
errors = psycopg.errors


@pytest.mark.parametrize(
    "exc",
    [
        psycopg.OperationalError("connection failed: No such file or directory"),
        psycopg.OperationalError("server closed the connection unexpectedly"),
        errors.AdminShutdown("terminating connection due to administrator command"),
        errors.CrashShutdown("another server process exited abnormally"),
        errors.CannotConnectNow("the database system is starting up"),
        errors.TooManyConnections("sorry, too many clients already"),
        errors.lookup("08006")("connection failure"),
    ],
)
def test_connection_loss_is_transient(exc: Exception) -> None:
    assert is_transient(exc)


@pytest.mark.parametrize(
    "exc",
    [
        errors.QueryCanceled("canceling statement due to statement timeout"),
        errors.UniqueViolation("duplicate key"),
        errors.UndefinedTable("relation does not exist"),
        sqlite3.OperationalError("database is locked"),
        ValueError("not a store error"),
    ],
)
def test_what_the_server_said_about_the_statement_is_not(exc: Exception) -> None:
    assert not is_transient(exc)


async def test_retries_log_one_warning_per_outage_and_give_up_when_told(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="t")
    outage = OutageLog(logging.getLogger("t"), "the db", "retrying", settle=0.0)
    down = psycopg.OperationalError("server closed the connection unexpectedly")
    retry = StoreRetry(first=0.001, cap=0.002, give_up_after=60).start(outage)
    assert [await retry.pause(down) for _ in range(3)] == [True, True, True]
    assert not await retry.pause(ValueError("bad input"))  # never retried
    outage.up(started=0.0)  # under way before the outage was noticed: proves nothing
    outage.up(time.monotonic())
    outage.up(time.monotonic())  # no outage now: nothing to say
    assert not await StoreRetry(give_up_after=0).start(outage).pause(down)  # gives up at once
    outage.up(time.monotonic())
    assert [(r.levelname, r.getMessage()) for r in caplog.records] == [
        (
            "WARNING",
            "the db unreachable (OperationalError: server closed the connection "
            "unexpectedly); retrying",
        ),
        ("INFO", caplog.records[1].getMessage()),
        (
            "WARNING",
            "the db unreachable (OperationalError: server closed the connection "
            "unexpectedly); retrying",
        ),
        ("INFO", caplog.records[3].getMessage()),
    ]
    assert caplog.records[1].getMessage().startswith("the db reachable again after ")
    assert outage.outages == 2 and retry.attempts == 3


def test_a_flapping_server_is_one_outage(caplog: pytest.LogCaptureFixture) -> None:
    """Refused, answered, refused again ("starting up"), answered: within ``settle`` seconds
    that is one restart, one WARNING and one INFO."""
    caplog.set_level(logging.INFO, logger="t")
    outage = OutageLog(logging.getLogger("t"), "the db", "retrying", settle=3600)
    for _ in range(3):
        outage.down(psycopg.OperationalError("the database system is starting up"))
        outage.up(time.monotonic())
    assert [r.levelname for r in caplog.records] == ["WARNING", "INFO"]
    assert outage.outages == 1 and outage.down_since is None


async def test_giving_up_says_why_on_the_error() -> None:
    exc = psycopg.OperationalError("connection refused")
    retry = StoreRetry(first=0.001, cap=0.002, give_up_after=0.02).start()
    while await retry.pause(exc):
        pass
    assert retry.attempts >= 1
    assert exc.__notes__[-1].startswith(f"gave up after {retry.attempts} retries in ")
    assert exc.__notes__[-1].endswith("unreachable longer than retry_for=0.02s")


def _sqlite_error(code: int, text: str) -> sqlite3.OperationalError:
    exc = sqlite3.OperationalError(text)
    exc.sqlite_errorcode = code  # as the driver sets it
    return exc


def test_what_makes_a_store_unavailable_now() -> None:
    """``unavailable``: the store cannot serve whatever is asked (HTTP 503), as opposed to an
    error about the operation itself."""
    from tether.core.errors import StoreFileLostError
    from tether.store.transient import unavailable

    for code, text in [
        (13, "database or disk is full"),
        (10 | (3 << 8), "disk I/O error"),  # SQLITE_IOERR_WRITE: extended codes count
        (5, "database is locked"),
        (8, "attempt to write a readonly database"),
        (14, "unable to open database file"),
    ]:
        assert unavailable(_sqlite_error(code, text)), text
    assert unavailable(psycopg.OperationalError("server closed the connection unexpectedly"))
    assert unavailable(StoreFileLostError("the database file was deleted"))
    wrapped = RuntimeError("memory store: database or disk is full")
    wrapped.__cause__ = _sqlite_error(13, "database or disk is full")
    assert unavailable(wrapped)
    for exc in [
        _sqlite_error(1, "no such table: tether_runs"),
        _sqlite_error(11, "database disk image is malformed"),
        sqlite3.OperationalError("database or disk is full"),  # no code: not the driver's
        sqlite3.IntegrityError("UNIQUE constraint failed"),
        errors.lookup("57014")("canceling statement due to statement timeout"),
        ValueError("bad input"),
    ]:
        assert not unavailable(exc), exc
