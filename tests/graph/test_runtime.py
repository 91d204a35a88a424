"""The Runtime end to end on the memory store: nodes, routing, fan-out, subgraphs, interrupts,
effects, limits, retries, re-plans, cancel, idempotency, lifecycle, events, time travel."""

from __future__ import annotations

import asyncio
import itertools
from collections import Counter
from pathlib import Path
from typing import Annotated, Any, TypedDict

import pytest

from tether import (
    END,
    START,
    Command,
    ConfigurationError,
    Graph,
    GraphDefinitionError,
    IdempotencyConflictError,
    InvalidInputError,
    RetryPolicy,
    RunContext,
    RunFailedError,
    RunResult,
    RunStateError,
    RunStatus,
    Runtime,
    Send,
    SnapshotPolicy,
    SyncRuntime,
    add,
    append,
    interrupt,
    merge,
)
from tether.graph.history import replay
from tether.store.memory import MemoryStore

S_ = RunStatus


class S(TypedDict):
    n: int
    log: Annotated[list[str], append]


class Fan(TypedDict):
    items: list[int]
    results: Annotated[list[int], append]
    total: int


def err(res: RunResult) -> dict[str, Any]:
    assert res.error is not None
    return res.error


async def transitions(rt: Runtime, run_id: str) -> list[tuple[str | None, str]]:
    return [
        (t.src.value if t.src else None, t.dst.value)
        for t in await rt.store.list_transitions(run_id)
    ]


# -- nodes -------------------------------------------------------------------------------


async def test_sync_async_and_ctx_nodes(rt: Runtime) -> None:
    seen: list[tuple[str, str, int, str]] = []

    def sync_plain(s: Any) -> dict[str, Any]:
        return {"n": s["n"] + 1, "log": "sync_plain"}

    async def async_plain(s: Any) -> dict[str, Any]:
        await asyncio.sleep(0)
        return {"n": s["n"] * 10, "log": "async_plain"}

    def sync_ctx(s: Any, ctx: RunContext) -> dict[str, Any]:
        seen.append((ctx.node, ctx.task_id, ctx.step, ctx.workflow))
        return {"log": f"sync_ctx@{ctx.step}"}

    async def async_ctx(s: Any, ctx: RunContext) -> None:
        seen.append((ctx.node, ctx.task_id, ctx.step, ctx.workflow))
        assert ctx.run_id == s_run_id[0]
        assert ctx.attempt == 1

    def threaded(s: Any) -> dict[str, Any]:
        return {"log": "threaded"}

    g = Graph(S, name="kinds")
    g.add_node("sync_plain", sync_plain).add_node("async_plain", async_plain)
    g.add_node("sync_ctx", sync_ctx).add_node("async_ctx", async_ctx)
    g.add_node("threaded", threaded, thread=True)
    g.add_edge(START, "sync_plain").add_edge("sync_plain", "async_plain")
    g.add_edge("async_plain", "sync_ctx").add_edge("sync_ctx", "async_ctx")
    g.add_edge("async_ctx", "threaded").add_edge("threaded", END)
    s_run_id: list[str] = []
    handle = await rt.start(g.compile(), {"n": 1})
    s_run_id.append(handle.run_id)
    res = await handle.wait()
    assert res.status is S_.COMPLETED
    assert res.state == {
        "n": 20,
        "log": ["sync_plain", "async_plain", "sync_ctx@3", "threaded"],
    }
    assert res.step == 5
    assert seen == [
        ("sync_ctx", "3:sync_ctx:0", 3, "kinds"),
        ("async_ctx", "4:async_ctx:0", 4, "kinds"),
    ]
    assert await handle.result() == res.state


async def test_nodes_see_read_only_state(rt: Runtime) -> None:
    def mutate(s: Any) -> None:
        s["n"] = 99

    g = Graph(S, name="ro")
    g.add_node("m", mutate).add_edge(START, "m")
    res = await rt.run(g.compile(), {"n": 1})
    assert res.status is S_.FAILED
    assert err(res)["type"] == "TypeError"
    assert await rt.get_state(res.run_id) == {"n": 1, "log": []}


async def test_cycle_with_counter(rt: Runtime) -> None:
    g = Graph(S, name="loop")
    g.add_node("inc", lambda s: {"n": s["n"] + 1, "log": str(s["n"])})
    g.add_edge(START, "inc")
    g.add_conditional_edges("inc", lambda s: "inc" if s["n"] < 7 else END, ["inc", END])
    res = await rt.run(g.compile(), {"n": 0})
    assert res.status is S_.COMPLETED
    assert res.state == {"n": 7, "log": ["0", "1", "2", "3", "4", "5", "6"]}
    assert res.step == 7
    assert [h.tasks for h in await rt.history(res.run_id)] == [[]] + [
        [f"{i}:inc:0"] for i in range(1, 8)
    ]


async def test_conditional_routing(rt: Runtime) -> None:
    g = Graph(S, name="route")
    g.add_node("classify", lambda s: None)
    g.add_node("small", lambda s: {"log": "small"}).add_node("big", lambda s: {"log": "big"})
    g.add_edge(START, "classify").add_edge("small", END).add_edge("big", END)
    g.add_conditional_edges(
        "classify", lambda s: "big" if s["n"] >= 10 else "small", ["small", "big"]
    )
    wf = g.compile()
    assert (await rt.run(wf, {"n": 3})).state["log"] == ["small"]
    assert (await rt.run(wf, {"n": 30})).state["log"] == ["big"]


async def test_send_fan_out_and_join(rt: Runtime) -> None:
    order: list[int] = []

    async def work(x: int) -> dict[str, Any]:
        await asyncio.sleep(0.001 * (5 - x))  # finish out of order
        order.append(x)
        return {"results": x * x}

    def other(s: Any) -> dict[str, Any]:
        return {"results": -1}

    g = Graph(Fan, name="fan")
    g.add_node("split", lambda s: None).add_node("work", work).add_node("other", other)
    g.add_node("join", lambda s: {"total": sum(s["results"])})
    g.add_edge(START, "split").add_edge("split", "other")
    g.add_conditional_edges("split", lambda s: [Send("work", i) for i in s["items"]])
    g.add_edge(["work", "other"], "join").add_edge("join", END)
    res = await rt.run(g.compile(), {"items": [1, 2, 3, 4]})
    assert res.status is S_.COMPLETED
    # writes are applied in task order, whatever order the tasks finished in
    assert order == [4, 3, 2, 1]
    assert res.state == {"items": [1, 2, 3, 4], "results": [-1, 1, 4, 9, 16], "total": 29}
    hist = await rt.history(res.run_id)
    assert hist[1].tasks == ["1:split:0"]
    assert hist[2].tasks == ["2:other:0", "2:work:0", "2:work:1", "2:work:2", "2:work:3"]
    assert hist[3].tasks == ["3:join:0"]
    assert res.step == 3


async def test_join_waits_across_steps(rt: Runtime) -> None:
    g = Graph(S, name="join2")
    g.add_node("fast", lambda s: {"log": "fast"}).add_node("slow1", lambda s: {"log": "slow1"})
    g.add_node("slow2", lambda s: {"log": "slow2"})
    g.add_node("join", lambda s: {"log": "join", "n": len(s["log"])})
    g.add_edge(START, "fast").add_edge(START, "slow1").add_edge("slow1", "slow2")
    g.add_edge(["fast", "slow2"], "join").add_edge("join", END)
    res = await rt.run(g.compile(), {"n": 0})
    assert res.state == {"n": 3, "log": ["fast", "slow1", "slow2", "join"]}
    hist = await rt.history(res.run_id)
    assert [h.tasks for h in hist] == [[], ["1:fast:0", "1:slow1:0"], ["2:slow2:0"], ["3:join:0"]]


