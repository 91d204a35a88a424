"""A page whose examples use top-level ``await`` tells the reader how to run them.

The tests run such a block as one coroutine (``run_program.py``), but a reader who pastes it
into a file and runs ``python file.py`` gets ``SyntaxError: 'await' outside function``. So a
page that has one says so in its text ("top-level `await`": paste it into ``python -m
asyncio`` or a notebook, or wrap it in an ``async def main()``), and a page that promises whole
programs has none. docs/from-langgraph.md's breakpoint example had one and no word about it.
"""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

import pytest

from tests.docs.blocks import ROOT, Program
from tests.docs.test_blocks import PROGRAMS

NOTE = "top-level `await`"

REPORTED: dict[str, str] = {}
"""Pages of other owners known to lack the note: expected to fail until it is added."""


def _awaits_at_top_level(program: Program) -> bool:
    code = compile(
        program.source(),
        program.where,
        "exec",
        flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT,
        dont_inherit=True,
    )
    return bool(code.co_flags & inspect.CO_COROUTINE)


def _page(path: Path) -> str:
    return str(path.relative_to(ROOT))


AWAITING = sorted({_page(p.blocks[0].path) for p in PROGRAMS if _awaits_at_top_level(p)})


def test_top_level_await_is_detected() -> None:
    assert "README.md" in AWAITING and "docs/models.md" in AWAITING


@pytest.mark.parametrize(
    "page",
    [
        pytest.param(p, marks=pytest.mark.xfail(strict=True, reason=REPORTED[p]))
        if p in REPORTED
        else p
        for p in AWAITING
    ],
)
def test_a_page_with_top_level_await_says_how_to_run_it(page: str) -> None:
    text = (ROOT / page).read_text(encoding="utf-8")
    assert NOTE in text, (
        f"{page} has a Python block with top-level await but never tells the reader: say "
        f"({NOTE}: paste it into `python -m asyncio` or a notebook, or wrap it in an "
        "`async def main()`), or make the block a whole program"
    )


def test_the_pages_that_promise_whole_programs_keep_that_promise() -> None:
    """getting-started.md: 'every Python block below is a whole program you can paste into a
    file', except the one hosted-model block it announces; the porting guide likewise."""
    allowed = {"docs/getting-started.md": 1, "docs/from-langgraph.md": 0}
    for page, most in allowed.items():
        found = [
            p.where for p in PROGRAMS if _page(p.blocks[0].path) == page and _awaits_at_top_level(p)
        ]
        assert len(found) <= most, f"{page}: blocks with top-level await {found}"
