"""``tether runs purge``: finished runs older than a time go, whole families only; dry runs
count; bad times and --server are refused with a message."""

from __future__ import annotations

import argparse
import sqlite3
import time

import pytest

from tests.cli.conftest import Cli, Populated
from tether.cli.argtypes import duration
from tether.cli.main import build_parser


def _age(store: Populated, seconds: float) -> None:
    """Make every run look last updated ``seconds`` ago (the CLI purges by the wall clock)."""
    with sqlite3.connect(store.path) as db:
        db.execute(
            "UPDATE tether_runs SET updated_at = ?, created_at = ?",
            (time.time() - seconds, time.time() - seconds),
        )


def _run_ids(cli: Cli) -> set[str]:
    return {r["run_id"] for r in cli("runs", "list", "--json").json()}


def test_purge_deletes_old_finished_runs_only(cli: Cli, store: Populated) -> None:
    assert cli("runs", "purge", "--older-than", "1d", "--json").json()["runs"] == 0
    _age(store, 3 * 86_400)
    dry = cli("runs", "purge", "--older-than", "2d", "--dry-run", "--json").json()
    assert dry["runs"] == 2 and dry["dry_run"] is True  # the completed and the failed run
    assert {store.completed, store.failed} <= _run_ids(cli)
    res = cli("runs", "purge", "--older-than", "2d")
    assert res.rc == 0, res.err
    assert "purged 2 runs" in res.out
    assert _run_ids(cli) == {store.escalated, store.importable}  # parked runs stay


def test_purge_refuses_bad_times_and_a_server(cli: Cli) -> None:
    res = cli("runs", "purge", "--older-than", "soon")
    assert res.rc == 2 and "--older-than" in res.err
    res = cli("runs", "purge")
    assert res.rc == 2 and "--older-than" in res.err
    future = str(time.time() + 3_600)
    res = cli("runs", "purge", "--older-than", future)
    assert res.rc != 0 and "future" in res.err
    res = cli("runs", "purge", "--older-than", "1d", "--server", "http://127.0.0.1:9")
    assert res.rc != 0 and "works on a store" in res.err


def test_worker_retention_options_parse_durations() -> None:
    parser = build_parser()
    args = parser.parse_args(["worker", "--app", "m:w", "--purge-after", "30d", "--keep-last", "5"])
    assert (args.purge_after, args.keep_last) == (30 * 86_400.0, 5)
    args = parser.parse_args(["worker", "--app", "m:w"])
    assert (args.purge_after, args.keep_last) == (None, None)  # keep every run by default
    assert duration("90s") == 90.0 and duration("2.5") == 2.5 and duration("1w") == 604_800.0
    for bad in ("0", "-3", "soon", "nan", "3x"):
        with pytest.raises(argparse.ArgumentTypeError):
            duration(bad)
