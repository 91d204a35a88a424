"""The shell commands the documentation (README.md, docs/, bench/README.md) shows exist as
written, and the README's first example survives being imported by the ``tether`` command.

* ``tether ...`` lines parse with the CLI's own argument parser (subcommands, flags, values);
* ``make X`` names a target of the Makefile; ``python -m X`` an importable module;
  ``python script.py --flag`` a script of the repository whose ``--help`` lists the flag;
* the README's order workflow, saved as a file, parks on its interrupt in one process and is
  resumed by ``tether runs resume`` in another; the CLI imports the file by the reference stored
  on the run, which must not run the example itself.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from tests.docs.blocks import PYTHON, ROOT, SHELL, Block, all_blocks, doc_files, parse
from tether.cli.main import build_parser

PYTHONS = ("python", "python3", ".venv/bin/python")
PLACEHOLDERS = {"N": "3", "STEP": "3"}
"""Placeholder words of the documented commands that must be a value of the right type."""


def _commands() -> list[tuple[str, list[str]]]:
    found = []
    bench = [b for b in parse(ROOT / "bench" / "README.md") if b.lang in SHELL]
    for block in [*all_blocks(SHELL), *bench]:
        for offset, line in enumerate(block.code.splitlines(), start=1):
            words = shlex.split(line.replace("[", " ").replace("]", " "), comments=True)
            if words:
                found.append((f"{block.where}+{offset}", words))
    return found


COMMANDS = _commands()


def _makefile_targets() -> set[str]:
    text = (ROOT / "Makefile").read_text(encoding="utf-8")
    return set(re.findall(r"^([A-Za-z][\w.-]*)\s*:", text, re.MULTILINE))


@pytest.mark.parametrize(("where", "words"), COMMANDS, ids=[w for w, _ in COMMANDS])
def test_documented_command_exists(where: str, words: list[str]) -> None:
    program, args = words[0], words[1:]
    if program == "tether":
        argv = [PLACEHOLDERS.get(a, a) for a in args]
        try:
            build_parser().parse_args(argv)
        except SystemExit as exc:
            pytest.fail(f"{where}: `tether {shlex.join(args)}` is refused by the CLI ({exc})")
    elif program == "make":
        missing = [t for t in args if not t.startswith("-") and t not in _makefile_targets()]
        assert not missing, f"{where}: no Makefile target {missing}"
    elif program in PYTHONS and args[:1] == ["-m"]:
        assert importlib.util.find_spec(args[1]) is not None, f"{where}: no module {args[1]}"
    elif program in PYTHONS and args and args[0].endswith(".py"):
        script = ROOT / args[0]
        assert script.is_file(), f"{where}: no script {args[0]}"
        usage = subprocess.run(
            [sys.executable, str(script), "--help"], capture_output=True, text=True, timeout=120
        )
        assert usage.returncode == 0, f"{where}: {args[0]} --help failed: {usage.stderr}"
        flags = set(re.findall(r"(?<![\w-])--[\w-]+", usage.stdout))
        unknown = [a for a in args[1:] if a.startswith("--") and a.split("=")[0] not in flags]
        assert not unknown, f"{where}: {args[0]} has no option {unknown}"
    else:
        pytest.fail(
            f"{where}: tests/docs/test_commands.py does not know how to check {program!r}; "
            "teach it (the documentation's commands must be checked)"
        )


def test_the_commands_are_found() -> None:
    assert any(words[0] == "tether" for _, words in COMMANDS)
    assert any(words[0] == "make" for _, words in COMMANDS)


def _tether(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    script = Path(sys.executable).with_name("tether")
    command = [str(script)] if script.exists() else [sys.executable, "-m", "tether.cli.main"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("TETHER_")}
    env["NO_COLOR"] = "1"
    return subprocess.run(
        [*command, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )


def _readme_order_example() -> Block:
    for block in parse(ROOT / "README.md"):
        if block.lang in PYTHON and 'Graph(Order, name="order")' in block.code:
            return block
    raise AssertionError("README.md has no order example (Graph(Order, name='order'))")


PARK = """
import asyncio

