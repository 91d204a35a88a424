"""Tools that raise what is not an ``Exception`` (``SystemExit`` from a ``sys.exit()`` in a
library they call, ``KeyboardInterrupt``, a ``BaseException`` subclass), called through an
executor in a process of their own, outside and inside a SQLite run: the test reads what each
call came back as from stdout (one JSON line per call), so a crash of this process is a failed
assertion, not the end of the test session.

    python -m tests.tools.exiting_tools_app DB
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Any

from tests.tools.runs import one_node, sqlite_runtime
from tether import RunContext
from tether.tools import ToolExecutor, tool


class Abort(BaseException):
    """A library's own BaseException (gevent's, trio's, a test framework's)."""


@tool(scope="read")
def cli_wrapper(flag: str) -> str:
    """A sync tool around a CLI library that exits on a bad flag (argparse, click)."""
    sys.exit(2)


@tool(scope="read")
async def async_exit(flag: str) -> str:
    """An async tool that exits."""
    raise SystemExit(f"unknown flag {flag}")


@tool(scope="read")
def sync_interrupt(flag: str) -> str:
    """A sync tool raising KeyboardInterrupt in its worker thread (no Ctrl-C can land there)."""
    raise KeyboardInterrupt


@tool(scope="read")
async def async_abort(flag: str) -> str:
    """An async tool raising a BaseException subclass."""
    raise Abort("aborted")


@tool(scope="read")
def sync_abort(flag: str) -> str:
    """A sync tool raising a BaseException subclass."""
    raise Abort("aborted")


TOOLS = [cli_wrapper, async_exit, sync_interrupt, async_abort, sync_abort]


def _out(where: str, name: str, res: Any) -> None:
    line = {"where": where, "tool": name, "ok": res.ok, "error": type(res.error).__name__}
    line["message"] = str(res.error)
    print(json.dumps(line), flush=True)


async def main(db: Path) -> None:
    tools = ToolExecutor(TOOLS)
    for t in TOOLS:
        _out("direct", t.name, await tools.call(t.name, {"flag": "--x"}))

    async def act(state: Any, ctx: RunContext) -> dict[str, Any]:
        for t in TOOLS:
            _out("run", t.name, await tools.call(t.name, {"flag": "--x"}, ctx=ctx))
        return {"out": "done"}

    wf = one_node("exiting", act)
    async with sqlite_runtime(db.parent, wf) as rt:
        res = await rt.run(wf, {})
        print(json.dumps({"run": res.status.value, "out": res.state.get("out")}), flush=True)


if __name__ == "__main__":
    asyncio.run(main(Path(sys.argv[1])))
