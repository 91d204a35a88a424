"""On a narrow terminal ``tether runs list`` leaves columns out instead of cutting them: the
run ids stay whole (they are what a user copies) and every row still shows its status; and
NO_COLOR, like --no-color, leaves out every escape code."""

from __future__ import annotations

from rich.text import Text

from tests.cli.conftest import Cli, Populated
from tether.cli.fit_table import Column, fitted_table


def test_runs_list_keeps_whole_run_ids_and_statuses_at_40_columns(
    cli: Cli, store: Populated
) -> None:
    res = cli("runs", "list", env={"COLUMNS": "40"})
    assert res.rc == 0, res.err
    lines = res.out.splitlines()
    assert all(len(line) <= 40 for line in lines), res.out
    assert lines[0].split() == ["RUN", "ID", "STATUS"]
    rows = {line.split()[0]: line.split()[1] for line in lines[2:] if line.strip()}
    assert rows == {
        store.escalated: "ESCALATED",
        store.completed: "COMPLETED",
        store.failed: "FAILED",
        store.importable: "ESCALATED",
    }
    assert "…" not in res.out


def test_the_most_useful_columns_that_fit_are_kept() -> None:
    cols = [
        Column("ID", ["a" * 10]),
        Column("WIDE", ["w" * 30], drop=2),
        Column("N", ["7"], drop=1),
        Column("S", [Text("OK")]),
    ]
    headers = [c.header for c in fitted_table(cols, 22).columns]
    assert headers == ["ID", "N", "S"]  # WIDE does not fit; N, less useful, does
    assert [c.header for c in fitted_table(cols, 200).columns] == ["ID", "WIDE", "N", "S"]


def test_no_color_env_prints_no_escape_codes_like_the_flag(cli: Cli, store: Populated) -> None:
    env = {"FORCE_COLOR": "1", "NO_COLOR": "1"}
    plain = cli("runs", "list", env=env)
    assert plain.rc == 0 and store.escalated in plain.out
    assert "\x1b[" not in plain.out  # not even bold headers
    usage = cli("runs", "list", "--limit", "0", env=env)
    assert usage.rc == 2 and "\x1b[" not in usage.err
    err = cli("runs", "show", "nope", env=env)
    assert err.rc == 2 and "\x1b[" not in err.err
