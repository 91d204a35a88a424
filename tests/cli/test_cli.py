"""The ``tether`` command, run as a real subprocess against a SQLite store."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tether import RunResult, RunStatus, Runtime
from tether.core.refs import load_ref
from tether.store.sqlite import SqliteStore

from .conftest import APP, Cli, Populated, Result, run_cli

INTERRUPT_ID = "2:review:0#0"


def assert_user_error(res: Result, *needles: str) -> None:
    """Exit 2, nothing on stdout, exactly one ``error:`` line on stderr, no traceback."""
    assert res.rc == 2, (res.rc, res.out, res.err)
    assert res.out == ""
    lines = res.err.strip().splitlines()
    assert len(lines) == 1, res.err
    assert lines[0].startswith("error: "), res.err
    assert "Traceback" not in res.err
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])


# -- version ---------------------------------------------------------------------------------
def test_version() -> None:
    res = run_cli("version", store=None)
    assert res.rc == 0, res.err
    assert res.out.strip() == "tether 0.1.0"
    res = run_cli("version", "--json", store=None)
    assert res.rc == 0
    assert res.json() == {"name": "tether", "version": "0.1.0"}
    # global options work before the command too
    assert run_cli("--json", "version", store=None).json()["version"] == "0.1.0"


def test_installed_script(store: Populated) -> None:
    script = Path(__file__).resolve().parents[2] / ".venv" / "bin" / "tether"
    if not script.exists():
        pytest.skip("no installed tether script")
    import subprocess

    proc = subprocess.run(
        [str(script), "--store", store.url, "runs", "list", "--json"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert {r["run_id"] for r in __import__("json").loads(proc.stdout)} >= {store.escalated}


# -- list ----------------------------------------------------------------------------------------
def test_list_table(cli: Cli, store: Populated) -> None:
    res = cli("runs", "list")
    assert res.rc == 0, res.err
    header = res.out.splitlines()[0]
    for col in ("RUN ID", "WORKFLOW", "STATUS", "STEP", "CREATED", "UPDATED", "PARENT"):
        assert col in header
    rows = {line.split()[0]: line for line in res.out.splitlines()[2:] if line.strip()}
    assert set(rows) == {store.escalated, store.completed, store.failed, store.importable}
    assert "ESCALATED" in rows[store.escalated] and "cli_example" in rows[store.escalated]
    assert "COMPLETED" in rows[store.completed]
    assert "FAILED" in rows[store.failed] and "cli_flaky" in rows[store.failed]
    assert "\x1b[" not in res.out  # no colour codes when stdout is not a terminal


def test_list_filters_and_json(cli: Cli, store: Populated) -> None:
    res = cli("runs", "list", "--json")
    assert res.rc == 0, res.err
    runs = res.json()
    assert isinstance(runs, list) and len(runs) == 4
    by_id = {r["run_id"]: r for r in runs}
    assert by_id[store.escalated]["status"] == "ESCALATED"
    assert by_id[store.escalated]["workflow"] == "cli_example"
    assert by_id[store.escalated]["escalation"]["interrupts"][0]["id"] == INTERRUPT_ID

    only = cli("runs", "list", "--status", "escalated", "--json").json()
    assert {r["run_id"] for r in only} == {store.escalated, store.importable}
    both = cli("runs", "list", "--status", "FAILED,completed", "--json").json()
    assert {r["run_id"] for r in both} == {store.failed, store.completed}
    flaky = cli("runs", "list", "--workflow", "cli_flaky", "--json").json()
    assert [r["run_id"] for r in flaky] == [store.failed]
    assert len(cli("runs", "list", "--limit", "2", "--json").json()) == 2

    empty = cli("runs", "list", "--workflow", "nope")
    assert empty.rc == 0 and empty.out == ""
    assert "no runs" in empty.err


def test_list_near_miss_flags_are_usage_errors(cli: Cli) -> None:
    """``--workflow ""`` or ``--thread ""`` (an unset shell variable) matched no run and
    ``--status ""`` listed runs of every status: each is now an error saying so."""
    for args, said in [
        (("--workflow", ""), "argument --workflow: expected a name, got an empty one"),
        (("--workflow", "cli_flaky "), "has spaces around it; no name has: use 'cli_flaky'"),
        (("--thread", ""), "argument --thread: expected a name, got an empty one"),
        (("--status", ""), "--status was given no status; use one of RECEIVED"),
        (("--status", ","), "--status was given no status"),
        (("--status", "bogus"), "unknown run status 'bogus'"),
        (("--limit", "-1"), "argument --limit: must be >= 1"),
    ]:
        res = cli("runs", "list", *args)
        assert res.rc != 0 and res.out == "", (args, res)
        assert said in res.err, (args, res.err)


# -- show ----------------------------------------------------------------------------------------
def test_show_pending_interrupt(cli: Cli, store: Populated) -> None:
    res = cli("runs", "show", store.escalated)
    assert res.rc == 0, res.err
    out = res.out
    assert store.escalated in out
    assert "ESCALATED" in out
    assert "waiting for human input at review" in out
    assert INTERRUPT_ID in out
    assert "publish this draft?" in out  # the interrupt payload
    assert "state after step 1" in out
    assert '"draft": "a post about cats"' in out
    assert "lease" in out and "none" in out

    data = cli("runs", "show", store.escalated, "--json").json()
    assert data["run"]["run_id"] == store.escalated
    assert data["run"]["status"] == "ESCALATED"
    [item] = data["run"]["escalation"]["interrupts"]
    assert item["id"] == INTERRUPT_ID
    assert item["payload"]["question"] == "publish this draft?"
    assert data["step"] == 1
    assert data["state"] == {"topic": "cats", "draft": "a post about cats", "log": ["drafted"]}


def test_show_at_step_and_error(cli: Cli, store: Populated) -> None:
    data = cli("runs", "show", store.completed, "--step", "0", "--json").json()
    assert data["step"] == 0
    assert data["state"] == {"topic": "dogs", "log": []}
    last = cli("runs", "show", store.completed, "--json").json()
    assert last["state"]["log"] == ["drafted", "reviewed: True", "published"]

    res = cli("runs", "show", store.failed)
    assert res.rc == 0, res.err
    assert "FAILED" in res.out
    assert "RuntimeError: flaky node failed on purpose" in res.out


# -- history -------------------------------------------------------------------------------------
def test_history(cli: Cli, store: Populated) -> None:
    res = cli("runs", "history", store.completed)
    assert res.rc == 0, res.err
    steps_part, _, lifecycle_part = res.out.partition("lifecycle")
    step_rows = {ln.split()[0]: ln for ln in steps_part.splitlines() if ln.strip()[:1].isdigit()}
    assert sorted(step_rows) == ["0", "1", "2", "3"]
    assert "draft" in step_rows["1"] and "log" in step_rows["1"] and "review" in step_rows["1"]
    assert "approved" in step_rows["2"] and "publish" in step_rows["2"]
    assert "yes" in step_rows["0"]  # step 0 is a snapshot
    assert "ESCALATED" in lifecycle_part and "COMPLETED" in lifecycle_part
    assert "waiting for human input at review" in lifecycle_part
    assert "answered" in lifecycle_part

    data = cli("runs", "history", store.completed, "--json").json()
    assert data["run_id"] == store.completed
    assert [s["step"] for s in data["steps"]] == [0, 1, 2, 3]
    assert data["steps"][1]["nodes"] == ["draft"]
    assert data["steps"][1]["written_keys"] == ["draft", "log"]
    assert data["steps"][1]["next_nodes"] == ["review"]
    assert data["steps"][0]["snapshot"] is True
    moves = [(t["src"], t["dst"]) for t in data["transitions"]]
    assert moves[0] == (None, "RECEIVED")
    assert ("EXECUTING", "ESCALATED") in moves
    assert ("ESCALATED", "EXECUTING") in moves
    assert moves[-1][1] == "COMPLETED"
    assert all({"actor", "reason", "ts", "seq"} <= set(t) for t in data["transitions"])


# -- resume --------------------------------------------------------------------------------------
def test_resume_with_value_completes(cli: Cli, store: Populated) -> None:
    res = cli("runs", "resume", store.escalated, "--value", "true", "--app", APP)
    assert res.rc == 0, res.err
    assert "COMPLETED" in res.out
    assert "ESCALATED" in res.out  # the status it came from

    data = cli("runs", "show", store.escalated, "--json").json()
    assert data["run"]["status"] == "COMPLETED"
    assert data["state"]["approved"] is True
    assert data["state"]["log"] == ["drafted", "reviewed: True", "published"]

    hist = cli("runs", "history", store.escalated, "--json").json()
    answered = [t for t in hist["transitions"] if t["src"] == "ESCALATED"]
    assert answered and answered[0]["actor"].startswith("cli")

    # resuming a COMPLETED run is a user error
    again = cli("runs", "resume", store.escalated, "--value", "true", "--app", APP)
    assert_user_error(again, "COMPLETED")


def test_resume_answer_by_id_json(cli: Cli, store: Populated) -> None:
    res = cli(
        "runs",
        "resume",
        store.escalated,
        "--answer",
        f"{INTERRUPT_ID}=false",
        "--app",
        APP,
        "--json",
    )
    assert res.rc == 0, res.err
    data = res.json()
    assert data["run_id"] == store.escalated
    assert data["previous_status"] == "ESCALATED"
    assert data["status"] == "COMPLETED"
    assert data["state"]["approved"] is False
    assert data["state"]["log"][-1] == "discarded"


def test_resume_uses_the_stored_workflow_ref(cli: Cli, store: Populated) -> None:
    # the run's workflow ref (tests.cli.app_example:wf) imports from the repo root: no --app
    res = cli("runs", "resume", store.importable, "--value", '"ok"', "--json")
    assert res.rc == 0, res.err
    assert res.json()["status"] == "COMPLETED"


def test_resume_needs_app_when_ref_unimportable(cli: Cli, store: Populated) -> None:
    res = cli("runs", "resume", store.escalated, "--value", "true")
    assert_user_error(res, "--app")
    # nothing changed
    assert cli("runs", "show", store.escalated, "--json").json()["run"]["status"] == "ESCALATED"


def test_resume_app_from_env(cli: Cli, store: Populated) -> None:
    res = cli("runs", "resume", store.escalated, "--value", "true", env={"TETHER_APP": APP})
    assert res.rc == 0, res.err
    assert "COMPLETED" in res.out


def test_resume_without_value_or_with_wrong_answer(cli: Cli, store: Populated) -> None:
    assert_user_error(cli("runs", "resume", store.escalated, "--app", APP), INTERRUPT_ID)
    assert_user_error(
        cli("runs", "resume", store.escalated, "--answer", "nope=1", "--app", APP), "nope"
    )


def test_resume_failed_run_retries(cli: Cli, store: Populated) -> None:
    res = cli("runs", "resume", store.failed, "--app", APP, "--json")
    assert res.rc == 0, res.err
    data = res.json()
    assert data["previous_status"] == "FAILED"
    assert data["status"] == "COMPLETED"
    assert data["state"] == {"n": 2}
    assert data["run"]["error"] is None


def test_resume_failing_again_reports_failed(cli: Cli, store: Populated) -> None:
    res = cli("runs", "resume", store.failed, "--app", APP, env={"CLI_EXAMPLE_FAIL": "1"})
    assert res.rc == 0, res.err
    assert "FAILED" in res.out
    assert "flaky node failed on purpose" in res.out
    assert "Traceback" not in res.out + res.err


async def test_resume_no_wait_leaves_run_to_workers(cli: Cli, store: Populated) -> None:
    res = cli(
        "runs", "resume", store.escalated, "--value", "true", "--no-wait", "--app", APP, "--json"
    )
    assert res.rc == 0, res.err
    data = res.json()
    assert data["waited"] is False
    assert data["status"] == "EXECUTING"
    assert data["run"]["owner"] is None  # released: any worker may claim it
    # a worker that knows the workflow picks it up and finishes it
    wf, flaky = load_ref(APP)
    async with Runtime(SqliteStore(store.path), workflows=[wf, flaky], poll_interval=0.05) as rt:
        result = await asyncio.wait_for(_settled(rt, store.escalated), 30)
    assert result.status is RunStatus.COMPLETED
    assert result.state["approved"] is True


async def _settled(rt: Runtime, run_id: str) -> RunResult:
    while True:
        rec = await rt.get_run(run_id)
        if rec.status is RunStatus.COMPLETED:
            return await rt.wait(run_id)
        await asyncio.sleep(0.05)


# -- fork ----------------------------------------------------------------------------------------
def test_fork_with_patch(cli: Cli, store: Populated) -> None:
    res = cli(
        "runs",
        "fork",
        store.escalated,
        "--step",
        "1",
        "--patch",
        '{"topic": "birds"}',
        "--app",
        APP,
    )
    assert res.rc == 0, res.err
    child = res.out.splitlines()[0].strip()
    assert child and child != store.escalated
    assert "ESCALATED" in res.out  # it ran to the same interrupt

    shown = cli("runs", "show", child, "--json").json()
    assert shown["run"]["parent_run_id"] == store.escalated
    assert shown["run"]["parent_step"] == 1
    assert shown["state"]["topic"] == "birds"
    assert shown["state"]["draft"] == "a post about cats"  # from the parent's step 1
    parent = cli("runs", "show", store.escalated)
    assert child in parent.out  # listed among the parent's forks
    table = cli("runs", "list").out
    [row] = [ln for ln in table.splitlines() if ln.startswith(child)]
    assert row.split()[-1] == store.escalated  # the PARENT column
    # the parent is untouched
    assert cli("runs", "show", store.escalated, "--json").json()["state"]["topic"] == "cats"


def test_fork_json_and_no_wait(cli: Cli, store: Populated) -> None:
    res = cli(
        "runs",
        "fork",
        store.completed,
        "--step",
        "2",
        "--patch",
        '{"approved": false}',
        "--app",
        APP,
        "--json",
    )
    assert res.rc == 0, res.err
    data = res.json()
    assert data["parent_run_id"] == store.completed and data["parent_step"] == 2
    assert data["status"] == "COMPLETED"
    assert data["state"]["log"][-1] == "discarded"

    queued = cli(
        "runs", "fork", store.completed, "--step", "1", "--no-wait", "--app", APP, "--json"
    ).json()
    assert queued["waited"] is False
    assert queued["status"] == "PLANNED"
    assert queued["run"]["owner"] is None


def test_fork_errors(cli: Cli, store: Populated) -> None:
    assert_user_error(cli("runs", "fork", store.escalated, "--step", "9", "--app", APP), "step 9")
    assert_user_error(
        cli("runs", "fork", store.escalated, "--step", "1", "--patch", '{"nope": 1}', "--app", APP),
        "nope",
    )
    assert_user_error(
        cli("runs", "fork", store.escalated, "--step", "1", "--patch", "[1, 2]", "--app", APP),
        "JSON object",
    )


# -- cancel --------------------------------------------------------------------------------------
def test_cancel(cli: Cli, store: Populated) -> None:
    res = cli("runs", "cancel", store.escalated, "--reason", "not needed")
    assert res.rc == 0, res.err
    assert "CANCELLED" in res.out
    hist = cli("runs", "history", store.escalated, "--json").json()
    last = hist["transitions"][-1]
    assert (last["src"], last["dst"], last["reason"]) == ("ESCALATED", "CANCELLED", "not needed")
    assert last["actor"].startswith("cli")
    assert_user_error(cli("runs", "cancel", store.escalated), "CANCELLED")
    assert_user_error(
        cli("runs", "resume", store.escalated, "--value", "1", "--app", APP), "CANCELLED"
    )


def test_cancel_json(cli: Cli, store: Populated) -> None:
    data = cli("runs", "cancel", store.importable, "--json").json()
    assert data["run_id"] == store.importable
    assert (data["previous_status"], data["status"]) == ("ESCALATED", "CANCELLED")


# -- errors --------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "args",
    [
        ("runs", "show", "no-such-run"),
        ("runs", "history", "no-such-run"),
        ("runs", "resume", "no-such-run", "--value", "1"),
        ("runs", "fork", "no-such-run", "--step", "0"),
        ("runs", "cancel", "no-such-run"),
    ],
)
def test_unknown_run(cli: Cli, args: tuple[str, ...]) -> None:
    assert_user_error(cli(*args), "no-such-run", "not found")
    assert_user_error(cli(*args, "--json"), "not found")


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (("runs", "resume", "RUN", "--value", "{not json"), "--value is not valid JSON"),
        (("runs", "resume", "RUN", "--value", "yes"), "--value is not valid JSON"),
        (("runs", "resume", "RUN", "--answer", "x={"), "not valid JSON"),
        (("runs", "resume", "RUN", "--answer", "novalue"), "ID=JSON"),
        (("runs", "fork", "RUN", "--step", "1", "--patch", "{topic: 1}"), "--patch"),
    ],
)
def test_bad_json(cli: Cli, store: Populated, args: tuple[str, ...], needle: str) -> None:
    args = tuple(store.escalated if a == "RUN" else a for a in args)
    assert_user_error(cli(*args), needle)


@pytest.mark.parametrize(
    "url",
    ["nosuch://x", "not-a-store", "sqlite://relative.db", "sqlite:///x.db?bogus=1"],
)
def test_bad_store_url(url: str) -> None:
    assert_user_error(run_cli("runs", "list", "--store", url, store=None))


def test_missing_store_is_not_created(tmp_path: Path) -> None:
    path = tmp_path / "absent" / "runs.db"
    res = run_cli("runs", "list", store=f"sqlite:///{path}")
    assert_user_error(res, "no tether store", str(path))
    assert not path.exists() and not path.parent.exists()
    # the env var is the default source of the store URL
    res = run_cli("runs", "list", store=None, env={"TETHER_STORE": str(path)})
    assert_user_error(res, "TETHER_STORE")


def test_bad_app(cli: Cli, store: Populated) -> None:
    assert_user_error(
        cli("runs", "show", store.escalated, "--app", "no_such_module:wf"), "no_such_module"
    )
    assert_user_error(cli("runs", "show", store.escalated, "--app", "bad-ref"), "bad-ref")
    state_cls = f"{APP.rpartition(':')[0]}:State"
    assert_user_error(cli("runs", "show", store.escalated, "--app", state_cls), "Workflow")


def test_bad_arguments(cli: Cli) -> None:
    assert_user_error(cli("runs", "list", "--status", "bogus"), "bogus")
    # argparse mistakes: exit 2, usage and one error line, no traceback
    bad: tuple[tuple[str, ...], ...] = (
        (),
        ("runs",),
        ("runs", "list", "--limit", "0"),
        ("runs", "fork", "x"),
        ("runs", "resume", "x", "--value", "1", "--answer", "a=1"),
    )
    for args in bad:
        res = cli(*args)
        assert res.rc == 2, (args, res.err)
        assert "Traceback" not in res.err
        assert [ln for ln in res.err.splitlines() if ln.startswith("error:")]


def test_debug_shows_traceback(cli: Cli) -> None:
    res = cli("runs", "show", "no-such-run", env={"TETHER_DEBUG": "1"})
    assert res.rc == 2
    assert "Traceback" in res.err
    assert res.err.strip().splitlines()[-1].startswith("error: ")


def test_an_argument_that_is_not_utf8_is_a_usage_error(cli: Cli, store: Populated) -> None:
    """A shell passing Latin-1 bytes: Python decodes them to lone surrogates, which no store
    can keep. Before: "unexpected UnicodeEncodeError" and exit 1, as for a bug."""
    latin1 = b"caf\xe9".decode("utf-8", "surrogateescape")  # the child gets the raw bytes
    for args in (("runs", "show", latin1), ("runs", "list", "--workflow", latin1)):
        res = cli(*args)
        assert res.rc == 2, res
        assert res.err.strip() == (
            "error: 'caf\\udce9' is not valid UTF-8 text (an argument in another encoding?); "
            "the store keeps text as UTF-8: pass it as UTF-8"
        )
    assert store.escalated in cli("runs", "list").out  # nothing else changed


def test_no_color(cli: Cli, store: Populated) -> None:
    colored = cli("runs", "list", env={"FORCE_COLOR": "1"})
    assert "\x1b[" in colored.out
    plain = cli("runs", "list", "--no-color", env={"FORCE_COLOR": "1"})
    assert "\x1b[" not in plain.out
    assert store.escalated in plain.out
    err = cli("runs", "show", "nope", "--no-color", env={"FORCE_COLOR": "1"})
    assert "\x1b[" not in err.err


# -- in process: unexpected failures ----------------------------------------------------------
def test_unexpected_error_exit_1(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], store: Populated
) -> None:
    from tether.cli import commands, main

    async def boom(*a: object, **k: object) -> None:
        raise KeyError("internal")

    monkeypatch.setattr(commands, "list_runs", boom)
    monkeypatch.delenv("TETHER_DEBUG", raising=False)
    assert main.main(["--store", store.url, "runs", "list"]) == 1
    err = capsys.readouterr().err
    assert err.strip().splitlines() == [
        "error: unexpected KeyError: 'internal' (set TETHER_DEBUG=1 for the traceback)"
    ]
    monkeypatch.setenv("TETHER_DEBUG", "1")
    assert main.main(["--store", store.url, "runs", "list"]) == 1
    assert "Traceback" in capsys.readouterr().err
