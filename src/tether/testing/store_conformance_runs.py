"""Conformance: creating, listing, committing and deleting runs; events and transitions."""

from __future__ import annotations

from typing import Any

import pytest

from tether.core.errors import (
    IdempotencyConflictError,
    IllegalTransitionError,
    RunNotFoundError,
    StepNotFoundError,
)
from tether.store.protocol import RunStore
from tether.store.types import Checkpoint, Commit, Event, NodeWrite, RunRecord
from tether.testing.clock import FakeClock
from tether.testing.store_helpers import T0, S, StoreTestBase, checkpoint, create, ev, lifecycle


def _ids(runs: list[RunRecord]) -> list[str]:
    return [r.run_id for r in runs]


class RunConformance(StoreTestBase):
    async def test_create_and_get_run(self, store: RunStore, clock: FakeClock) -> None:
        events = [Event("other", 99, "run_created", 0.0, 0, None, {"by": "api"}), ev("note")]
        events[1].ts = 123.5
        rec = await create(
            store,
            "r1",
            status=S.PLANNED,
            events=events,
            input={"q": "hi"},
            metadata={"tenant": "t1"},
            parent_run_id="p",
            parent_step=3,
        )
        assert rec.created_at == rec.updated_at == T0
        assert (rec.status, rec.step, rec.event_seq, rec.lease_token) == (S.PLANNED, 0, 2, 0)
        assert await store.get_run("r1") == rec
        assert (rec.input, rec.metadata, rec.parent_run_id, rec.parent_step) == (
            {"q": "hi"},
            {"tenant": "t1"},
            "p",
            3,
        )
        got = await store.list_events("r1")
        assert [(e.run_id, e.seq, e.type, e.ts) for e in got] == [
            ("r1", 1, "run_created", T0),
            ("r1", 2, "note", 123.5),
        ]
        trs = await store.list_transitions("r1")
        assert [(t.seq, t.src, t.dst, t.actor, t.ts) for t in trs] == [
            (1, None, S.RECEIVED, "api", T0),
            (2, S.RECEIVED, S.PLANNED, "api", T0),
        ]
        cp = await store.get_checkpoint("r1", 0)
        assert (cp.snapshot, cp.created_at) == ({"n": 0}, T0)

    async def test_create_run_is_idempotent_on_key(self, store: RunStore, clock: FakeClock) -> None:
        first = await create(store, "r1", idempotency_key="k1", input_hash="h1")
        clock.advance(5)
        for run_id, input_hash in (("r2", "h1"), ("r3", None)):
            run = RunRecord(run_id, "wf", S.RECEIVED, idempotency_key="k1", input_hash=input_hash)
            again, created = await store.create_run(
                run, checkpoint(run_id, 0), lifecycle(S.RECEIVED)
            )
            assert not created
            assert again == first
        conflicting = RunRecord("r4", "wf", S.RECEIVED, idempotency_key="k1", input_hash="h2")
        with pytest.raises(IdempotencyConflictError):
            await store.create_run(conflicting, checkpoint("r4", 0), [])
        assert _ids(await store.list_runs()) == ["r1"]
        with pytest.raises(RunNotFoundError):
            await store.get_run("r2")

    async def test_a_key_reused_for_another_workflow_or_tenant_conflicts(
        self, store: RunStore
    ) -> None:
        """Same key and input, but another workflow (or tenant): not the same submission, so
        not the first run handed back to a caller who asked for something else."""
        first = await create(store, "r1", idempotency_key="k1", input_hash="h1")
        others = (
            RunRecord("r2", "other_wf", S.RECEIVED, idempotency_key="k1", input_hash="h1"),
            RunRecord("r3", "wf", S.RECEIVED, idempotency_key="k1", input_hash="h1", tenant="t2"),
        )
        says = ("of workflow 'wf', not 'other_wf'", "another tenant")
        for run, said in zip(others, says, strict=True):
            with pytest.raises(IdempotencyConflictError, match=said):
                await store.create_run(run, checkpoint(run.run_id, 0), lifecycle(S.RECEIVED))
        assert _ids(await store.list_runs()) == [first.run_id]

    async def test_create_run_with_a_taken_id_conflicts(self, store: RunStore) -> None:
        await create(store, "r1")
        with pytest.raises(IdempotencyConflictError):
            await store.create_run(RunRecord("r1", "wf", S.RECEIVED), checkpoint("r1", 0), [])
        assert len(await store.list_transitions("r1")) == len(lifecycle(S.EXECUTING))

    async def test_unknown_run(self, store: RunStore) -> None:
        calls: list[Any] = [
            store.get_run("nope"),
            store.commit("nope", None, Commit()),
            store.get_checkpoint("nope", 0),
            store.latest_checkpoint("nope"),
            store.list_checkpoints("nope"),
            store.load_chain("nope", 0),
            store.list_events("nope"),
            store.list_transitions("nope"),
            store.acquire_lease("nope", "w", 10),
            store.renew_lease("nope", "w", 1, 10),
            store.put_node_write(None, NodeWrite("nope", 1, "t", "a", "done")),
            store.record_intent("nope", "k", "tool", {}),
            store.record_result("nope", "k", result=1),
            store.prune_checkpoints("nope", 1, Checkpoint("nope", 0, [], [], {})),
        ]
        for call in calls:
            with pytest.raises(RunNotFoundError):
                await call
        await store.delete_run("nope")
        await store.release_lease("nope", 1)
        assert await store.get_node_writes("nope", 1) == []
        assert await store.get_effect("nope", "k") is None
        assert await store.list_effects("nope") == []

    async def test_list_runs_filters_and_order(self, store: RunStore, clock: FakeClock) -> None:
        specs = [
            ("a", "wf1", S.EXECUTING, None),
            ("b", "wf2", S.COMPLETED, None),
            ("c", "wf1", S.ESCALATED, "a"),
            ("d", "wf1", S.PLANNED, "a"),
            ("e", "wf2", S.EXECUTING, None),
        ]
        for run_id, wf, status, parent in specs:
            await create(store, run_id, status=status, workflow=wf, parent_run_id=parent)
            clock.advance(1)
        assert _ids(await store.list_runs()) == ["e", "d", "c", "b", "a"]
        assert _ids(await store.list_runs(status=[S.EXECUTING])) == ["e", "a"]
        assert _ids(await store.list_runs(status=[S.EXECUTING, S.COMPLETED])) == ["e", "b", "a"]
        assert _ids(await store.list_runs(workflow="wf1")) == ["d", "c", "a"]
        assert _ids(await store.list_runs(parent_run_id="a")) == ["d", "c"]
        assert _ids(await store.list_runs(workflow="wf1", status=[S.PLANNED])) == ["d"]
        assert _ids(await store.list_runs(limit=2)) == ["e", "d"]
        assert _ids(await store.list_runs(limit=2, offset=2)) == ["c", "b"]
        assert await store.list_runs(offset=10) == []
        assert await store.list_runs(status=[]) == []
        await create(store, "x1")
        await create(store, "x2")  # same created_at: ties break on run id, newest-first
        assert _ids(await store.list_runs(limit=2)) == ["x2", "x1"]

    async def test_commit_applies_everything(self, store: RunStore, clock: FakeClock) -> None:
        await create(store, "r1", metadata={"a": 1, "b": {"c": 2}})
        lease = await store.acquire_lease("r1", "w1", 30)
        assert lease is not None
        clock.advance(1)
        cp = Checkpoint(
            "r1",
            1,
            [["1:a:0", "a", {"x": 1}]],
            [{"id": "2:b:0", "node": "b"}],
            None,
            {"b": ["a"]},
            meta={"k": "v"},
        )
        commit = Commit(
            checkpoint=cp,
            status=S.VALIDATING,
            transitions=[(S.EXECUTING, S.VALIDATING, "w1", "checking")],
            events=[ev(f"e{i}", i=i) for i in range(4)],
            result={"answer": 42},
            set_result=True,
            error={"type": "X"},
            set_error=True,
            escalation={"kind": "guard"},
            set_escalation=True,
            metadata={"b": 3, "new": [1]},
        )
        run = await store.commit("r1", lease.token, commit)
        assert run == await store.get_run("r1")
        assert (run.status, run.step, run.event_seq) == (S.VALIDATING, 1, 4)
        assert (run.result, run.error, run.escalation) == (
            {"answer": 42},
            {"type": "X"},
            {"kind": "guard"},
        )
        assert run.metadata == {"a": 1, "b": 3, "new": [1]}
        assert (run.owner, run.lease_token, run.lease_expires_at) == (
            "w1",
            lease.token,
            lease.expires_at,
        )
        assert (run.created_at, run.updated_at) == (T0, T0 + 1)
        stored = await store.get_checkpoint("r1", 1)
        assert (stored.delta, stored.next_tasks, stored.barriers, stored.meta) == (
            cp.delta,
            cp.next_tasks,
            cp.barriers,
            cp.meta,
        )
        assert (stored.snapshot, stored.created_at) == (None, T0 + 1)
        assert [(e.seq, e.type, e.data, e.step) for e in await store.list_events("r1")] == [
            (i + 1, f"e{i}", {"i": i}, None) for i in range(4)
        ]
        last = (await store.list_transitions("r1"))[-1]
        assert (last.seq, last.src, last.dst, last.actor, last.reason, last.ts) == (
            len(lifecycle(S.EXECUTING)) + 1,
            S.EXECUTING,
            S.VALIDATING,
            "w1",
            "checking",
            T0 + 1,
        )
        # fields not set are kept; set to None clears; an older checkpoint never lowers step
        again = await store.commit(
            "r1", lease.token, Commit(checkpoint=checkpoint("r1", 0), error=None, set_error=True)
        )
        assert (again.result, again.error, again.step) == ({"answer": 42}, None, 1)
        assert again.escalation == {"kind": "guard"} and again.metadata == run.metadata

    async def test_illegal_transition_rejects_the_whole_commit(self, store: RunStore) -> None:
        await create(store, "r1")
        lease = await store.acquire_lease("r1", "w1", 30)
        assert lease is not None
        await store.put_node_write(lease.token, NodeWrite("r1", 1, "1:a:0", "a", "done", {"x": 1}))
        before = await store.get_run("r1")
        bad = Commit(
            checkpoint=checkpoint("r1", 1),
            status=S.COMPLETED,
            transitions=[(S.EXECUTING, S.COMPLETED, "w1", "")],
            events=[ev()],
            result=1,
            set_result=True,
            metadata={"x": 1},
            clear_node_writes_for_step=1,
        )
        wrong_source = Commit(status=S.EXECUTING, transitions=[(S.PLANNED, S.EXECUTING, "w1", "")])
        for commit in (bad, wrong_source, Commit(status=S.COMPLETED)):
            with pytest.raises(IllegalTransitionError):
                await store.commit("r1", lease.token, commit)
        with pytest.raises(ValueError):
            await store.commit(
                "r1",
                lease.token,
                Commit(status=S.ESCALATED, transitions=[(S.EXECUTING, S.VALIDATING, "w1", "")]),
            )
        assert await store.get_run("r1") == before
        with pytest.raises(StepNotFoundError):
            await store.get_checkpoint("r1", 1)
        assert await store.list_events("r1") == []
        assert len(await store.list_transitions("r1")) == len(lifecycle(S.EXECUTING))
        assert len(await store.get_node_writes("r1", 1)) == 1
        # a status-only change along a legal edge needs no transition list
        run = await store.commit("r1", lease.token, Commit(status=S.VALIDATING))
        assert run.status is S.VALIDATING

    async def test_events_get_consecutive_seqs(self, store: RunStore, clock: FakeClock) -> None:
        await create(store, "r1", events=[ev("created")])
        clock.advance(1)
        given = Event("r1", 50, "b", 0.0, 1, "a", {"x": 1})
        stamped = Event("r1", 50, "c", 42.0, 1, None, {})
        run = await store.commit("r1", None, Commit(events=[given, stamped]))
        assert run.event_seq == 3
        assert (await store.commit("r1", None, Commit())).event_seq == 3
        got = await store.list_events("r1", after_seq=1)
        assert [(e.seq, e.type, e.ts, e.step, e.node, e.data) for e in got] == [
            (2, "b", T0 + 1, 1, "a", {"x": 1}),
            (3, "c", 42.0, 1, None, {}),
        ]
        assert [e.seq for e in await store.list_events("r1", limit=2)] == [1, 2]
        assert [e.seq for e in await store.list_events("r1", after_seq=1, limit=1)] == [2]
        assert await store.list_events("r1", after_seq=3) == []

    async def test_transitions_get_consecutive_seqs(
        self, store: RunStore, clock: FakeClock
    ) -> None:
        await create(store, "r1", status=S.RECEIVED)
        clock.advance(1)
        hops = [(S.RECEIVED, S.PLANNED, "w1", "plan"), (S.PLANNED, S.EXECUTING, "w1", "go")]
        await store.commit("r1", None, Commit(status=S.EXECUTING, transitions=hops))
        clock.advance(1)
        await store.commit(
            "r1",
            None,
            Commit(
                status=S.CANCELLED, transitions=[(S.EXECUTING, S.CANCELLED, "ops", "user asked")]
            ),
        )
        got = [
            (t.seq, t.src, t.dst, t.actor, t.reason, t.ts)
            for t in await store.list_transitions("r1")
        ]
        assert got == [
            (1, None, S.RECEIVED, "api", "submitted", T0),
            (2, S.RECEIVED, S.PLANNED, "w1", "plan", T0 + 1),
            (3, S.PLANNED, S.EXECUTING, "w1", "go", T0 + 1),
            (4, S.EXECUTING, S.CANCELLED, "ops", "user asked", T0 + 2),
        ]

    async def test_values_round_trip(self, store: RunStore) -> None:
        value = {
            "text": "héllo wörld ✓ 日本語 עברית 🎉",
            "esc": 'quote" back\\ nl\n tab\t nul\u0000',
            "nested": {
                "list": [1, 2.5, -3, True, False, None, {"deep": ["x", {"y": []}]}],
                "empty": {},
            },
            "big": 2**62,
            "neg": -(2**62),
            "tiny": 1e-7,
            "huge": 1e300,
            "zero": 0.0,
            "ünï": 1,
        }
        await create(store, "r1", input=value, metadata={"m": value})
        run = await store.commit(
            "r1",
            None,
            Commit(
                checkpoint=Checkpoint(
                    "r1", 1, [["t", "a", value]], [{"v": value}], value, meta=value
                ),
                events=[ev("x", v=value)],
                result=value,
                set_result=True,
                metadata={"m2": value},
            ),
        )
        await store.put_node_write(
            None, NodeWrite("r1", 2, "t", "a", "done", value, [value], value, [value])
        )
        await store.record_intent("r1", "k", "tool", value)
        await store.record_result("r1", "k", result=value)
        for got in (await store.get_run("r1"), run):
            assert (got.input, got.result, got.metadata) == (
                value,
                value,
                {"m": value, "m2": value},
            )
        cp = await store.get_checkpoint("r1", 1)
        assert (cp.delta, cp.next_tasks, cp.snapshot, cp.meta) == (
            [["t", "a", value]],
            [{"v": value}],
            value,
            value,
        )
        assert (await store.list_events("r1"))[0].data == {"v": value}
        (w,) = await store.get_node_writes("r1", 2)
        assert (w.writes, w.goto, w.interrupt, w.resume) == (value, [value], value, [value])
        effect = await store.get_effect("r1", "k")
        assert effect is not None and (effect.request, effect.result) == (value, value)

    async def test_delete_run(self, store: RunStore) -> None:
        await create(store, "r1", idempotency_key="k", events=[ev()])
        await create(store, "r2")
        await store.put_node_write(None, NodeWrite("r1", 1, "t", "a", "done", {}))
        await store.record_intent("r1", "e", "tool", {})
        await store.delete_run("r1")
        with pytest.raises(RunNotFoundError):
            await store.get_run("r1")
        assert await store.get_node_writes("r1", 1) == []
        assert await store.list_effects("r1") == []
        assert _ids(await store.list_runs()) == ["r2"]
        run = RunRecord("r3", "wf", S.RECEIVED, idempotency_key="k")
        _, created = await store.create_run(run, checkpoint("r3", 0), [])
        assert created  # the key is free again
        assert await store.list_events("r3") == []
