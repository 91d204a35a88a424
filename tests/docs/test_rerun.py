"""A documentation program that keeps a store in a file runs again, as written, in the same
directory: a reader runs an example twice (after editing it, or to see it again) and finds the
first run's records there (the run an idempotency key names, a worker's registry row, the API
keys that now make the server ask for one, the audit records). The README's order example then
resumed a COMPLETED run (RunStateError), getting-started's crash example read exit code 0 as a
signal, and the workers, server and from-LangGraph pages' examples tripped over their first run.
"""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from tests.docs.blocks import Program
from tests.docs.test_blocks import PROGRAMS, _report, run_marked

REPORTED: dict[tuple[str, str], str] = {}
"""Programs of other pages known to fail a second run, as reported to those pages' owners:
each is expected to fail (strictly: fixing it makes this test say to remove the entry)."""


def _keeps_a_store_file(program: Program) -> bool:
    source = program.source()
    return "sqlite:///" in source or ".db" in source


def _param(program: Program) -> object:
    page = str(program.blocks[0].where).rsplit(":", 1)[0]
    for (where, line), why in REPORTED.items():
        if page == where and line in program.source():
            return pytest.param(program, marks=pytest.mark.xfail(strict=True, reason=why))
    return program


AGAIN = [p for p in PROGRAMS if _keeps_a_store_file(p)]


def test_the_programs_that_keep_a_store_are_found() -> None:
    pages = {p.blocks[0].path.name for p in AGAIN}
    assert {"README.md", "getting-started.md", "graph.md", "server.md", "workers.md"} <= pages


@pytest.mark.timeout(900)
@pytest.mark.parametrize("program", [_param(p) for p in AGAIN], ids=[p.where for p in AGAIN])
def test_documentation_block_runs_again_in_the_same_directory(
    program: Program, tmp_path: Path
) -> None:
    for attempt in ("first", "second"):
        proc, _ = run_marked(program, tmp_path)
        if proc.returncode != 0:
            how = (
                f"was killed by {signal.Signals(-proc.returncode).name}"
                if proc.returncode < 0
                else f"exited with {proc.returncode}"
            )
            why = f"{how} when run a {attempt} time in the same directory"
            pytest.fail(_report(program, proc, why), pytrace=False)