async def test_command_update_and_goto(rt: Runtime) -> None:
    def decide(s: Any) -> Command:
        if s["n"] < 3:
            return Command(update={"n": s["n"] + 1, "log": "again"}, goto="decide")
        return Command(update={"log": "done"}, goto=["finish", Send("echo", "hi")])

    g = Graph(S, name="cmd")
    g.add_node("decide", decide).add_node("finish", lambda s: {"log": "finish"})
    g.add_node("echo", lambda arg: {"log": f"echo:{arg}"})
    g.add_edge(START, "decide")
    # nodes reached only through Command.goto: an undeclared route marks the graph dynamic
    g.add_conditional_edges("decide", lambda s: [])
    res = await rt.run(g.compile(), {"n": 0})
    assert res.status is S_.COMPLETED
    assert res.state == {"n": 3, "log": ["again", "again", "again", "done", "finish", "echo:hi"]}


async def test_command_goto_end_and_none_update(rt: Runtime) -> None:
    g = Graph(S, name="cmd_end")
    g.add_node("a", lambda s: Command(goto=END)).add_node("b", lambda s: {"log": "b"})
    g.add_edge(START, "a").add_edge("a", "b")
    res = await rt.run(g.compile(), {"n": 0})
    assert res.state == {"n": 0, "log": ["b"]}  # static edges still apply; END adds nothing


# -- subgraphs ---------------------------------------------------------------------------


class Parent(TypedDict):
    topic: str
    notes: Annotated[list[str], append]
    score: int


class Child(TypedDict):
    topic: str
    notes: Annotated[list[str], append]
    draft: str


def child_graph(ask: bool) -> Any:
    def review(s: Any) -> dict[str, Any]:
        verdict = interrupt({"draft": s["draft"]}) if ask else "auto"
        return {"notes": f"review:{verdict}", "draft": "final"}

    c = Graph(Child, name=f"child_{ask}")
    c.add_node("research", lambda s: {"notes": f"about {s['topic']}", "draft": "d1"})
    c.add_node("review", review)
    c.add_edge(START, "research").add_edge("research", "review").add_edge("review", END)
    return c.compile()


def parent_graph(child: Any, name: str) -> Any:
    p = Graph(Parent, name=name)
    p.add_node("sub", child).add_node("score", lambda s: {"score": len(s["notes"])})
    p.add_edge(START, "sub").add_edge("sub", "score").add_edge("score", END)
    return p.compile()


async def test_subgraph_writes_fold_into_parent(rt: Runtime) -> None:
    wf = parent_graph(child_graph(ask=False), "parent_auto")
    res = await rt.run(wf, {"topic": "bees", "notes": ["start"]})
    assert res.status is S_.COMPLETED
    # child fields the parent lacks ("draft") stay in the child; input fields are not re-written
    assert res.state == {
        "topic": "bees",
        "notes": ["start", "about bees", "review:auto"],
        "score": 3,
    }
    hist = await rt.history(res.run_id)
    assert hist[1].writes == [
        {"task_id": "1:sub:0", "node": "sub", "writes": {"notes": ["about bees", "review:auto"]}}
    ]
    child = await rt.get_run(f"{res.run_id}.1:sub:0")
    assert child.status is S_.COMPLETED
    assert child.parent_run_id == res.run_id
    assert child.workflow == "child_False"
    assert await rt.get_state(child.run_id) == {
        "topic": "bees",
        "notes": ["start", "about bees", "review:auto"],
        "draft": "final",
    }


async def test_a_subgraph_run_is_its_parents_tenant_and_queue(rt: Runtime) -> None:
    """Child runs were started with no tenant, in the default queue: their parent's tenant
    could not see them (or their events) and its limits did not count them."""
    wf = parent_graph(child_graph(ask=False), "parent_tenant")
    res = await rt.run(wf, {"topic": "bees", "notes": []}, tenant="acme", queue="q1", priority=7)
    child = await rt.get_run(f"{res.run_id}.1:sub:0")
    assert (child.tenant, child.queue, child.priority) == ("acme", "q1", 7)
    assert [r.run_id for r in await rt.list_runs(tenant="acme")] == [child.run_id, res.run_id]


