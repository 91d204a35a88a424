"""Every Python block of README.md and docs/**/*.md runs as written, offline.

Each program (a block, or blocks joined by ``<!-- doc-test: continues -->``) runs in a fresh
interpreter whose working directory is a temporary one, so the files it writes (SQLite stores...)
never land in the repository. Blocks marked ``<!-- doc-test: fake-model -->`` run with the
OpenAI and Anthropic keys and base URLs pointing at a fake server on 127.0.0.1 and must call it. The conventions are in ``tests/docs/blocks.py``; there is no way to skip a block.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.docs.blocks import (
    PYTHON,
    DocError,
    Program,
    all_programs,
    doc_files,
    parse,
    programs,
)
from tests.docs.fake_openai import ANSWER, FakeOpenAI, fake_openai

RUNNER = (Path(__file__).parent / "run_program.py").read_text(encoding="utf-8")
PROGRAMS = all_programs()
_HOSTED_ENV = ("TETHER_", "OPENAI_", "ANTHROPIC_")


def _env() -> dict[str, str]:
    """The test's environment without anything that would pick a hosted model or another store:
    a block runs as on a fresh machine, offline."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(_HOSTED_ENV)}
    env.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", NO_COLOR="1")
    return env


def run_program(
    program: Program, cwd: Path, env: dict[str, str]
) -> subprocess.CompletedProcess[str]:
    path = cwd / "doc_program.py"
    path.write_text(program.source(), encoding="utf-8")
    return subprocess.run(
        [sys.executable, "-X", "faulthandler", "-c", RUNNER, str(path)],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=840,  # a hang guard: the local model is slow on a loaded machine, never this slow
    )


def _report(program: Program, proc: subprocess.CompletedProcess[str], why: str) -> str:
    name = program.blocks[0].where.rsplit(":", 1)[0]
    return (
        f"the documentation block at {program.where} {why} (line numbers in the traceback are "
        f"{name}'s)\n--- stdout ---\n{proc.stdout[-3000:]}\n--- stderr ---\n{proc.stderr[-6000:]}"
    )


def run_marked(program: Program, cwd: Path) -> tuple[subprocess.CompletedProcess[str], int]:
    """Run ``program`` as its markers say; also return how many requests the fake server got
    (-1 when the program is not marked fake-model)."""
    env = _env()
    with contextlib.ExitStack() as stack:
        fake: FakeOpenAI | None = None
        if "fake-model" in program.markers:
            fake = stack.enter_context(fake_openai())
            env.update(
                OPENAI_API_KEY="sk-doc-test",
                OPENAI_BASE_URL=fake.url,
                ANTHROPIC_API_KEY="sk-ant-doc-test",
                ANTHROPIC_BASE_URL=fake.anthropic_url,
            )
        proc = run_program(program, cwd, env)
    return proc, -1 if fake is None else len(fake.requests)


@pytest.mark.timeout(900)
@pytest.mark.parametrize("program", PROGRAMS, ids=[p.where for p in PROGRAMS])
def test_documentation_block_runs(program: Program, tmp_path: Path) -> None:
    proc, fake_requests = run_marked(program, tmp_path)
    if proc.returncode != 0:
        how = (
            f"was killed by {signal.Signals(-proc.returncode).name}"
            if proc.returncode < 0
            else f"exited with {proc.returncode}"
        )
        pytest.fail(_report(program, proc, how), pytrace=False)
    if fake_requests == 0:
        why = "is marked fake-model but never called the fake model server"
        pytest.fail(_report(program, proc, why), pytrace=False)


FAKE_PROVIDERS = f"""<!-- doc-test: fake-model -->
```python
from tether.llm import model_from_spec

for spec in ("openai:gpt-4o-mini", "anthropic:claude-haiku-4-5"):
    model = model_from_spec(spec)
    whole = await model.chat("hi", max_tokens=8)
    streamed = await model.chat("hi", max_tokens=8, stream=True)
    assert whole.text.strip() == streamed.text.strip() == {ANSWER!r}, (spec, whole, streamed)
    print(spec, whole.usage.input_tokens, streamed.usage.output_tokens)
```
"""


def test_fake_model_blocks_reach_both_hosted_providers(tmp_path: Path) -> None:
    path = tmp_path / "doc.md"
    path.write_text(FAKE_PROVIDERS)
    (program,) = programs(parse(path))
    proc, fake_requests = run_marked(program, tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert fake_requests == 4
    assert proc.stdout.splitlines() == [
        "openai:gpt-4o-mini 12 8",
        "anthropic:claude-haiku-4-5 12 8",
    ]


# -- the collector itself ---------------------------------------------------------------------


def test_every_python_fence_is_collected() -> None:
    """No block escapes the test: the collector finds every ```python fence of every file."""
    for path in doc_files():
        text = path.read_text(encoding="utf-8")
        fences = sum(
            1
            for line in text.splitlines()
            if line.strip().startswith("```") and line.strip()[3:].strip().lower() in PYTHON
        )
        collected = sum(len(p.blocks) for p in PROGRAMS if p.blocks[0].path == path)
        assert collected == fences, f"{path}: {fences} python fences, {collected} collected"
    assert any(p.blocks[0].path.name == "README.md" for p in PROGRAMS)


def test_continues_joins_blocks_and_keeps_line_numbers(tmp_path: Path) -> None:
    text = (
        "# t\n\n```python\nx = 1\n```\n\nprose\n\n<!-- doc-test: continues -->\n"
        "```python\nassert x == 1\nraise SystemExit(7)\n```\n\n```bash\necho hi\n```\n"
    )
    path = tmp_path / "doc.md"
    path.write_text(text)
    (program,) = programs(parse(path))
    assert [b.line for b in program.blocks] == [3, 10]
    lines = program.source().splitlines()
    assert lines[3] == "x = 1" and lines[10] == "assert x == 1"  # 0-based: line 4 and 11
    proc = run_program(program, tmp_path, _env())
    assert proc.returncode == 7, proc.stderr


def test_top_level_await_runs(tmp_path: Path) -> None:
    path = tmp_path / "doc.md"
    path.write_text(
        "```python\nimport asyncio\nawait asyncio.sleep(0)\nprint(__name__, 'awaited')\n```\n"
    )
    (program,) = programs(parse(path))
    proc = run_program(program, tmp_path, _env())
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "__main__ awaited"


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("<!-- doc-test: skip -->\n```python\npass\n```\n", "unknown doc-test marker"),
        ("<!-- doc-test: continues -->\n```python\npass\n```\n", "no Python block before"),
        ("<!-- doc-test: fake-model -->\n\nprose\n```python\npass\n```\n", "not followed"),
        ("<!-- doc-tests: fake-model -->\n```python\npass\n```\n", "malformed"),
        ("<!-- doc-test: fake-model -->\n```bash\nls\n```\n", "apply to python"),
        ("```python\npass\n", "never closed"),
    ],
)
def test_bad_markers_are_refused(tmp_path: Path, text: str, problem: str) -> None:
    path = tmp_path / "doc.md"
    path.write_text(text)
    with pytest.raises(DocError, match=problem):
        programs(parse(path))
