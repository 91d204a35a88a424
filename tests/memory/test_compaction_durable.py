"""Compaction inside a run: the summary is a journaled model call, so a resumed run (after an
interrupt, or after its process was SIGKILLed) gets it back from the journal and never asks
the model again."""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any, TypedDict

import pytest

from tether import END, START, Graph, RunContext, Runtime, interrupt
from tether.llm import FunctionModel
from tether.llm.types import ModelRequest
from tether.memory.compaction_summary import SUMMARY_MARKER
from tether.memory.context_window import ContextWindow
from tether.memory.conversation import Conversation
from tether.store.sqlite import SqliteStore

ROOT = Path(__file__).resolve().parents[2]
TRIALS = int(os.environ.get("TETHER_COMPACTION_CRASH_TRIALS", "4"))


class S(TypedDict, total=False):
    conv: dict[str, Any]
    answer: str


async def test_resume_after_interrupt_replays_the_summary(tmp_path: Path) -> None:
    asked: list[ModelRequest] = []

    def summarise(request: ModelRequest) -> str:
        asked.append(request)
        return "The user listed forty chores."

    window = ContextWindow(FunctionModel(summarise), limit=300, keep_recent=2)

    async def node(state: S, ctx: RunContext) -> dict[str, Any]:
        fitted = await window.fit(Conversation.from_state(state["conv"]))
        answer = interrupt({"tokens": fitted.tokens})  # parks; the node re-runs on resume
        return {"conv": fitted.conversation.to_state(), "answer": answer}

    g = Graph(S, name="compact_then_ask")
    g.add_node("node", node).add_edge(START, "node").add_edge("node", END)
    wf = g.compile()
    conv = Conversation.start("Goal: tidy the house.").add(*[f"chore {i} " * 8 for i in range(40)])
    async with Runtime(SqliteStore(tmp_path / "runs.db"), workflows=[wf], recover=False) as rt:
        parked = await rt.run(wf, {"conv": conv.to_state()})
        n = len(asked)
        assert parked.interrupts and n >= 2  # 40 chores take a few summary calls
        done = await rt.resume(parked.run_id, "yes")
        assert done.completed and len(asked) == n  # replayed, not asked again
        final = Conversation.from_state(done.state["conv"])
        assert final.summary == "The user listed forty chores." and final.folded > 0
        effects = await rt.store.list_effects(parked.run_id)
        summaries = [e for e in effects if e.kind == "model"]
        assert len(summaries) == n and all(e.status == "done" for e in summaries)
        events = [e async for e in rt.events(parked.run_id)]
        compacted = [e for e in events if e.type == "context_compacted"]
        assert compacted and compacted[0].data["actions"] == ["summarize"]
    assert asked[0].messages[0].name == SUMMARY_MARKER


def _spawn(db: Path, ext: Path, run_id: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(
        [sys.executable, "-m", "tests.memory.compaction_app", str(db), str(ext), run_id],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _final(db: Path, run_id: str) -> tuple[str, dict[str, Any], list[Any]]:
    import asyncio

    from tests.memory.compaction_app import workflow

    async def read() -> tuple[str, dict[str, Any], list[Any]]:
        async with Runtime(SqliteStore(str(db)), workflows=[workflow], recover=False) as rt:
            run = await rt.get_run(run_id)
            return run.status.value, await rt.get_state(run_id), await rt.store.list_effects(run_id)

    return asyncio.run(read())


@pytest.mark.slow
def test_sigkill_mid_run_never_repeats_a_journaled_summary(tmp_path: Path) -> None:
    from tests.memory.compaction_app import GOAL, PIN, TURNS

    rng = random.Random(int(os.environ.get("TETHER_CRASH_SEED", "99")))
    kills = 0
    for trial in range(TRIALS):
        db, ext, run_id = tmp_path / f"runs{trial}.db", tmp_path / f"ext{trial}.db", f"cc-{trial}"
        reached = 0
        for k in range(rng.randint(1, 3)):
            proc = _spawn(db, ext, run_id)
            assert proc.stdout is not None
            hello = proc.stdout.readline().strip()
            assert hello == ("STARTED" if k == 0 else "JOINED"), proc.stderr
            target = reached + rng.randint(2, 8)
            while reached < target:
                line = proc.stdout.readline().strip()
                assert line.startswith("STEP "), (line, proc.stderr)
                reached = int(line.split()[1])
            # land the kill a few ms into the next step: mid-fit, mid-summary or mid-commit
            import time

            time.sleep(rng.uniform(0, 0.03))
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            kills += _final(db, run_id)[0] != "COMPLETED"
        proc = _spawn(db, ext, run_id)
        out, err = proc.communicate(timeout=180)
        assert proc.returncode == 0, err[-2000:]
        assert out.split()[-1] == "COMPLETED", (out, err[-2000:])

        status, state, effects = _final(db, run_id)
        assert status == "COMPLETED"
        conv = Conversation.from_state(state["conv"])
        assert state["turn"] == TURNS
        assert conv.goal is not None and conv.goal.content == GOAL
        assert conv.pinned["rule"].content == PIN
        assert conv.summary.startswith("Folded ") and conv.folded > 0
        assert conv.folded + len(conv.turns) == 2 * TURNS  # nothing lost, nothing doubled

        edb = sqlite3.connect(ext)
        violations = edb.execute("SELECT digest, why FROM violations").fetchall()
        assert violations == [], f"trial {trial}: a journaled summary was asked again"
        asked = edb.execute("SELECT digest, COUNT(*) FROM summaries GROUP BY digest").fetchall()
        edb.close()
        journaled = {
            e.request["request"]
            for e in effects
            if e.kind == "model"
            and e.status == "done"
            and e.request.get("model") == "function:summariser"
        }
        # every summary the finished run used is journaled, and each was asked live at most
        # once more than the kills that could have cut it short
        assert {d for d, _ in asked} >= journaled and len(journaled) >= 3
        assert sum(n - 1 for _, n in asked) <= kills
    assert kills >= 1
