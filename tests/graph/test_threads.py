"""Threads: runs that continue a conversation, ``thread_id=`` on start/run/submit."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Required, TypedDict

import pytest
from pydantic import BaseModel, field_validator

from tether import END, START, Graph, Runtime, add, append, interrupt, per_run
from tether.core.errors import IdempotencyConflictError, InvalidInputError, RunStateError
from tether.core.lifecycle import RunStatus
from tether.graph.state_fields import PerRun
from tether.store.memory import MemoryStore
from tether.store.protocol import RunStore

ROOT = Path(__file__).resolve().parents[2]


class Chat(TypedDict, total=False):
    messages: Annotated[list[str], append]
    turns: int
    ask: bool
    fail: bool


def reply(s: Chat) -> dict[str, Any]:
    if s.get("fail"):
        raise ValueError("the model is down")
    if s.get("ask"):
        interrupt("approve?")
    return {"messages": [f"bot: {s['messages'][-1]}"], "turns": s.get("turns", 0) + 1}


g = Graph(Chat, name="chat")
g.add_node("reply", reply).add_edge(START, "reply").add_edge("reply", END)
chat = g.compile()

other = Graph(Chat, name="chat_other")
other.add_node("reply", reply).set_entry_point("reply").set_finish_point("reply")
chat_other = other.compile()


async def test_messages_accumulate_across_runs_and_processes(
    shared_store: Callable[[], RunStore],
) -> None:
    async with Runtime(shared_store(), recover=False) as rt:
        first = await rt.run(chat, {"messages": ["hi"]}, thread_id="t1")
        assert first.state["messages"] == ["hi", "bot: hi"]
        alone = await rt.run(chat, {"messages": ["yo"]}, thread_id="t2")
    async with Runtime(shared_store(), workflows=[chat], recover=False) as rt:
        second = await rt.run(chat, {"messages": ["how are you?"]}, thread_id="t1")
        assert second.state == {
            "messages": ["hi", "bot: hi", "how are you?", "bot: how are you?"],
            "turns": 2,
        }
        rec = await rt.get_run(second.run_id)
        assert rec.metadata["thread_id"] == "t1"
        assert rec.metadata["thread_base"] == first.run_id
        assert rec.input == {"messages": ["how are you?"]}
        listed = await rt.list_runs(thread_id="t1")
        assert [r.run_id for r in listed] == [second.run_id, first.run_id]
        assert [r.run_id for r in await rt.list_runs(thread_id="t2")] == [alone.run_id]
        assert [r.run_id for r in await rt.list_runs(thread_id="t1", offset=1)] == [first.run_id]
        assert await rt.list_runs(thread_id="t1", status=[RunStatus.FAILED]) == []


async def test_an_unfinished_run_blocks_its_thread_until_it_finishes(rt: Runtime) -> None:
    await rt.run(chat, {"messages": ["a"]}, thread_id="t")
    parked = await rt.run(chat, {"messages": ["b"], "ask": True}, thread_id="t")
    assert parked.status is RunStatus.ESCALATED
    with pytest.raises(RunStateError, match=f"unfinished run {parked.run_id} \\(ESCALATED\\)"):
        await rt.run(chat, {"messages": ["c"]}, thread_id="t")
    done = await rt.resume(parked.run_id, "ok")
    assert done.status is RunStatus.COMPLETED
    queued = await rt.submit(chat, {"messages": ["c"], "ask": False}, thread_id="t")
    with pytest.raises(RunStateError, match="PLANNED"):
        await rt.start(chat, {"messages": ["d"], "ask": False}, thread_id="t")
    await rt.cancel(queued.run_id)
    last = await rt.run(chat, {"messages": ["d"], "ask": False}, thread_id="t")
    # the cancelled turn left no mark: d follows the answered turn b
    assert last.state["messages"] == ["a", "bot: a", "b", "bot: b", "d", "bot: d"]


async def test_a_failed_run_leaves_no_mark_on_its_thread(rt: Runtime) -> None:
    await rt.run(chat, {"messages": ["a"]}, thread_id="t")
    bad = await rt.run(chat, {"messages": ["b"], "fail": True}, thread_id="t")
    assert bad.status is RunStatus.FAILED
    good = await rt.run(chat, {"messages": ["c"], "fail": False}, thread_id="t")
    assert good.state["messages"] == ["a", "bot: a", "c", "bot: c"]
    assert good.state["turns"] == 2


def hold_creates_until_both_looked(*stores: RunStore) -> None:
    """Both starters read the thread before either creates its run: the race, made certain."""
    barrier = asyncio.Barrier(2)
    for store in stores:
        original = store.create_run

        async def create_run(*args: Any, _original: Any = original) -> Any:
            await asyncio.wait_for(barrier.wait(), 60)
            return await _original(*args)

        store.create_run = create_run  # type: ignore[method-assign]


async def test_two_processes_cannot_start_one_thread_at_once(
    shared_store: Callable[[], RunStore],
) -> None:
    async with (
        Runtime(shared_store(), recover=False) as a,
        Runtime(shared_store(), recover=False) as b,
    ):
        await a.run(chat, {"messages": ["a"]}, thread_id="t")
        hold_creates_until_both_looked(a.store, b.store)
        outcomes = await asyncio.gather(
            a.submit(chat, {"messages": ["from a"]}, thread_id="t"),
            b.submit(chat, {"messages": ["from b"]}, thread_id="t"),
            return_exceptions=True,
        )
        won = [o for o in outcomes if not isinstance(o, BaseException)]
        lost = [o for o in outcomes if isinstance(o, BaseException)]
        assert len(won) == 1 and len(lost) == 1, outcomes
        assert isinstance(lost[0], RunStateError), lost[0]
        winner = next(iter(won)).run_id
        message = str(lost[0])
        assert "was started on it at the same moment" in message, message
        assert "(another run)" not in message, message  # the winner's id, or no parenthesis
        assert "another run (" not in message or f"({winner})" in message, message
        assert len(await a.list_runs(thread_id="t")) == 2


async def test_the_same_input_twice_at_once_is_refused_too(rt: Runtime) -> None:
    await rt.run(chat, {"messages": ["a"]}, thread_id="t")
    barrier = asyncio.Barrier(2)
    original = rt.store.create_run

    async def create_run(*args: Any) -> Any:
        await asyncio.wait_for(barrier.wait(), 60)
        return await original(*args)

    rt.store.create_run = create_run  # type: ignore[method-assign]
    first, second = await asyncio.gather(
        rt.submit(chat, {"messages": ["same"]}, thread_id="t"),
        rt.submit(chat, {"messages": ["same"]}, thread_id="t"),
        return_exceptions=True,
    )
    assert [isinstance(o, RunStateError) for o in (first, second)].count(True) == 1


async def test_bad_thread_use_is_refused(rt: Runtime) -> None:
    with pytest.raises(InvalidInputError, match="thread_id must be"):
        await rt.run(chat, {"messages": ["a"]}, thread_id="")
    await rt.run(chat, {"messages": ["a"]}, thread_id="t")
    with pytest.raises(RunStateError, match="belongs to workflow 'chat'"):
        await rt.run(chat_other, {"messages": ["a"]}, thread_id="t")
    with pytest.raises(InvalidInputError, match="turns"):
        await rt.run(chat, {"turns": "many"}, thread_id="t")
    assert len(await rt.list_runs(thread_id="t")) == 1  # nothing was stored for them


@pytest.mark.parametrize("near", ["t ", " t", "t\n", "t\u200b", "t\x1b"])
async def test_near_copy_of_a_thread_id_is_refused(rt: Runtime, near: str) -> None:
    """A pasted id with a space or a newline would have started a second conversation."""
    await rt.run(chat, {"messages": ["a"]}, thread_id="t")
    with pytest.raises(InvalidInputError, match=r"spaces around it or a control character.*'t'"):
        await rt.run(chat, {"messages": ["b"]}, thread_id=near)
    assert len(await rt.list_runs()) == 1
    await rt.run(chat, {"messages": ["b"]}, thread_id="my thread")  # spaces inside are fine


def test_cli_lists_a_thread(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'runs.db'}"

    async def populate() -> list[str]:
        async with Runtime(url, recover=False) as rt:
            one = await rt.run(chat, {"messages": ["a"]}, thread_id="conv-1")
            two = await rt.run(chat, {"messages": ["b"]}, thread_id="conv-1")
            await rt.run(chat, {"messages": ["c"]}, thread_id="conv-2")
            await rt.run(chat, {"messages": ["d"]})
            return [two.run_id, one.run_id]

    expected = asyncio.run(populate())
    env = {k: v for k, v in os.environ.items() if not k.startswith("TETHER_")}
    args = ["runs", "list", "--thread", "conv-1", "--store", url, "--json"]
    proc = subprocess.run(
        [sys.executable, "-m", "tether.cli.main", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert [r["run_id"] for r in json.loads(proc.stdout)] == expected


async def test_memory_store_threads() -> None:
    store = MemoryStore()
    for word in ("a", "b", "c"):
        async with Runtime(store, recover=False) as rt:
            r = await rt.run(chat, {"messages": [word]}, thread_id="m")
    assert r.state["turns"] == 3


async def test_a_fork_of_a_thread_run_is_not_a_turn_of_the_thread(rt: Runtime) -> None:
    first = await rt.run(chat, {"messages": ["a"]}, thread_id="t")
    fork = await rt.fork(first.run_id, 0, {"messages": ["forked"]}, execute=False)
    assert "thread_id" not in (await rt.get_run(fork.run_id)).metadata
    assert (await rt.get_run(fork.run_id)).thread_id is None
    assert (await rt.get_run(first.run_id)).thread_id == "t"
    # the fork is PLANNED (unfinished), yet the thread goes on: it is not one of its runs
    second = await rt.run(chat, {"messages": ["b"]}, thread_id="t")
    assert second.state["messages"] == ["a", "bot: a", "b", "bot: b"]
    assert [r.run_id for r in await rt.list_runs(thread_id="t")] == [second.run_id, first.run_id]


async def test_the_base_is_found_behind_many_failed_turns_and_other_runs(
    shared_store: Callable[[], RunStore],
) -> None:
    """The thread's runs are read from the store's thread index page by page: a completed run
    behind more failed turns than the first page holds, and behind other runs, is still found."""
    async with Runtime(shared_store(), recover=False) as rt:
        first = await rt.run(chat, {"messages": ["a"]}, thread_id="t")
        for i in range(7):
            await rt.run(chat, {"messages": [f"x{i}"], "fail": True}, thread_id="t")
            await rt.start(chat, {"messages": ["other"]}, execute=False)
        again = await rt.run(chat, {"messages": ["b"], "fail": False}, thread_id="t")
        assert again.state["messages"] == ["a", "bot: a", "b", "bot: b"]
        assert (await rt.get_run(again.run_id)).metadata["thread_base"] == first.run_id
        runs = await rt.list_runs(thread_id="t", limit=100)
        assert len(runs) == 9 and {r.thread_id for r in runs} == {"t"}


class Notes(BaseModel):
    topic: str
    notes: Annotated[list[str], append] = []
    count: int = 0

    @field_validator("topic")
    @classmethod
    def _tidy(cls, v: str) -> str:
        return v.strip().lower()


def note(s: dict[str, Any]) -> dict[str, Any]:
    return {"notes": [s["topic"]], "count": s["count"] + 1}


pg = Graph(Notes, name="thread_notes")
pg.add_node("note", note).set_entry_point("note").set_finish_point("note")
notes_wf = pg.compile()


async def test_a_pydantic_state_is_validated_when_a_thread_goes_on(rt: Runtime) -> None:
    await rt.run(notes_wf, {"topic": " Leases "}, thread_id="p")
    r = await rt.run(notes_wf, {"topic": " Budgets ", "count": "10"}, thread_id="p")
    assert r.state == {"topic": "budgets", "notes": ["leases", "budgets"], "count": 11}
    with pytest.raises(InvalidInputError, match="count"):
        await rt.run(notes_wf, {"count": "many"}, thread_id="p")


async def test_a_thread_belongs_to_its_tenant(any_rt: Runtime) -> None:
    """Tenant B starting a run on a thread id tenant A uses got a run continuing A's
    conversation (A's messages in B's state, A's run id in its metadata)."""
    rt = any_rt
    acme = await rt.run(chat, {"messages": ["acme's secret"]}, thread_id="t", tenant="acme")
    globex = await rt.run(chat, {"messages": ["hello"]}, thread_id="t", tenant="globex")
    assert globex.state["messages"] == ["hello", "bot: hello"]
    assert (await rt.get_run(globex.run_id)).metadata["thread_base"] is None
    untenanted = await rt.run(chat, {"messages": ["x"]}, thread_id="t")
    assert untenanted.state["messages"] == ["x", "bot: x"]
    # each tenant's thread goes on from its own last run, and blocks only itself
    parked = await rt.run(chat, {"messages": ["q"], "ask": True}, thread_id="t", tenant="globex")
    assert parked.status is RunStatus.ESCALATED
    again = await rt.run(chat, {"messages": ["more"]}, thread_id="t", tenant="acme")
    assert again.state["messages"] == ["acme's secret", "bot: acme's secret", "more", "bot: more"]
    assert (await rt.get_run(again.run_id)).metadata["thread_base"] == acme.run_id
    with pytest.raises(RunStateError, match=parked.run_id):
        await rt.run(chat, {"messages": ["z"]}, thread_id="t", tenant="globex")
    later = await rt.run(chat, {"messages": ["y"]}, thread_id="t")
    assert (await rt.get_run(later.run_id)).metadata["thread_base"] == untenanted.run_id


class Turn(TypedDict, total=False):
    messages: Annotated[list[str], append]
    steps: Annotated[int, add, per_run]
    scratch: Annotated[list[str], per_run, append]
    verdict: Annotated[str, per_run]


def think(s: Turn) -> dict[str, Any]:
    done = s.get("steps", 0) >= 1
    update: dict[str, Any] = {"steps": 1, "scratch": [f"saw {len(s.get('scratch', []))}"]}
    if done:
        update |= {"messages": [f"bot: {s['messages'][-1]}"], "verdict": "answered"}
    return update


tg = Graph(Turn, name="per_run_turn")
tg.add_node("think", think).add_edge(START, "think")
tg.add_conditional_edges("think", lambda s: END if s.get("verdict") else "think", ["think", END])
turn_wf = tg.compile()


async def test_per_run_fields_start_afresh_on_each_run_of_a_thread(any_rt: Runtime) -> None:
    """A loop counter carried over from the thread's last run ended the follow-up's loop at
    once, and its scratch and verdict were the previous run's."""
    first = await any_rt.run(turn_wf, {"messages": ["hi"]}, thread_id="c")
    assert first.state["steps"] == 2 and first.state["scratch"] == ["saw 0", "saw 1"]
    second = await any_rt.run(turn_wf, {"messages": ["again"]}, thread_id="c")
    assert second.state == {
        "messages": ["hi", "bot: hi", "again", "bot: again"],  # carried over, as before
        "steps": 2,
        "scratch": ["saw 0", "saw 1"],
        "verdict": "answered",
    }
    # the input may still set a per-run field for its own run
    third = await any_rt.run(turn_wf, {"messages": ["x"], "steps": 5}, thread_id="c")
    assert third.state["steps"] == 6 and third.state["scratch"] == ["saw 0"]


@dataclass
class Tally:
    seen: Annotated[list[str], append] = field(default_factory=list)
    budget: Annotated[int, PerRun] = 3
    spent: Annotated[int, add, per_run] = 0


def spend_one(s: dict[str, Any]) -> dict[str, Any]:
    return {"seen": [f"{s['budget']}/{s['spent']}"], "spent": 1, "budget": s["budget"] - 1}


dg = Graph(Tally, name="per_run_tally")
dg.add_node("spend", spend_one).add_edge(START, "spend").add_edge("spend", END)
tally_wf = dg.compile()


async def test_per_run_fields_go_back_to_their_defaults(rt: Runtime) -> None:
    await rt.run(tally_wf, {}, thread_id="d")
    second = await rt.run(tally_wf, {}, thread_id="d")
    assert second.state == {"seen": ["3/0", "3/0"], "budget": 2, "spent": 1}


def test_per_run_is_a_marker_not_a_reducer_and_keeps_the_version() -> None:
    class Plain(TypedDict, total=False):
        n: Annotated[int, add]

    class Marked(TypedDict, total=False):
        n: Annotated[int, per_run, add]

    def bump(s: dict[str, Any]) -> dict[str, Any]:
        return {"n": 1}

    built = []
    for schema in (Plain, Marked):
        b = Graph(schema, name="same")
        b.add_node("bump", bump).add_edge(START, "bump").add_edge("bump", END)
        built.append(b.compile())
    plain, marked = built
    assert marked.schema.fields["n"].reducer.name == "add"  # the reducer after the marker
    assert marked.schema.fields["n"].per_run and not plain.schema.fields["n"].per_run
    # a run of a thread does not execute differently: parked runs keep their version
    assert plain.version == marked.version
    assert marked.invoke({"n": 1}) == {"n": 2}


class Asked(TypedDict, total=False):
    question: Required[Annotated[str, per_run]]
    log: Annotated[list[str], append]


asked_g = Graph(Asked, name="per_run_required")
asked_g.add_node("note", lambda s: {"log": [s["question"]]}).add_edge(START, "note")
asked_g.add_edge("note", END)
asked_wf = asked_g.compile()


async def test_a_required_per_run_field_is_asked_of_every_run(rt: Runtime) -> None:
    await rt.run(asked_wf, {"question": "first?"}, thread_id="q")
    with pytest.raises(
        InvalidInputError, match=r"missing required state field\(s\) \['question'\]"
    ):
        await rt.run(asked_wf, {}, thread_id="q")
    again = await rt.run(asked_wf, {"question": "second?"}, thread_id="q")
    assert again.state == {"question": "second?", "log": ["first?", "second?"]}


class Before(TypedDict, total=False):
    messages: Annotated[list[str], append]
    mood: str
    count: str


class After(TypedDict, total=False):
    messages: Annotated[list[str], append]
    count: int


def _chat_of(
    schema: type[Any], fn: Callable[[dict[str, Any]], dict[str, Any]], name: str = "evolving_chat"
) -> Any:
    b = Graph(schema, name=name)
    b.add_node("reply", fn).add_edge(START, "reply").add_edge("reply", END)
    return b.compile()


async def test_a_thread_goes_on_with_the_workflow_as_it_is_now(tmp_path: Path) -> None:
    """After a deploy that changed the state, the thread's old state went into the new run as
    it was: the node failed on a str where the state now says int (and had it had effects,
    they would have run first)."""
    url = f"sqlite:///{tmp_path / 'evolve.db'}"
    before = _chat_of(Before, lambda s: {"messages": ["bot"], "mood": "glad", "count": "one"})
    after = _chat_of(After, lambda s: {"messages": ["bot"], "count": s.get("count", 0) + 1})
    dropped = _chat_of(Before, lambda s: {"messages": ["bot"], "mood": "ok"})
    async with Runtime(url, recover=False) as rt:
        await rt.run(before, {"messages": ["hi"]}, thread_id="typed")
        await rt.run(dropped, {"messages": ["hi"]}, thread_id="dropped")
    async with Runtime(url, recover=False) as rt:
        with pytest.raises(InvalidInputError, match=r"'count' = 'one', which does not fit int"):
            await rt.run(after, {"messages": ["again"]}, thread_id="typed")
        assert len(await rt.list_runs(thread_id="typed")) == 1  # refused before any run
        # a field the workflow no longer has is left behind; the rest carries over
        res = await rt.run(after, {"messages": ["again"]}, thread_id="dropped")
        assert res.state == {"messages": ["hi", "bot", "again", "bot"], "count": 1}


@dataclass
class Order:
    id: int
    items: tuple[str, ...]


class Kept(TypedDict, total=False):
    order: Order
    pair: tuple[int, int]
    note: str
    turns: Annotated[int, add]


class Defaults:
    label: str = None  # type: ignore[assignment]  # a sloppy default, the class's own
    turns: Annotated[int, add] = 0


def _turn(s: dict[str, Any]) -> dict[str, Any]:
    return {"turns": 1}


async def test_stored_values_fit_their_types_as_json(rt: Runtime) -> None:
    """A tuple is kept as a list, a dataclass as an object: the thread still goes on."""
    kept = _chat_of(Kept, _turn, "kept_chat")
    start = {"order": Order(7, ("pen",)), "pair": (1, 2), "note": "x"}
    await rt.run(kept, start, thread_id="kept")
    again = await rt.run(kept, {}, thread_id="kept")
    assert again.state["turns"] == 2 and again.state["pair"] == [1, 2]
    loose = _chat_of(Defaults, _turn, "loose_chat")
    await rt.run(loose, {}, thread_id="loose")
    assert (await rt.run(loose, {}, thread_id="loose")).state == {"label": None, "turns": 2}


async def test_a_turn_sent_again_with_its_key_is_not_a_second_turn(
    shared_store: Callable[[], RunStore],
) -> None:
    """A client that retried a turn after a timeout (it had gone through) added its message to
    the conversation twice; idempotency_key was refused with thread_id, so nothing could say
    it was the same turn."""
    async with Runtime(shared_store(), workflows=[chat], recover=False) as rt:
        first = await rt.run(chat, {"messages": ["hi"]}, thread_id="k", idempotency_key="turn-1")
        again = await rt.start(chat, {"messages": ["hi"]}, thread_id="k", idempotency_key="turn-1")
        assert again.run_id == first.run_id and not again.created
        nxt = await rt.run(chat, {"messages": ["next"]}, thread_id="k", idempotency_key="turn-2")
        assert nxt.state["messages"] == ["hi", "bot: hi", "next", "bot: next"]
        # the first turn's retry still finds its run behind the newer one
        late = await rt.start(chat, {"messages": ["hi"]}, thread_id="k", idempotency_key="turn-1")
        assert late.run_id == first.run_id
        with pytest.raises(IdempotencyConflictError, match="turn-2"):
            await rt.start(chat, {"messages": ["other"]}, thread_id="k", idempotency_key="turn-2")
        with pytest.raises(IdempotencyConflictError, match="workflow"):  # not chat's run back
            await rt.start(
                chat_other, {"messages": ["hi"]}, thread_id="k", idempotency_key="turn-1"
            )
        assert len(await rt.list_runs(thread_id="k")) == 2
        # keys are per thread and per tenant: the same key elsewhere is a new turn
        other = await rt.run(chat, {"messages": ["hi"]}, thread_id="k2", idempotency_key="turn-1")
        assert other.run_id != first.run_id
        theirs = await rt.run(
            chat, {"messages": ["hi"]}, thread_id="k", idempotency_key="turn-1", tenant="acme"
        )
        assert theirs.run_id != first.run_id and theirs.state["messages"] == ["hi", "bot: hi"]


async def test_a_turn_sent_twice_at_once_starts_once(shared_store: Callable[[], RunStore]) -> None:
    """Two processes sending the same turn at the same moment: one starts it, the other gets
    that run back (not RunStateError, not a second turn)."""
    async with (
        Runtime(shared_store(), workflows=[chat], recover=False) as a,
        Runtime(shared_store(), workflows=[chat], recover=False) as b,
    ):
        await a.run(chat, {"messages": ["hi"]}, thread_id="race")
        for n in range(3):
            msg, key = {"messages": [f"again {n}"]}, f"r{n}"
            got = await asyncio.gather(
                a.start(chat, msg, thread_id="race", idempotency_key=key, execute=False),
                b.start(chat, msg, thread_id="race", idempotency_key=key, execute=False),
            )
            assert got[0].run_id == got[1].run_id
            assert sorted(h.created for h in got) == [False, True]
            assert (await a.get_run(got[0].run_id)).metadata["thread_request"] == key
            await a.cancel(got[0].run_id)  # the thread goes on from its last completed run
