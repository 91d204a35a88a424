"""Find the code blocks of the documentation (README.md and docs/**/*.md) and assemble the
Python ones into programs.

Markers: an HTML comment on the line(s) right above a fence (blank lines allowed between)
says how a Python block runs. There is deliberately no "skip": every block runs.

* ``<!-- doc-test: continues -->``: the block goes on from the previous Python block of the same
  file; both run as one program (the previous block's names are defined).
* ``<!-- doc-test: fake-model -->``: the block needs a hosted model's API key; it runs with
  ``OPENAI_API_KEY``/``ANTHROPIC_API_KEY`` set and ``OPENAI_BASE_URL``/``ANTHROPIC_BASE_URL``
  pointing at a fake server on 127.0.0.1 (``fake_openai.py``), and must actually call it.

A program keeps its blocks' line numbers: it is padded with blank lines so that line N of the
program is line N of the markdown file, and tracebacks point into the document.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
KINDS = frozenset({"continues", "fake-model"})
PYTHON = frozenset({"python", "py", "python3"})
SHELL = frozenset({"bash", "sh", "shell", "console"})

_FENCE = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,})\s*(?P<lang>[\w+-]*)")
_MARKER = re.compile(r"^\s*<!--\s*doc-test:\s*(?P<kind>\S+?)\s*-->\s*$")
_MARKER_LIKE = re.compile(r"^\s*<!--\s*doc-test", re.IGNORECASE)


class DocError(Exception):
    """A documentation file breaks the block conventions (unknown or stray marker...)."""


def doc_files(root: Path = ROOT) -> list[Path]:
    docs = root / "docs"
    return [root / "README.md", *(sorted(docs.rglob("*.md")) if docs.is_dir() else [])]


@dataclass(frozen=True)
class Block:
    path: Path
    line: int
    """Line of the opening fence (1-based)."""
    lang: str
    code: str
    markers: frozenset[str]

    @property
    def first_code_line(self) -> int:
        return self.line + 1

    @property
    def where(self) -> str:
        try:
            name = self.path.relative_to(ROOT)
        except ValueError:
            name = self.path
        return f"{name}:{self.line}"


def parse(path: Path, text: str | None = None) -> list[Block]:
    """Every fenced block of ``path`` with the markers attached to it."""
    lines = (path.read_text(encoding="utf-8") if text is None else text).splitlines()
    blocks: list[Block] = []
    pending: list[tuple[int, str]] = []  # markers seen since the last non-blank, non-marker line
    i = 0
    while i < len(lines):
        line = lines[i]
        fence = _FENCE.match(line)
        if fence is None:
            marker = _MARKER.match(line)
            if marker is not None:
                pending.append((i + 1, marker["kind"]))
            elif _MARKER_LIKE.search(line):
                raise DocError(
                    f"{path}:{i + 1}: malformed doc-test marker {line.strip()!r}; "
                    f"write <!-- doc-test: KIND --> with KIND one of {sorted(KINDS)}"
                )
            elif line.strip() and pending:
                raise DocError(
                    f"{path}:{pending[0][0]}: doc-test marker not followed by a code block"
                )
            i += 1
            continue
        indent, close, lang = fence["indent"], fence["fence"], fence["lang"].lower()
        end = i + 1
        while end < len(lines) and not lines[end].strip().startswith(close):
            end += 1
        if end == len(lines):
            raise DocError(f"{path}:{i + 1}: code block never closed")
        body = [ln[len(indent) :] if ln.startswith(indent) else ln for ln in lines[i + 1 : end]]
        kinds = frozenset(kind for _, kind in pending)
        unknown = kinds - KINDS
        if unknown:
            raise DocError(
                f"{path}:{pending[0][0]}: unknown doc-test marker(s) {sorted(unknown)}; "
                f"known: {sorted(KINDS)} (there is no skip: every block runs)"
            )
        if kinds and lang not in PYTHON:
            raise DocError(f"{path}:{pending[0][0]}: doc-test markers apply to python blocks")
        blocks.append(Block(path, i + 1, lang, "\n".join(body) + "\n", kinds))
        pending = []
        i = end + 1
    if pending:
        raise DocError(f"{path}:{pending[0][0]}: doc-test marker not followed by a code block")
    return blocks


@dataclass(frozen=True)
class Program:
    """One or more Python blocks of one file that run together in a fresh interpreter."""

    blocks: tuple[Block, ...]

    @property
    def where(self) -> str:
        first = self.blocks[0].where
        rest = [str(b.line) for b in self.blocks[1:]]
        return first + ("+" + "+".join(rest) if rest else "")

    @property
    def markers(self) -> frozenset[str]:
        return frozenset().union(*(b.markers for b in self.blocks)) - {"continues"}

    def source(self) -> str:
        """The blocks, padded so that every line keeps its line number in the markdown file."""
        out: list[str] = []
        for block in self.blocks:
            out.extend([""] * (block.first_code_line - 1 - len(out)))
            out.extend(block.code.splitlines())
        return "\n".join(out) + "\n"


def programs(blocks: list[Block]) -> list[Program]:
    """The Python blocks grouped into programs (``continues`` joins a block to the previous)."""
    result: list[list[Block]] = []
    for block in blocks:
        if block.lang not in PYTHON:
            continue
        if "continues" in block.markers:
            if not result or result[-1][0].path != block.path:
                raise DocError(f"{block.where}: 'continues' but no Python block before it")
            result[-1].append(block)
        else:
            result.append([block])
    return [Program(tuple(group)) for group in result]


def all_programs(root: Path = ROOT) -> list[Program]:
    return [p for path in doc_files(root) for p in programs(parse(path))]


def all_blocks(langs: frozenset[str], root: Path = ROOT) -> list[Block]:
    return [b for path in doc_files(root) for b in parse(path) if b.lang in langs]