from tether import Runtime
from tether.core.refs import load_ref

workflow = load_ref("orders.py:workflow")       # as `tether runs resume` loads it


async def main() -> None:
    async with Runtime("sqlite:///parked.db", workflows=[workflow]) as rt:
        res = await rt.run(workflow, {"amount": 7})
        print(res.run_id, res.status)


asyncio.run(main())
"""


@pytest.mark.timeout(600)
def test_readme_example_is_resumed_by_the_cli_without_running_again(tmp_path: Path) -> None:
    example = _readme_order_example()
    (tmp_path / "orders.py").write_text(example.code, encoding="utf-8")
    (tmp_path / "park.py").write_text(PARK, encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith("TETHER_")}
    park = subprocess.run(
        [sys.executable, "park.py"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert park.returncode == 0, park.stderr
    run_id, status = park.stdout.split()[-2:]
    assert status == "ESCALATED", park.stdout

    resumed = _tether(
        "runs",
        "resume",
        run_id,
        "--value",
        '"yes"',
        "--store",
        "sqlite:///parked.db",
        "--json",
        cwd=tmp_path,
    )
    assert resumed.returncode == 0, resumed.stderr + resumed.stdout
    result = json.loads(resumed.stdout)
    assert result["status"] == "COMPLETED"
    assert result["state"]["approved"] is True
    assert result["state"]["log"] == ["charged 7"]
    # importing the example (in park.py and in the CLI) never ran its own main()
    assert not (tmp_path / "orders.db").exists(), f"{example.where} ran on import"


def test_tether_command_is_installed(tmp_path: Path) -> None:
    proc = _tether("version", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip()


def test_docs_exist_where_the_readme_points() -> None:
    """The README and bench/README.md cite docs/architecture.md (and no DESIGN.md, which users
    do not have)."""
    assert (ROOT / "docs" / "architecture.md").is_file()
    for path in [*doc_files(), ROOT / "bench" / "README.md"]:
        text = path.read_text(encoding="utf-8")
        assert "DESIGN.md" not in text, f"{path} cites DESIGN.md, which is not in the repository"
        for target in re.findall(r"\]\(([^)#:]+\.md)(?:#[^)]*)?\)", text):
            assert (path.parent / target).is_file(), f"{path}: broken link to {target}"


def _graph_fork_example() -> Block:
    for block in parse(ROOT / "docs" / "graph.md"):
        if block.lang in PYTHON and 'Graph(Quote, name="quote")' in block.code:
            return block
    raise AssertionError("docs/graph.md has no quote example (Graph(Quote, name='quote'))")


@pytest.mark.timeout(600)
def test_graph_fork_example_is_forked_by_the_cli_as_the_page_shows(tmp_path: Path) -> None:
    """docs/graph.md runs its quote example, then shows `tether runs fork RUN_ID --step 1
    --patch ... --store sqlite:///quotes.db`: the command imports the example's file to find
    the workflow, which must not run the example again (an asyncio.run at import failed it)."""
    example = _graph_fork_example()
    (tmp_path / "quotes.py").write_text(example.code, encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith("TETHER_")}
    ran = subprocess.run(
        [sys.executable, "quotes.py"], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert ran.returncode == 0, ran.stderr
    listed = _tether("runs", "list", "--store", "sqlite:///quotes.db", "--json", cwd=tmp_path)
    (parent,) = [r["run_id"] for r in json.loads(listed.stdout) if not r["parent_run_id"]]
    command = next(
        line
        for block in parse(ROOT / "docs" / "graph.md")
        if block.lang in SHELL
        for line in block.code.splitlines()
        if line.startswith("tether runs fork")
    )
    args = [parent if a == "RUN_ID" else a for a in shlex.split(command)[1:]]
    forked = _tether(*args, "--json", cwd=tmp_path)
    assert forked.returncode == 0, forked.stderr + forked.stdout
    result = json.loads(forked.stdout)
    assert result["status"] == "COMPLETED"
    assert result["state"]["lines"] == ["price 1000", "tax 20%", "total 2400"]
