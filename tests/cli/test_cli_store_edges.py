"""A ``--store`` that names no tether store is refused with what is wrong and how to write it:
a SQLite URL a slash short, a directory, a file that is not SQLite, another application's
database (which a read command must not give tether's tables); and times no date can show are
refused by every ``--since``/``--older-than`` (``audit list --since`` takes durations too)."""

from __future__ import annotations

import argparse
import sqlite3
from pathlib import Path

import pytest

from tests.cli.conftest import Cli, Populated, run_cli
from tests.cli.test_cli import assert_user_error
from tether.cli.argtypes import when
from tether.cli.store_check import check_store_url, sqlite_path
from tether.core.errors import ConfigurationError


@pytest.mark.parametrize(
    ("url", "meant"),
    [
        ("sqlite:/x.db", "sqlite:///x.db"),
        ("sqlite:x.db", "sqlite:///x.db"),
        ("sqlite:/tmp/runs.db", "sqlite:////tmp/runs.db"),
    ],
)
def test_a_sqlite_url_a_slash_short_says_which_url_was_meant(url: str, meant: str) -> None:
    assert sqlite_path(url) is None  # not a bare file path named "sqlite:/x.db"
    with pytest.raises(ConfigurationError, match="malformed SQLite URL") as err:
        check_store_url(url, "--store")
    assert meant in str(err.value)


def test_a_directory_is_named_as_one(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="names a directory, not a database file"):
        check_store_url(f"sqlite:///{tmp_path}", "--store")


def test_a_file_that_is_not_sqlite(tmp_path: Path) -> None:
    (tmp_path / "notes.db").write_text("hello\n")
    with pytest.raises(ConfigurationError, match="is not a SQLite database"):
        check_store_url(str(tmp_path / "notes.db"), "TETHER_STORE")


def test_another_applications_database_is_refused_and_left_untouched(tmp_path: Path) -> None:
    path = tmp_path / "app.db"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE users (id INTEGER)")
    db.close()
    for args in (("runs", "list"), ("queues",), ("runs", "show", "r1")):
        res = run_cli(*args, "--store", f"sqlite:///{path}", store=None)
        assert_user_error(res, "not a tether store", "users", "tether migrate")
    with sqlite3.connect(path) as db:
        tables = {n for (n,) in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    db.close()
    assert tables == {"users"}  # no tether table was added by a read command


def test_a_tether_store_and_an_empty_file_pass(store: Populated, tmp_path: Path) -> None:
    check_store_url(store.url, "--store")
    (tmp_path / "empty.db").touch()
    check_store_url(str(tmp_path / "empty.db"), "--store")
    check_store_url("sqlite:///:memory:", "--store")


@pytest.mark.parametrize("text", ["999999999999d", "1e18", "-1e15"])
def test_a_time_no_date_can_show_is_a_usage_error(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError, match="out of range"):
        when(text)


def test_purge_refuses_an_out_of_range_time_before_deleting(cli: Cli) -> None:
    res = cli("runs", "purge", "--older-than", "999999999999d")
    assert res.rc == 2 and "Traceback" not in res.err and "unexpected" not in res.err
    assert "out of range" in res.err


def test_audit_list_since_takes_a_duration(cli: Cli) -> None:
    res = cli("audit", "list", "--since", "24h", "--json")
    assert res.rc == 0, res.err
    assert res.json() == []
