"""A NUL character in a string kept in a text column (an idempotency key, a thread, a queue, a
tenant, a cancel reason, an interrupt id) is refused up front with InvalidInputError naming the
field, on every backend alike. Before, PostgreSQL's text refused it at the write with the
driver's DataError (a 500 over HTTP), while SQLite kept it. Inside JSON values (an input, an
answer) a NUL is escaped and kept, as before."""

from __future__ import annotations

from typing import Any, TypedDict

import pytest

from tether import END, START, Graph, InvalidInputError, RunStatus, Runtime, interrupt


class S(TypedDict, total=False):
    text: str
    answer: str


def _ask(state: S) -> dict[str, Any]:
    return {"answer": interrupt({"question": state["text"]})}


g = Graph(S, name="text_fields")
g.add_node("ask", _ask).add_edge(START, "ask").add_edge("ask", END)
WF = g.compile()


@pytest.mark.parametrize("field", ["idempotency_key", "thread_id", "queue", "tenant", "run_id"])
async def test_a_nul_in_a_text_field_is_refused_by_name(any_rt: Runtime, field: str) -> None:
    with pytest.raises(InvalidInputError, match=f"{field}=.*NUL character"):
        await any_rt.submit(WF, {"text": "x"}, **{field: "order\x001234"})
    assert await any_rt.list_runs() == []


async def test_a_nul_in_a_reason_or_an_interrupt_id_is_refused(any_rt: Runtime) -> None:
    res = await any_rt.run(WF, {"text": "a\x00b"})  # inside the input: JSON, kept
    assert res.status is RunStatus.ESCALATED
    assert (await any_rt.get_state(res.run_id))["text"] == "a\x00b"
    with pytest.raises(InvalidInputError, match=r"reason=.*NUL"):
        await any_rt.cancel(res.run_id, reason="no\x00pe")
    with pytest.raises(InvalidInputError, match=r"interrupt_id=.*NUL"):
        await any_rt.resume(res.run_id, "yes", interrupt_id="1:ask\x00:0")
    assert (await any_rt.get_run(res.run_id)).status is RunStatus.ESCALATED
    done = await any_rt.resume(res.run_id, "y\x00es")  # an answer is JSON: kept
    assert done.status is RunStatus.COMPLETED and done.state["answer"] == "y\x00es"
