"""Conformance: checkpoints and chains, pruning and purging, node writes, the effect journal."""

from __future__ import annotations

import pytest

from tether.core.errors import IllegalTransitionError, LeaseLostError, StepNotFoundError
from tether.store.protocol import RunStore
from tether.store.types import Checkpoint, Commit, Event, NodeWrite, RunRecord
from tether.testing.clock import FakeClock
from tether.testing.store_helpers import (
    T0,
    S,
    StoreTestBase,
    checkpoint,
    create,
    lifecycle,
    write_steps,
)


def _steps(cps: list[Checkpoint]) -> list[int]:
    return [cp.step for cp in cps]


class HistoryConformance(StoreTestBase):
    async def test_checkpoints(self, store: RunStore, clock: FakeClock) -> None:
        await create(store, "r1")
        await write_steps(store, "r1", None, range(1, 7), snapshot_at=[3], clock=clock)
        cp = await store.get_checkpoint("r1", 4)
        assert (cp.run_id, cp.step, cp.delta, cp.snapshot, cp.created_at) == (
            "r1",
            4,
            [["4:a:0", "a", {"n": 4}]],
            None,
            T0 + 3,
        )
        with pytest.raises(StepNotFoundError):
            await store.get_checkpoint("r1", 7)
        assert (await store.latest_checkpoint("r1")).step == 6
        assert (await store.get_run("r1")).step == 6
        assert _steps(await store.list_checkpoints("r1")) == [0, 1, 2, 3, 4, 5, 6]
        assert _steps(await store.list_checkpoints("r1", from_step=2, to_step=4)) == [2, 3, 4]
        assert _steps(await store.list_checkpoints("r1", from_step=5)) == [5, 6]
        assert _steps(await store.list_checkpoints("r1", to_step=0)) == [0]
        assert await store.list_checkpoints("r1", from_step=9) == []

    async def test_load_chain(self, store: RunStore) -> None:
        await create(store, "r1")
        await write_steps(store, "r1", None, range(1, 7), snapshot_at=[3])
        assert _steps(await store.load_chain("r1", 6)) == [3, 4, 5, 6]
        assert _steps(await store.load_chain("r1", 3)) == [3]
        assert _steps(await store.load_chain("r1", 2)) == [0, 1, 2]
        assert _steps(await store.load_chain("r1", 0)) == [0]
        chain = await store.load_chain("r1", 5)
        assert chain[0].snapshot == {"n": 3} and [c.snapshot for c in chain[1:]] == [None, None]
        with pytest.raises(StepNotFoundError):
            await store.load_chain("r1", 9)

    async def test_initial_checkpoints(self, store: RunStore) -> None:
        for run_id in ("r1", "r2", "r3"):
            await create(store, run_id)
        await write_steps(store, "r2", None, range(1, 3), snapshot_at=[2])
        found = await store.initial_checkpoints(["r3", "r1", "nope", "r2", "r1"])
        assert sorted(found) == ["r1", "r2", "r3"]  # an unknown run is left out, no error
        for run_id, cp in found.items():
            assert cp == await store.get_checkpoint(run_id, 0)  # step 0, whatever came after
        assert await store.initial_checkpoints([]) == {}
        # the caller owns what it gets: changing it changes nothing stored
        found["r1"].next_tasks.append({"id": "x", "node": "x"})
        assert (await store.initial_checkpoints(["r1"]))["r1"] == await store.get_checkpoint(
            "r1", 0
        )

    async def test_big_checkpoints_read_back_as_written(self, store: RunStore) -> None:
        """Deltas and snapshots of every size and kind read back exactly, through every
        write path (create, commit, prune's new base) and every read (the backends store big
        ones compressed)."""
        import random

        text = "The customer asked for a refund of order 1234; the agent checked it. " * 80
        noise = random.Random(7).randbytes(1500).hex()  # incompressible beyond its hex
        uni = "naïve café \u2013 東京 🚀 " * 60

        def big(step: int) -> Checkpoint:
            cp = checkpoint("r1", step)
            cp.delta = [[f"{step}:a:0", "a", {"text": text, "noise": noise, "uni": uni}]]
            return cp

        run = await store.create_run(
            RunRecord("r1", "wf", S.EXECUTING),
            Checkpoint("r1", 0, [], [{"id": "1:a:0", "node": "a"}], {"log": [text, uni]}),
            lifecycle(S.EXECUTING),
        )
        assert run[1]
        written = [big(1), big(2), big(3)]
        written[1].snapshot = {"log": [text, noise, uni], "n": 2}
        for cp in written:
            await store.commit("r1", None, Commit(checkpoint=cp))
        first = await store.get_checkpoint("r1", 0)
        assert first.snapshot == {"log": [text, uni]}
        for cp in written:
            got = await store.get_checkpoint("r1", cp.step)
            assert (got.delta, got.snapshot) == (cp.delta, cp.snapshot)
        chain = await store.load_chain("r1", 3)
        assert [(c.step, c.delta, c.snapshot) for c in chain] == [
            (c.step, c.delta, c.snapshot) for c in written[1:]
        ]
        assert [c.delta for c in await store.list_checkpoints("r1", from_step=1)] == [
            c.delta for c in written
        ]
        assert (await store.initial_checkpoints(["r1"]))["r1"].snapshot == first.snapshot
        base = await store.get_checkpoint("r1", 3)
        base.snapshot = {"log": [text, noise, uni, noise], "n": 3}
        assert await store.prune_checkpoints("r1", 2, base) == 3
        got = await store.get_checkpoint("r1", 3)
        assert (got.delta, got.snapshot) == (base.delta, base.snapshot)

    async def test_prune_checkpoints(self, store: RunStore) -> None:
        await create(store, "r1")
        await write_steps(store, "r1", None, range(1, 7), snapshot_at=[3])
        base = await store.get_checkpoint("r1", 4)
        base.snapshot = {"n": 4}
        assert await store.prune_checkpoints("r1", 3, base) == 4
        assert _steps(await store.list_checkpoints("r1")) == [4, 5, 6]
        assert (await store.get_checkpoint("r1", 4)).snapshot == {"n": 4}
        assert _steps(await store.load_chain("r1", 6)) == [4, 5, 6]
        with pytest.raises(StepNotFoundError):
            await store.get_checkpoint("r1", 2)
        assert await store.prune_checkpoints("r1", 3, base) == 0

    async def test_node_writes(self, store: RunStore, clock: FakeClock) -> None:
        await create(store, "r1")
        lease = await store.acquire_lease("r1", "w1", 30)
        assert lease is not None
        tok = lease.token
        await store.put_node_write(tok, NodeWrite("r1", 1, "1:b:0", "b", "done", {"x": 1}))
        await store.put_node_write(
            tok, NodeWrite("r1", 1, "1:a:0", "a", "interrupted", None, None, {"ask": "?"}, [1])
        )
        await store.put_node_write(tok, NodeWrite("r1", 2, "2:a:0", "a", "done", {"y": 2}))
        clock.advance(1)
        await store.put_node_write(tok, NodeWrite("r1", 1, "1:b:0", "b", "done", {"x": 10}, ["c"]))
        a, b = await store.get_node_writes("r1", 1)
        assert (a.task_id, a.status, a.writes, a.interrupt, a.resume, a.created_at) == (
            "1:a:0",
            "interrupted",
            None,
            {"ask": "?"},
            [1],
            T0,
        )
        assert (b.task_id, b.writes, b.goto, b.created_at) == ("1:b:0", {"x": 10}, ["c"], T0 + 1)
        await store.commit(
            "r1", tok, Commit(checkpoint=checkpoint("r1", 1), clear_node_writes_for_step=1)
        )
        assert await store.get_node_writes("r1", 1) == []
        assert [w.task_id for w in await store.get_node_writes("r1", 2)] == ["2:a:0"]

    async def test_commit_journals_node_writes(self, store: RunStore, clock: FakeClock) -> None:
        """``Commit.node_writes`` land with the commit, fenced like it, or not at all: a
        resume's answer and the run's move back to work are one write."""
        await create(store, "r1", status=S.ESCALATED)
        lease = await store.acquire_lease("r1", "w1", 30)
        assert lease is not None
        tok = lease.token
        asked = NodeWrite("r1", 1, "1:a:0", "a", "interrupted", None, None, {"ask": "?"}, [])
        await store.put_node_write(tok, asked)
        answered = NodeWrite("r1", 1, "1:a:0", "a", "interrupted", None, None, {"ask": "?"}, [7])
        back = [(S.ESCALATED, S.EXECUTING, "api", "answered")]
        with pytest.raises(IllegalTransitionError):  # refused: the journal is left alone
            await store.commit(
                "r1", tok, Commit(status=S.COMPLETED, transitions=[], node_writes=[answered])
            )
        assert (await store.get_node_writes("r1", 1))[0].resume == []
        assert await store.acquire_lease("r1", "w1", 30) is not None  # w1 again: same token
        with pytest.raises(LeaseLostError):
            await store.commit("r1", tok - 1, Commit(node_writes=[answered]))
        assert (await store.get_node_writes("r1", 1))[0].resume == []
        with pytest.raises(ValueError):  # another run's journal is not this commit's
            other = NodeWrite("r2", 1, "1:a:0", "a", "done", {})
            await store.commit("r1", tok, Commit(node_writes=[other]))
        clock.advance(2)
        run = await store.commit(
            "r1", tok, Commit(status=S.EXECUTING, transitions=back, node_writes=[answered])
        )
        assert run.status is S.EXECUTING
        (w,) = await store.get_node_writes("r1", 1)
        assert (w.status, w.interrupt, w.resume, w.created_at) == (
            "interrupted",
            {"ask": "?"},
            [7],
            T0 + 2,
        )

    async def test_node_writes_keep_their_events(self, store: RunStore, clock: FakeClock) -> None:
        """A task's events travel with its node write until a commit holds them; a commit that
        keeps the step's writes stores them emptied."""
        await create(store, "r1")
        lease = await store.acquire_lease("r1", "w1", 30)
        assert lease is not None
        tok = lease.token
        ev = Event("r1", 3, "tool_call", T0 + 0.5, 1, "b", {"tool": "ship", "n": [1, "é"]})
        await store.put_node_write(tok, NodeWrite("r1", 1, "1:b:0", "b", "done", {}, events=[ev]))
        (w,) = await store.get_node_writes("r1", 1)
        (got,) = w.events
        assert (got.run_id, got.type, got.ts, got.step, got.node, got.data) == (
            "r1",
            "tool_call",
            T0 + 0.5,
            1,
            "b",
            {"tool": "ship", "n": [1, "é"]},
        )
        emptied = NodeWrite("r1", 1, "1:b:0", "b", "done", {})
        await store.commit("r1", tok, Commit(events=[ev], node_writes=[emptied]))
        (w,) = await store.get_node_writes("r1", 1)
        assert (w.status, w.events) == ("done", [])

    async def test_effect_journal(self, store: RunStore, clock: FakeClock) -> None:
        await create(store, "r1")
        lease = await store.acquire_lease("r1", "w1", 30)
        assert lease is not None
        tok = lease.token
        rec, created = await store.record_intent("r1", "k1", "tool", {"q": 1}, tok)
        assert created
        assert (rec.run_id, rec.key, rec.kind, rec.status, rec.request, rec.attempts) == (
            "r1",
            "k1",
            "tool",
            "pending",
            {"q": 1},
            1,
        )
        assert (rec.result, rec.error, rec.created_at, rec.updated_at) == (None, None, T0, T0)
        clock.advance(1)
        retry, created = await store.record_intent("r1", "k1", "tool", {"q": 1}, tok)
        assert not created
        assert (retry.status, retry.attempts, retry.created_at, retry.updated_at) == (
            "pending",
            2,
            T0,
            T0 + 1,
        )
        clock.advance(1)
        done = await store.record_result("r1", "k1", result={"ok": True}, token=tok)
        assert (done.status, done.result, done.attempts, done.updated_at) == (
            "done",
            {"ok": True},
            2,
            T0 + 2,
        )
        replay, created = await store.record_intent("r1", "k1", "tool", {"q": 1}, tok)
        assert not created and replay == done  # a finished effect is returned, never re-run
        await store.record_intent("r1", "k0", "model", None, tok)
        failed = await store.record_result("r1", "k0", error={"type": "Timeout"}, token=tok)
        assert (failed.status, failed.result, failed.error) == ("failed", None, {"type": "Timeout"})
        assert await store.get_effect("r1", "k0") == failed
        assert await store.get_effect("r1", "missing") is None
        assert [e.key for e in await store.list_effects("r1")] == ["k1", "k0"]  # insertion order
        with pytest.raises(KeyError):
            await store.record_result("r1", "missing", result=1, token=tok)
        with pytest.raises(LeaseLostError):
            await store.record_result("r1", "missing", result=1, token=tok + 1)