async def test_a_child_started_under_the_earlier_id_form_is_continued(
    rt: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Children used to be ``{parent}/{task}``; a run started before URL-safe child ids finds
    its child there after an upgrade instead of starting (and paying for) a second one."""
    child_wf = child_graph(ask=False)
    wf = parent_graph(child_wf, "parent_legacy")
    with monkeypatch.context() as older:  # an older tether took any run id
        older.setattr("tether.graph.runtime.check_run_id", lambda name, value: None)
        await rt.run(child_wf, {"topic": "wasps", "notes": []}, run_id="p1/1:sub:0")
    res = await rt.run(wf, {"topic": "bees", "notes": []}, run_id="p1")
    assert res.state["notes"] == ["about wasps", "review:auto"]  # the legacy child's writes
    assert [r.run_id for r in await rt.list_runs()] == ["p1", "p1/1:sub:0"]


@pytest.mark.parametrize("bad", ["", ".", "..", "order 1234", "a/b", "x" * 201, "é", 7])
async def test_a_run_id_the_http_api_cannot_reach_is_refused(rt: Runtime, bad: Any) -> None:
    """start(run_id=...) and fork(new_run_id=...) stored any string: a 5,000-character id, or
    one with a space or a slash, made a run no /v1/runs/{id} could reach."""
    wf = child_graph(ask=False)
    with pytest.raises(InvalidInputError, match="is no run id"):
        await rt.start(wf, {"topic": "t", "notes": []}, run_id=bad)
    done = await rt.run(wf, {"topic": "t", "notes": []}, run_id="ok-1:a.b@c_d")
    with pytest.raises(InvalidInputError, match="is no run id"):
        await rt.fork(done.run_id, 1, new_run_id=bad)
    assert [r.run_id for r in await rt.list_runs()] == ["ok-1:a.b@c_d"]


async def test_interrupt_inside_subgraph_surfaces_on_parent(rt: Runtime) -> None:
    wf = parent_graph(child_graph(ask=True), "parent_ask")
    res = await rt.run(wf, {"topic": "bees", "notes": []})
    assert res.status is S_.ESCALATED
    assert res.interrupts == [
        {
            "id": "1:sub:0#0",
            "task_id": "1:sub:0",
            "node": "sub",
            "index": 0,
            "payload": {"draft": "d1"},
        }
    ]
    child_id = f"{res.run_id}.1:sub:0"
    assert (await rt.get_run(child_id)).status is S_.ESCALATED
    res = await rt.resume(res.run_id, "ship it")
    assert isinstance(res, RunResult)
    assert res.status is S_.COMPLETED
    assert res.state == {"topic": "bees", "notes": ["about bees", "review:ship it"], "score": 2}
    assert (await rt.get_run(child_id)).status is S_.COMPLETED


def two_reviews_child() -> Any:
    def review(s: Any) -> dict[str, Any]:
        return {"notes": f"legal:{interrupt({'review': 'legal'})}"}

    def second(s: Any) -> dict[str, Any]:
        return {"notes": f"brand:{interrupt({'review': 'brand'})}"}

    c = Graph(Child, name="child_two_reviews")
    c.add_node("legal", review).add_node("brand", second)
    c.add_edge(START, "legal").add_edge("legal", "brand").add_edge("brand", END)
    return c.compile()


async def test_each_subgraph_question_gets_its_own_answer(rt: Runtime) -> None:
    """The child asks twice in turn: the parent's second answer goes to the second question
    (a re-run of the parent's node meets the second question first; it must not be handed the
    first answer again)."""
    wf = parent_graph(two_reviews_child(), "parent_two_reviews")
    res = await rt.run(wf, {"topic": "bees", "notes": []})
    assert [i["payload"] for i in res.interrupts] == [{"review": "legal"}]
    res = await rt.resume(res.run_id, "ok by legal")
    assert [i["payload"] for i in res.interrupts] == [{"review": "brand"}]
    res = await rt.resume(res.run_id, "ok by brand")
    assert res.status is S_.COMPLETED
    assert res.state["notes"] == ["legal:ok by legal", "brand:ok by brand"]


async def test_failing_subgraph_fails_the_parent(rt: Runtime) -> None:
    def boom(s: Any) -> None:
        raise ValueError("child broke")

    c = Graph(Child, name="bad_child")
    c.add_node("boom", boom).add_edge(START, "boom")
    wf = parent_graph(c.compile(), "parent_of_bad")
    res = await rt.run(wf, {"topic": "x"})
    assert res.status is S_.FAILED
    assert err(res)["type"] == "RunFailedError"
    assert err(res)["node"] == "sub"
    assert "child broke" in err(res)["message"]
    assert (await rt.get_run(f"{res.run_id}.1:sub:0")).status is S_.FAILED


def _concat(cur: Any, upd: Any) -> Any:
    return (cur or "") + upd


class ConcatParent(TypedDict):
    text: Annotated[str, _concat]


def test_subgraph_sharing_a_custom_reducer_field_is_refused_at_build_time() -> None:
    c = Graph(ConcatParent, name="concat_child")
    c.add_node("a", lambda s: {"text": "A"}).add_node("b", lambda s: {"text": "B"})
    c.add_edge(START, "a").add_edge("a", "b")
    p = Graph(ConcatParent, name="concat_parent")
    with pytest.raises(GraphDefinitionError, match=r"shares field 'text'.*custom function"):
        p.add_node("sub", c.compile())


# -- interrupts ----------------------------------------------------------------------------


async def test_interrupt_then_resume_completes(rt: Runtime) -> None:
    runs = Counter[str]()

    def ask(s: Any) -> dict[str, Any]:
        runs["ask"] += 1
        name = interrupt({"question": "name?"})
        return {"log": f"hello {name}"}

    g = Graph(S, name="ask1")
    g.add_node("before", lambda s: {"n": 1}).add_node("ask", ask)
    g.add_node("after", lambda s: {"log": "after"})
    g.add_edge(START, "before").add_edge("before", "ask").add_edge("ask", "after")
    res = await rt.run(g.compile(), {"n": 0})
    assert res.status is S_.ESCALATED
    assert res.step == 1
    assert res.state == {"n": 1, "log": []}
    assert res.escalation is not None
    assert res.escalation["kind"] == "interrupt"
    assert res.escalation["step"] == 2
    assert res.interrupts == [
        {
            "id": "2:ask:0#0",
            "task_id": "2:ask:0",
            "node": "ask",
            "index": 0,
            "payload": {"question": "name?"},
        }
    ]
    with pytest.raises(RunStateError, match="is ESCALATED, not COMPLETED"):
        res.unwrap()
    run = await rt.get_run(res.run_id)
    assert run.status is S_.ESCALATED and run.owner is None  # parked: nobody holds it

    with pytest.raises(InvalidInputError, match="resume it with a value"):
        await rt.resume(res.run_id)
    with pytest.raises(InvalidInputError, match=r"unknown: \['nope'\]"):
        await rt.resume(res.run_id, answers={"2:ask:0#0": "x", "nope": 1})

    done = await rt.resume(res.run_id, "ada")
    assert isinstance(done, RunResult)
    assert done.status is S_.COMPLETED
    assert done.state == {"n": 1, "log": ["hello ada", "after"]}
    assert done.escalation is None and done.interrupts == []
    assert runs["ask"] == 2
    assert await transitions(rt, res.run_id) == [
        (None, "RECEIVED"),
        ("RECEIVED", "PLANNED"),
        ("PLANNED", "EXECUTING"),
        ("EXECUTING", "ESCALATED"),
        ("ESCALATED", "EXECUTING"),
        ("EXECUTING", "VALIDATING"),
        ("VALIDATING", "COMPLETED"),
    ]
    with pytest.raises(RunStateError, match="only ESCALATED or FAILED runs can be resumed"):
        await rt.resume(res.run_id, "again")


async def test_node_interrupting_twice_needs_two_resumes(rt: Runtime) -> None:
    def form(s: Any) -> dict[str, Any]:
        name = interrupt("name?")
        city = interrupt("city?")
        return {"log": [name, city]}

    g = Graph(S, name="ask2")
    g.add_node("form", form).add_edge(START, "form")
    res = await rt.run(g.compile(), {"n": 0})
    assert [(i["id"], i["payload"]) for i in res.interrupts] == [("1:form:0#0", "name?")]
    res2 = await rt.resume(res.run_id, "ada")
    assert isinstance(res2, RunResult)
    assert res2.status is S_.ESCALATED
    assert [(i["id"], i["payload"]) for i in res2.interrupts] == [("1:form:0#1", "city?")]
    res3 = await rt.resume(res.run_id, "london")
    assert isinstance(res3, RunResult)
    assert res3.status is S_.COMPLETED
    assert res3.state["log"] == ["ada", "london"]


async def test_parallel_interrupts_are_answered_together(rt: Runtime) -> None:
    def asker(tag: str) -> Any:
        def node(s: Any) -> dict[str, Any]:
            return {"log": f"{tag}={interrupt(tag)}"}

        return node

    g = Graph(S, name="ask_par")
    g.add_node("left", asker("L")).add_node("right", asker("R"))
    g.add_edge(START, "left").add_edge(START, "right")
    res = await rt.run(g.compile(), {"n": 0})
    assert res.status is S_.ESCALATED
    ids = [i["id"] for i in res.interrupts]
    assert ids == ["1:left:0#0", "1:right:0#0"]
    assert [i["payload"] for i in res.interrupts] == ["L", "R"]
    with pytest.raises(InvalidInputError, match="has 2 pending interrupts"):
        await rt.resume(res.run_id, "one value for both")
    with pytest.raises(InvalidInputError, match=r"missing: \['1:right:0#0'\]"):
        await rt.resume(res.run_id, answers={"1:left:0#0": "x"})
    assert (await rt.get_run(res.run_id)).status is S_.ESCALATED  # the bad calls changed nothing
    done = await rt.resume(res.run_id, answers={"1:right:0#0": "r", "1:left:0#0": "l"})
    assert isinstance(done, RunResult)
    assert done.status is S_.COMPLETED
    assert done.state["log"] == ["L=l", "R=r"]


async def test_effects_before_an_interrupt_run_once(rt: Runtime) -> None:
    calls = Counter[str]()

    async def charge(amount: int) -> dict[str, Any]:
        calls["charge"] += 1
        return {"charged": amount}

    def notify() -> str:
        calls["notify"] += 1
        return "sent"

    async def pay(s: Any, ctx: RunContext) -> dict[str, Any]:
        calls["node"] += 1
        receipt = await ctx.effect("charge", charge, 30)
        sent = await ctx.effect("notify", notify)
        ok = interrupt({"receipt": receipt})
        again = await ctx.effect("charge", charge, 30)  # a second call: its own key
        return {"log": [f"{receipt['charged']}", sent, ok, str(again == receipt)]}

    g = Graph(S, name="pay")
    g.add_node("pay", pay).add_edge(START, "pay")
    res = await rt.run(g.compile(), {"n": 0})
    assert res.status is S_.ESCALATED
    assert res.interrupts[0]["payload"] == {"receipt": {"charged": 30}}
    assert calls == {"node": 1, "charge": 1, "notify": 1}
    done = await rt.resume(res.run_id, "approved")
    assert isinstance(done, RunResult)
    assert done.status is S_.COMPLETED
    assert done.state["log"] == ["30", "sent", "approved", "True"]
    # the node re-ran; the effects before the interrupt did not; the one after ran once
    assert calls == {"node": 2, "charge": 2, "notify": 1}
    effects = await rt.store.list_effects(res.run_id)
    assert sorted(e.key for e in effects) == [
        f"{res.run_id}:1:pay:0:effect:charge:0",
        f"{res.run_id}:1:pay:0:effect:charge:1",
        f"{res.run_id}:1:pay:0:effect:notify:0",
    ]
    assert all(e.status == "done" for e in effects)
    replayed = [e for e in await rt.store.list_events(res.run_id) if e.type == "effect_replayed"]
    # on the resumed run: charge and notify replayed; the second "charge" call has its own key
    assert [e.data["key"] for e in replayed] == [
        f"{res.run_id}:1:pay:0:effect:charge:0",
        f"{res.run_id}:1:pay:0:effect:notify:0",
    ]
    assert all(e.node == "pay" and e.step == 1 for e in replayed)


async def test_repeated_effect_names_are_numbered_per_call(rt: Runtime) -> None:
    sent: list[str] = []

    def send(to: str) -> str:
        sent.append(to)
        return f"sent:{to}"

    async def mail(s: Any, ctx: RunContext) -> dict[str, Any]:
        out = [await ctx.effect("email", send, to) for to in ("a", "b", "c")]
        ok = interrupt("confirm")
        return {"log": [*out, ok]}

    g = Graph(S, name="mail")
    g.add_node("mail", mail).add_edge(START, "mail")
    res = await rt.run(g.compile(), {"n": 0})
    assert sent == ["a", "b", "c"]
    done = await rt.resume(res.run_id, "ok")
    assert isinstance(done, RunResult)
    assert done.state["log"] == ["sent:a", "sent:b", "sent:c", "ok"]
    assert sent == ["a", "b", "c"]  # replayed, not re-sent
    assert sorted(e.key for e in await rt.store.list_effects(res.run_id)) == [
        f"{res.run_id}:1:mail:0:effect:email:{i}" for i in range(3)
    ]


# -- limits, retries, re-plans ------------------------------------------------------------


def counter_graph(name: str, until: int) -> Any:
    g = Graph(S, name=name)
    g.add_node("inc", lambda s: {"n": s["n"] + 1, "log": str(s["n"] + 1)})
    g.add_edge(START, "inc")
    g.add_conditional_edges("inc", lambda s: "inc" if s["n"] < until else END, ["inc", END])
    return g.compile()


async def test_step_limit_escalates_and_resume_grants_more_steps(rt: Runtime) -> None:
    wf = counter_graph("limited", 12)
    res = await rt.run(wf, {"n": 0}, max_steps=5)
    assert res.status is S_.ESCALATED
    assert res.escalation is not None
    assert res.escalation["kind"] == "step_limit"
    assert res.escalation["step"] == 6
    assert "step limit reached (5 steps)" in res.escalation["reason"]
    assert res.interrupts == []
    assert res.step == 5
    assert res.state == {"n": 5, "log": ["1", "2", "3", "4", "5"]}
    assert await rt.get_state(res.run_id) == res.state  # state intact and durable

    res2 = await rt.resume(res.run_id, max_steps=3)
    assert isinstance(res2, RunResult)
    assert res2.status is S_.ESCALATED
    assert res2.step == 8 and res2.state["n"] == 8

    res3 = await rt.resume(res.run_id)  # grants the runtime's default (max_steps=1000)
    assert isinstance(res3, RunResult)
    assert res3.status is S_.COMPLETED
    assert res3.state == {"n": 12, "log": [str(i) for i in range(1, 13)]}
    assert (await rt.get_run(res.run_id)).metadata["step_limit"] == 5 + 3 + 1000
    reasons = [
        t.reason for t in await rt.store.list_transitions(res.run_id) if t.src is S_.ESCALATED
    ]
    assert reasons == ["granted 3 more steps", "granted 1000 more steps"]


@pytest.mark.parametrize("bad", [-5, 0, "3", True, 2.5])
async def test_a_step_grant_that_is_no_whole_number_of_steps_is_refused(
    rt: Runtime, bad: Any
) -> None:
    # -5 lowered the run's limit ('step limit reached (-3 steps)'), '3' was a TypeError, and 0
    # quietly granted the runtime's default
    res = await rt.run(counter_graph("grant", 12), {"n": 0}, max_steps=2)
    with pytest.raises(InvalidInputError, match="max_steps must be an int >= 1"):
        await rt.resume(res.run_id, max_steps=bad)
    run = await rt.get_run(res.run_id)
    assert run.status is S_.ESCALATED and run.metadata["step_limit"] == 2 and run.owner is None


async def test_runtime_default_step_limit() -> None:
    async with Runtime(MemoryStore(), recover=False, max_steps=4) as rt:
        res = await rt.run(counter_graph("deflimit", 100), {"n": 0})
        assert res.status is S_.ESCALATED and res.state["n"] == 4
    async with Runtime(MemoryStore(), recover=False) as rt:
        for bad in (0, float("nan"), 2.5, True):  # NaN was taken and broke the run's steps
            with pytest.raises(InvalidInputError, match="max_steps must be an int >= 1"):
                await rt.start(counter_graph("deflimit", 1), {"n": 0}, max_steps=bad)  # type: ignore[arg-type]
        assert await rt.list_runs() == []


@pytest.mark.parametrize(
    ("setting", "fragment"),
    [
        ({"lease_ttl": float("nan")}, "lease_ttl must be a finite number of seconds > 0"),
        ({"lease_ttl": float("inf")}, "lease_ttl must be a finite number of seconds > 0"),
        ({"lease_ttl": 0}, "lease_ttl must be a finite"),
        ({"poll_interval": float("nan")}, "poll_interval must be a finite"),
        ({"poll_interval": -1}, "poll_interval must be a finite"),
        ({"max_steps": float("nan")}, "max_steps must be an int"),
        ({"max_steps": 0}, "max_steps must be >= 1"),
        ({"max_concurrent_runs": 0}, "max_concurrent_runs must be >= 1"),
    ],
)
def test_runtime_settings_that_would_misbehave_silently_are_refused(
    setting: dict[str, Any], fragment: str, tmp_path: Path
) -> None:
    """A NaN lease is never expired nor live in the store's comparisons, an infinite one is
    never taken over: before, both were taken. Refused before the store is opened."""
    db = tmp_path / "never.db"
    with pytest.raises(ConfigurationError, match=fragment):
        Runtime(f"sqlite:///{db}", **setting)
    assert not db.exists()


def flaky_graph(name: str, fail_times: int, policy: RetryPolicy, exc: type[Exception]) -> Any:
    attempts: list[int] = []

    def flaky(s: Any, ctx: RunContext) -> dict[str, Any]:
        attempts.append(ctx.attempt)
        if len(attempts) <= fail_times:
            raise exc(f"attempt {ctx.attempt} failed")
        return {"log": f"ok@{ctx.attempt}"}

    g = Graph(S, name=name)
    g.add_node("flaky", flaky, retry=policy).add_edge(START, "flaky")
    wf = g.compile()
    wf.graph.nodes["flaky"].metadata["attempts"] = attempts
    return wf


FAST = {"initial_interval": 0.0, "jitter": False}


async def test_retry_succeeds_on_third_attempt(rt: Runtime) -> None:
    wf = flaky_graph("flaky_ok", 2, RetryPolicy(max_attempts=3, **FAST), ConnectionError)
    res = await rt.run(wf, {"n": 0})
    assert res.status is S_.COMPLETED
    assert res.state["log"] == ["ok@3"]
    assert wf.nodes["flaky"].metadata["attempts"] == [1, 2, 3]
    retries = [e for e in await rt.store.list_events(res.run_id) if e.type == "node_retry"]
    assert [e.data["attempt"] for e in retries] == [1, 2]
    assert retries[0].data["error"] == "ConnectionError: attempt 1 failed"


async def test_retry_exhausted_fails_the_run(rt: Runtime) -> None:
    wf = flaky_graph("flaky_bad", 10, RetryPolicy(max_attempts=3, **FAST), ConnectionError)
    res = await rt.run(wf, {"n": 0})
    assert res.status is S_.FAILED
    e = err(res)
    assert (e["type"], e["node"], e["attempts"], e["task_id"], e["step"]) == (
        "ConnectionError",
        "flaky",
        3,
        "1:flaky:0",
        1,
    )
    assert e["message"] == "attempt 3 failed"
    assert "ConnectionError" in e["traceback"]
    assert wf.nodes["flaky"].metadata["attempts"] == [1, 2, 3]
    with pytest.raises(RunFailedError) as ei:
        res.unwrap()
    assert ei.value.run_id == res.run_id
    assert ei.value.error["attempts"] == 3
    failed = [ev for ev in await rt.store.list_events(res.run_id) if ev.type == "node_failed"]
    assert len(failed) == 1 and "traceback" not in failed[0].data


async def test_non_matching_exception_is_not_retried(rt: Runtime) -> None:
    wf = flaky_graph(
        "flaky_other", 10, RetryPolicy(max_attempts=5, retry_on=ConnectionError, **FAST), KeyError
    )
    res = await rt.run(wf, {"n": 0})
    assert res.status is S_.FAILED
    assert (err(res)["type"], err(res)["attempts"]) == ("KeyError", 1)
    assert wf.nodes["flaky"].metadata["attempts"] == [1]


async def test_retry_predicate_and_compile_default(rt: Runtime) -> None:
    policy = RetryPolicy(max_attempts=4, retry_on=lambda e: "transient" in str(e), **FAST)
    attempts: list[int] = []

    def node(s: Any, ctx: RunContext) -> None:
        attempts.append(ctx.attempt)
        raise RuntimeError("transient" if ctx.attempt < 2 else "permanent")

    g = Graph(S, name="pred")
    g.add_node("node", node).add_edge(START, "node")
    res = await rt.run(g.compile(retry=policy), {"n": 0})  # compile(retry=) is the default
    assert attempts == [1, 2]
    assert (err(res)["message"], err(res)["attempts"]) == ("permanent", 2)


def test_retry_policy_validation_and_backoff() -> None:
    with pytest.raises(ValueError, match="max_attempts must be >= 1"):
        RetryPolicy(max_attempts=0)
    with pytest.raises(ValueError, match="intervals must be >= 0"):
        RetryPolicy(initial_interval=-1)
    p = RetryPolicy(initial_interval=1.0, backoff_factor=2.0, max_interval=5.0, jitter=False)
    assert [p.delay(a) for a in (1, 2, 3, 4)] == [1.0, 2.0, 4.0, 5.0]
    j = RetryPolicy(initial_interval=1.0, jitter=True)
    assert all(0.0 <= j.delay(1) <= 1.0 for _ in range(50))  # full jitter (core.backoff)
    assert p.should_retry(ValueError(), 2) and not p.should_retry(ValueError(), 3)


def replan_graph(name: str, heal_at: int, max_replans: int) -> Any:
    def work(s: Any) -> dict[str, Any]:
        if s["n"] < heal_at:
            raise RuntimeError(f"bad plan {s['n']}")
        return {"log": "worked"}

    g = Graph(S, name=name)
    g.add_node("work", work).add_node(
        "fix", lambda s: {"n": s["n"] + 1, "log": "fix"}, phase="planner"
    )
    g.add_edge(START, "work").add_edge("fix", "work").add_edge("work", END)
    return g.compile(replan_node="fix", max_replans=max_replans)


async def test_replan_after_failure(rt: Runtime) -> None:
    res = await rt.run(replan_graph("replan_ok", 2, 3), {"n": 0})
    assert res.status is S_.COMPLETED
    assert res.state == {"n": 2, "log": ["fix", "fix", "worked"]}
    trs = await transitions(rt, res.run_id)
    assert trs == [
        (None, "RECEIVED"),
        ("RECEIVED", "PLANNED"),
        ("PLANNED", "EXECUTING"),
        ("EXECUTING", "FAILED"),
        ("FAILED", "PLANNED"),
        ("PLANNED", "EXECUTING"),
        ("EXECUTING", "FAILED"),
        ("FAILED", "PLANNED"),
        ("PLANNED", "EXECUTING"),
        ("EXECUTING", "VALIDATING"),
        ("VALIDATING", "COMPLETED"),
    ]
    reasons = [t.reason for t in await rt.store.list_transitions(res.run_id)]
    assert reasons[3] == "re-plan 1/3 after RuntimeError in work"
    assert reasons[6] == "re-plan 2/3 after RuntimeError in work"
    run = await rt.get_run(res.run_id)
    assert run.metadata["replans"] == 2
    hist = await rt.history(res.run_id)
    assert [h.meta.get("replan") for h in hist] == [None, 1, None, 2, None, None]
    assert [h.tasks for h in hist] == [
        [],
        ["1:work:0"],
        ["2:fix:0"],
        ["3:work:0"],
        ["4:fix:0"],
        ["5:work:0"],
    ]


async def test_replans_are_bounded(rt: Runtime) -> None:
    res = await rt.run(replan_graph("replan_bounded", 100, 2), {"n": 0})
    assert res.status is S_.FAILED
    assert (err(res)["message"], err(res)["node"], err(res)["step"]) == ("bad plan 2", "work", 5)
    assert res.state == {"n": 2, "log": ["fix", "fix"]}
    assert (await transitions(rt, res.run_id))[-1] == ("EXECUTING", "FAILED")
    assert sum(1 for s, d in await transitions(rt, res.run_id) if d == "FAILED") == 3


async def test_no_replan_when_max_replans_is_zero(rt: Runtime) -> None:
    res = await rt.run(replan_graph("replan_zero", 1, 0), {"n": 0})
    assert res.status is S_.FAILED
    assert res.state == {"n": 0, "log": []}


async def test_resume_of_a_failed_run_retries_it(rt: Runtime) -> None:
    broken = {"on": True}

    def work(s: Any) -> dict[str, Any]:
        if broken["on"]:
            raise RuntimeError("service down")
        return {"log": "work"}

    g = Graph(S, name="retry_failed")
    g.add_node("prep", lambda s: {"n": 1}).add_node("work", work)
    g.add_edge(START, "prep").add_edge("prep", "work")
    res = await rt.run(g.compile(), {"n": 0})
    assert res.status is S_.FAILED and res.step == 1
    assert res.state == {"n": 1, "log": []}
    broken["on"] = False
    done = await rt.resume(res.run_id)
    assert isinstance(done, RunResult)
    assert done.status is S_.COMPLETED
    assert done.state == {"n": 1, "log": ["work"]}
    assert done.error is None
    assert (await rt.get_run(res.run_id)).error is None
    trs = await rt.store.list_transitions(res.run_id)
    assert [(t.src, t.dst, t.reason) for t in trs[3:6]] == [
        (S_.EXECUTING, S_.FAILED, "RuntimeError in work"),
        (S_.FAILED, S_.PLANNED, "retry after failure"),
        (S_.PLANNED, S_.EXECUTING, "resumed"),
    ]
    assert trs[4].actor == "user"


# -- cancel and idempotency ----------------------------------------------------------------


async def test_cancel_a_running_run(rt: Runtime) -> None:
    started = asyncio.Event()
    finished = []

    async def slow(s: Any) -> dict[str, Any]:
        started.set()
        await asyncio.sleep(30)
        finished.append(True)
        return {"log": "never"}

    g = Graph(S, name="slow")
    g.add_node("slow", slow).add_edge(START, "slow")
    handle = await rt.start(g.compile(), {"n": 0})
    await asyncio.wait_for(started.wait(), 5)
    with pytest.raises(TimeoutError):
        await handle.wait(timeout=0.05)
    assert (await rt.get_run(handle.run_id)).status is S_.EXECUTING  # waiting did not stop it
    rec = await handle.cancel(reason="user changed their mind")
    assert rec.status is S_.CANCELLED
    res = await handle.wait(timeout=5)
    assert res.status is S_.CANCELLED
    assert res.state == {"n": 0, "log": []}
    assert finished == []
    last = (await rt.store.list_transitions(handle.run_id))[-1]
    assert (last.src, last.dst, last.actor, last.reason) == (
        S_.EXECUTING,
        S_.CANCELLED,
        "user",
        "user changed their mind",
    )
    with pytest.raises(RunStateError, match="is already CANCELLED"):
        await rt.cancel(handle.run_id)
    with pytest.raises(RunStateError, match="only ESCALATED or FAILED runs can be resumed"):
        await rt.resume(handle.run_id)


async def test_cancel_parked_and_finished_runs(rt: Runtime) -> None:
    g = Graph(S, name="park")
    g.add_node("ask", lambda s: {"log": interrupt("?")}).add_edge(START, "ask")
    parked = await rt.run(g.compile(), {"n": 0})
    assert parked.status is S_.ESCALATED
    rec = await rt.cancel(parked.run_id, actor="ops")
    assert rec.status is S_.CANCELLED
    last = (await rt.store.list_transitions(parked.run_id))[-1]
    assert (last.src, last.dst, last.actor, last.reason) == (
        S_.ESCALATED,
        S_.CANCELLED,
        "ops",
        "cancelled",
    )
    done = await rt.run(counter_graph("quick", 1), {"n": 0})
    with pytest.raises(RunStateError, match="is already COMPLETED"):
        await rt.cancel(done.run_id)


async def test_idempotent_start(rt: Runtime) -> None:
    wf = counter_graph("idem", 2)
    h1 = await rt.start(wf, {"n": 0}, idempotency_key="order-42")
    r1 = await h1.wait()
    h2 = await rt.start(wf, {"n": 0}, idempotency_key="order-42")
    assert (h1.created, h2.created) == (True, False)
    assert h2.run_id == h1.run_id
    assert (await h2.wait()).state == r1.state
    assert len(await rt.list_runs()) == 1
    with pytest.raises(IdempotencyConflictError, match="'order-42' was already used by run"):
        await rt.start(wf, {"n": 1}, idempotency_key="order-42")
    h3 = await rt.start(wf, {"n": 0}, idempotency_key="order-43")
    assert h3.created and h3.run_id != h1.run_id
    await h3.wait()


# -- lifecycle and events ------------------------------------------------------------------


def phased_graph(name: str, node_plan: Any) -> Any:
    g = Graph(S, name=name)
    g.add_node("plan", node_plan, phase="planner")
    g.add_node("tool", lambda s: {"log": "tool"}, phase="tool")
    g.add_node("check", lambda s: {"n": s["n"] + 1, "log": "check"}, phase="validator")
    g.add_edge(START, "plan").add_edge("plan", "tool").add_edge("tool", "check")
    g.add_conditional_edges("check", lambda s: "plan" if s["n"] < 2 else END, ["plan", END])
    return g.compile()


async def test_phases_drive_the_lifecycle(rt: Runtime) -> None:
    res = await rt.run(phased_graph("phases", lambda s: {"log": "plan"}), {"n": 0})
    assert res.status is S_.COMPLETED
    assert res.state["log"] == ["plan", "tool", "check"] * 2
    trs = await rt.store.list_transitions(res.run_id)
    worker = f"worker:{rt.owner}"
    assert [(t.src, t.dst, t.actor, t.reason) for t in trs] == [
        (None, S_.RECEIVED, "user", "submitted"),
        (S_.RECEIVED, S_.PLANNED, "user", "1 entry task(s)"),
        (S_.PLANNED, S_.EXECUTING, worker, "started"),
        (S_.EXECUTING, S_.WAITING_FOR_TOOL, worker, "step 2: tool"),
        (S_.WAITING_FOR_TOOL, S_.VALIDATING, worker, "step 3: check"),
        (S_.VALIDATING, S_.EXECUTING, worker, "step 4: plan"),
        (S_.EXECUTING, S_.WAITING_FOR_TOOL, worker, "step 5: tool"),
        (S_.WAITING_FOR_TOOL, S_.VALIDATING, worker, "step 6: check"),
        (S_.VALIDATING, S_.COMPLETED, worker, "graph finished"),
    ]
    assert [t.seq for t in trs] == list(range(1, len(trs) + 1))
    assert all(a.ts <= b.ts for a, b in itertools.pairwise(trs))


async def test_mixed_step_phases(rt: Runtime) -> None:
    g = Graph(S, name="mixed")
    g.add_node("t", lambda s: {"log": "t"}, phase="tool")
    g.add_node("v", lambda s: {"log": "v"}, phase="validator")
    g.add_node("a", lambda s: {"log": "a"})
    g.add_edge(START, "t").add_edge(START, "v").add_edge("t", "a").add_edge("t", "v")
    res = await rt.run(g.compile(), {"n": 0})
    # a step with any tool task waits for the tool; a step mixing validator and agent executes
    assert await transitions(rt, res.run_id) == [
        (None, "RECEIVED"),
        ("RECEIVED", "PLANNED"),
        ("PLANNED", "WAITING_FOR_TOOL"),
        ("WAITING_FOR_TOOL", "EXECUTING"),
        ("EXECUTING", "VALIDATING"),
        ("VALIDATING", "COMPLETED"),
    ]


async def test_tool_phase_interrupt_and_resume(rt: Runtime) -> None:
    g = Graph(S, name="tool_ask")
    g.add_node("tool", lambda s: {"log": interrupt("approve?")}, phase="tool")
    g.add_edge(START, "tool")
    res = await rt.run(g.compile(), {"n": 0})
    assert res.status is S_.ESCALATED
    done = await rt.resume(res.run_id, "yes", actor="alice")
    assert isinstance(done, RunResult) and done.state["log"] == ["yes"]
    trs = await rt.store.list_transitions(res.run_id)
    assert [(t.src, t.dst, t.actor) for t in trs[2:]] == [
        (S_.PLANNED, S_.WAITING_FOR_TOOL, f"worker:{rt.owner}"),
        (S_.WAITING_FOR_TOOL, S_.ESCALATED, f"worker:{rt.owner}"),
        (S_.ESCALATED, S_.EXECUTING, "alice"),
        (S_.EXECUTING, S_.WAITING_FOR_TOOL, f"worker:{rt.owner}"),
        (S_.WAITING_FOR_TOOL, S_.VALIDATING, f"worker:{rt.owner}"),
        (S_.VALIDATING, S_.COMPLETED, f"worker:{rt.owner}"),
    ]


async def test_event_stream_is_live_and_ends_when_the_run_settles(rt: Runtime) -> None:
    subscribed = asyncio.Event()
    seen_custom = asyncio.Event()

    async def plan(s: Any, ctx: RunContext) -> dict[str, Any]:
        await subscribed.wait()
        ctx.emit("thinking", {"about": s["n"]})
        # blocks until the subscriber got the event: proves it streams before the step commits
        await asyncio.wait_for(seen_custom.wait(), 5)
        return {"log": "plan"}

    handle = await rt.start(phased_graph("streamed", plan), {"n": 0})
    got = []

    async def consume() -> None:
        async for ev in handle.events():
            got.append(ev)
            subscribed.set()
            if ev.type == "thinking":
                seen_custom.set()

    await asyncio.wait_for(consume(), 10)  # the stream ends by itself
    res = await handle.wait()
    assert res.status is S_.COMPLETED

    persisted = [e for e in got if e.seq > 0]
    seqs = [e.seq for e in persisted]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    assert seqs == list(range(1, len(seqs) + 1))
    types = Counter(e.type for e in persisted)
    assert types["thinking"] == 2 and types["step_finished"] == 6
    lifecycle = [(e.data["from"], e.data["to"]) for e in persisted if e.type == "lifecycle"]
    assert lifecycle[0] == (None, "RECEIVED")
    assert lifecycle[-1] == ("VALIDATING", "COMPLETED")
    assert got[-1].type == "lifecycle" and got[-1].data["to"] == "COMPLETED"
    thinking = [e for e in got if e.type == "thinking"]
    assert [(e.step, e.node, e.data) for e in thinking] == [
        (1, "plan", {"about": 0}),
        (4, "plan", {"about": 1}),
    ]
    finished = [e for e in got if e.type == "step_finished"]
    assert [(e.step, e.data["tasks"]) for e in finished] == [
        (1, ["1:plan:0"]),
        (2, ["2:tool:0"]),
        (3, ["3:check:0"]),
        (4, ["4:plan:0"]),
        (5, ["5:tool:0"]),
        (6, ["6:check:0"]),
    ]
    # live-only events (not persisted) arrive with seq 0 once subscribed
    assert {e.type for e in got if e.seq == 0} <= {"step_started", "node_started", "node_finished"}
    assert any(e.type == "node_finished" for e in got)
    # the persisted log equals what was streamed, minus the live-only events
    stored = await rt.store.list_events(handle.run_id)
    assert [(e.seq, e.type) for e in stored] == [(e.seq, e.type) for e in persisted]
    # a late reader gets the same persisted log and ends at once
    late = [e async for e in rt.events(handle.run_id)]
    assert [(e.seq, e.type) for e in late] == [(e.seq, e.type) for e in persisted]


async def test_event_stream_ends_when_the_run_parks(rt: Runtime) -> None:
    g = Graph(S, name="park_stream")
    g.add_node("ask", lambda s: {"log": interrupt("?")}).add_edge(START, "ask")
    handle = await rt.start(g.compile(), {"n": 0})
    evs = await asyncio.wait_for(_collect(handle.events()), 10)
    assert [e.type for e in evs if e.seq][-3:] == ["interrupt", "escalated", "lifecycle"]
    assert evs[-1].data["to"] == "ESCALATED"


async def _collect(it: Any) -> list[Any]:
    return [e async for e in it]


# -- history, time travel ------------------------------------------------------------------


class Acc(TypedDict):
    n: int
    log: Annotated[list[str], append]
    total: Annotated[int, add]
    seen: Annotated[dict[str, int], merge]


def acc_graph(name: str, until: int) -> Any:
    def step(s: Any) -> dict[str, Any]:
        k = s["n"] + 1
        return {"n": k, "log": f"s{k}", "total": k, "seen": {f"k{k % 3}": k}}

    g = Graph(Acc, name=name)
    g.add_node("step", step).add_edge(START, "step")
    g.add_conditional_edges("step", lambda s: "step" if s["n"] < until else END, ["step", END])
    return g.compile()


def acc_expected(k: int, base: dict[str, Any] | None = None) -> dict[str, Any]:
    state = base or {"n": 0, "log": [], "total": 0, "seen": {}}
    state = {**state, "log": list(state["log"]), "seen": dict(state["seen"])}
    for i in range(state["n"] + 1, k + 1):
        state["n"] = i
        state["log"].append(f"s{i}")
        state["total"] += i
        state["seen"][f"k{i % 3}"] = i
    return state


async def test_history_and_state_at_every_step(rt: Runtime) -> None:
    res = await rt.run(acc_graph("acc", 9), {"n": 0, "total": 0})
    assert res.state == acc_expected(9)
    hist = await rt.history(res.run_id)
    assert [h.step for h in hist] == list(range(10))
    for h in hist:
        assert await rt.get_state(res.run_id, h.step) == acc_expected(h.step)
        if h.step:
            k = h.step
            assert h.writes == [
                {
                    "task_id": f"{k}:step:0",
                    "node": "step",
                    "writes": {"n": k, "log": f"s{k}", "total": k, "seen": {f"k{k % 3}": k}},
                }
            ]
        assert h.next_tasks == (
            [{"id": f"{h.step + 1}:step:0", "node": "step"}] if h.step < 9 else []
        )
    assert hist[0].snapshot is True
    with pytest.raises(Exception, match="has no checkpoint at step 42"):
        await rt.get_state(res.run_id, 42)


async def test_state_can_be_read_without_the_workflow(rt: Runtime) -> None:
    res = await rt.run(acc_graph("acc_cold", 5), {"n": 0, "total": 0})
    async with Runtime(rt.store, recover=False) as cold:  # knows no workflow
        for k in range(6):
            assert await cold.get_state(res.run_id, k) == acc_expected(k)


async def test_fork_with_patch(rt: Runtime) -> None:
    wf = acc_graph("acc_fork", 6)
    parent = await rt.run(wf, {"n": 0, "total": 0})
    parent_hist = await rt.history(parent.run_id)

    handle = await rt.fork(parent.run_id, 2, {"n": 3, "log": ["patched"]})
    child = await handle.wait()
    assert child.status is S_.COMPLETED
    assert child.run_id != parent.run_id
    base = {**acc_expected(2), "n": 3, "log": ["patched"]}
    assert child.state == acc_expected(6, base)
    rec = await rt.get_run(child.run_id)
    assert (rec.parent_run_id, rec.parent_step) == (parent.run_id, 2)
    assert rec.metadata["fork"] == {
        "parent": parent.run_id,
        "step": 2,
        "patch": {"n": 3, "log": ["patched"]},
    }
    child_hist = await rt.history(child.run_id)
    assert [h.step for h in child_hist] == [2, 3, 4, 5]
    assert await rt.get_state(child.run_id, 2) == base
    # the parent is untouched
    assert await rt.history(parent.run_id) == parent_hist
    assert (await rt.get_run(parent.run_id)).status is S_.COMPLETED
    assert await rt.get_state(parent.run_id) == acc_expected(6)
    trs = await rt.store.list_transitions(child.run_id)
    assert trs[0].reason == f"fork of {parent.run_id} at step 2"


async def test_fork_errors_and_no_execute(rt: Runtime) -> None:
    parent = await rt.run(acc_graph("acc_fork2", 3), {"n": 0, "total": 0})
    with pytest.raises(InvalidInputError, match="unknown state key 'bogus'"):
        await rt.fork(parent.run_id, 1, {"bogus": 1})
    with pytest.raises(InvalidInputError, match="does not fit"):
        await rt.fork(parent.run_id, 1, {"n": "x"})
    with pytest.raises(Exception, match="has no checkpoint at step 99"):
        await rt.fork(parent.run_id, 99)
    h = await rt.fork(parent.run_id, 1, execute=False)
    rec = await rt.get_run(h.run_id)
    assert rec.status is S_.PLANNED and rec.owner is None
    assert await rt.get_state(h.run_id) == acc_expected(1)


# -- scale, sync bridge, snapshots, pruning ------------------------------------------------


async def test_many_runs_at_once(rt: Runtime) -> None:
    async def work(s: Any) -> dict[str, Any]:
        await asyncio.sleep(0.002)
        return {"n": s["n"] * 2, "log": f"w{s['n']}"}

    g = Graph(S, name="many")
    g.add_node("w", work).add_node("x", lambda s: {"log": f"x{s['n']}"})
    g.add_edge(START, "w").add_edge("w", "x")
    wf = g.compile()
    handles = await asyncio.gather(*(rt.start(wf, {"n": i}) for i in range(50)))
    results = await asyncio.gather(*(h.wait(timeout=20) for h in handles))
    assert len({h.run_id for h in handles}) == 50
    for i, res in enumerate(results):
        assert res.status is S_.COMPLETED
        assert res.state == {"n": 2 * i, "log": [f"w{i}", f"x{2 * i}"]}
        assert await rt.get_state(res.run_id) == res.state
    runs = await rt.list_runs(limit=100)
    assert len(runs) == 50 and all(r.status is S_.COMPLETED for r in runs)


def test_sync_runtime() -> None:
    g = Graph(S, name="sync_rt")
    g.add_node("a", lambda s: {"n": s["n"] + 1})
    g.add_node("ask", lambda s: {"log": interrupt("?")})
    g.add_edge(START, "a").add_edge("a", "ask")
    wf = g.compile()
    with SyncRuntime(MemoryStore(), recover=False) as srt:
        res = srt.run(wf, {"n": 1})
        assert isinstance(res, RunResult)
        assert res.status is S_.ESCALATED
        done = srt.resume(res.run_id, "answer")
        assert done.status is S_.COMPLETED
        assert done.unwrap() == {"n": 2, "log": ["answer"]}
        hist = srt.history(res.run_id)
        assert [h.step for h in hist] == [0, 1, 2]
        assert srt.get_state(res.run_id, 1) == {"n": 2, "log": []}
        events = srt.events(res.run_id)
        assert events[-1].type == "lifecycle" and events[-1].data["to"] == "COMPLETED"
        assert srt.runtime.max_steps == 1000  # the wrapped Runtime's attributes


async def test_unwrap(rt: Runtime) -> None:
    ok = await rt.run(counter_graph("unwrap_ok", 2), {"n": 0})
    assert ok.unwrap() == {"n": 2, "log": ["1", "2"]}
    assert ok.completed

    def boom(s: Any) -> None:
        raise ZeroDivisionError("nope")

    g = Graph(S, name="unwrap_bad")
    g.add_node("boom", boom).add_edge(START, "boom")
    bad = await rt.run(g.compile(), {"n": 0})
    assert not bad.completed
    with pytest.raises(RunFailedError, match=f"run {bad.run_id} failed: nope") as ei:
        bad.unwrap()
    assert ei.value.error["type"] == "ZeroDivisionError"
    handle = await rt.start(g.compile(), {"n": 0})
    with pytest.raises(RunFailedError):
        await handle.result()


@pytest.mark.parametrize(
    ("setting", "fragment"),
    [
        ({"every": "3"}, "SnapshotPolicy.every must be an int >= 1, got '3'"),
        ({"every": 0}, "SnapshotPolicy.every must be an int >= 1"),
        ({"min_bytes": -1}, "SnapshotPolicy.min_bytes must be an int >= 0"),
        ({"ratio": float("nan")}, "SnapshotPolicy.ratio must be a finite number > 0"),
        ({"ratio": "4"}, "SnapshotPolicy.ratio must be a finite number > 0"),
    ],
)
def test_snapshot_policy_settings_are_checked_up_front(
    setting: dict[str, Any], fragment: str
) -> None:
    """``every="3"`` was taken, and every run then raised a TypeError out of its first step."""
    with pytest.raises(ConfigurationError, match=fragment):
        SnapshotPolicy(**setting)


async def test_snapshot_policy() -> None:
    async with Runtime(MemoryStore(), recover=False, snapshots=SnapshotPolicy(every=4)) as rt:
        wf = acc_graph("acc_snap", 30)
        res = await rt.run(wf, {"n": 0, "total": 0})
        assert res.state == acc_expected(30)
        hist = await rt.history(res.run_id)
        assert [h.step for h in hist if h.snapshot] == [0, 4, 8, 12, 16, 20, 24, 28]
        for k in range(31):
            chain = await rt.store.load_chain(res.run_id, k)
            assert len(chain) <= 4 and chain[0].snapshot is not None
            assert await rt.get_state(res.run_id, k) == acc_expected(k)
            assert replay(wf.schema, chain) == acc_expected(k)


async def test_snapshot_when_deltas_outweigh_the_state() -> None:
    policy = SnapshotPolicy(every=10_000, ratio=1.0, min_bytes=1)
    async with Runtime(MemoryStore(), recover=False, snapshots=policy) as rt:
        res = await rt.run(acc_graph("acc_ratio", 40), {"n": 0, "total": 0})
        hist = await rt.history(res.run_id)
        snaps = [h.step for h in hist if h.snapshot]
        assert len(snaps) > 3  # taken on size, not on count
        for k in range(41):
            assert await rt.get_state(res.run_id, k) == acc_expected(k)


async def test_prune_keeps_exact_state(rt: Runtime) -> None:
    res = await rt.run(acc_graph("acc_prune", 20), {"n": 0, "total": 0})
    with pytest.raises(InvalidInputError, match="keep_last must be an int >= 1"):
        await rt.prune(res.run_id, 0)
    assert await rt.prune(res.run_id, keep_last=5) == 16
    hist = await rt.history(res.run_id)
    assert [h.step for h in hist] == [16, 17, 18, 19, 20]
    assert hist[0].snapshot
    for k in range(16, 21):
        assert await rt.get_state(res.run_id, k) == acc_expected(k)
    assert await rt.get_state(res.run_id) == acc_expected(20)
    with pytest.raises(Exception, match="has no checkpoint at step 15"):
        await rt.get_state(res.run_id, 15)
    assert await rt.prune(res.run_id, keep_last=5) == 0
    # a pruned run still forks from a kept step
    child = await (await rt.fork(res.run_id, 17, {"n": 18})).wait()
    assert child.state == acc_expected(20, {**acc_expected(17), "n": 18})


async def test_a_failing_cancel_hook_is_logged_and_the_cancel_stands(
    caplog: pytest.LogCaptureFixture,
) -> None:
    from tether.graph import extensions

    seen: list[str] = []

    async def boom(runtime: Any, run: Any) -> None:
        seen.append(run.run_id)
        raise RuntimeError("hook broke")

    extensions.on_run_cancelled("test-boom", boom)
    try:
        async with Runtime(MemoryStore(), recover=False) as rt:
            h = await rt.start(counter_graph("hooked", 100), {"n": 0}, execute=False)
            with caplog.at_level("ERROR", logger="tether.runtime"):
                done = await rt.cancel(h.run_id)
            assert done.status is S_.CANCELLED and seen == [h.run_id]
            assert "the test-boom hook failed" in caplog.text
    finally:
        extensions._ON_CANCEL.pop("test-boom", None)


async def test_the_claim_loops_alarm_always_yields_to_the_loop() -> None:
    """With a poll interval already past (1e-9 s), ``WakeSignal.wait`` returned without
    awaiting, so a claim loop over SQLite (whose reads do not yield) never let a signal
    handler or another task run: SIGTERM was ignored."""
    from tether.core.clock import SYSTEM_CLOCK
    from tether.graph.wake import WakeSignal

    ran: list[int] = []

    async def other() -> None:
        ran.append(1)

    signal = WakeSignal(None, SYSTEM_CLOCK)
    task = asyncio.create_task(other())
    await signal.wait(1e-9)
    assert ran == [1]
    await task
