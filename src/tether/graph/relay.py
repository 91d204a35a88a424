"""Questions a child run asks a human, asked again by its parent, each answer passed down to
the very question it was given for.

A node that follows child runs (a subgraph, a fork-join) parks its own run when a child parks
on an interrupt: the parent's human sees the child's question, and the parent's answer is
resumed into the child. The parent's answers reach the node by position (the n-th
``interrupt()`` of a task returns the n-th answer), but what the n-th question was depends on
what the children were waiting for when it was asked: once an answer went down, the child asks
its next question, and a re-run of the node would meet *that* question at position 0 and hand
it the first answer. So each position (a *slot*) records which child interrupts it asked for,
journaled before the parent parks, and an answer goes down only to the interrupts its slot
names. An answer whose interrupts were answered meanwhile (the child was resumed directly) is
dropped with a ``relay_stale`` event instead of answering whatever the child waits for now.

A slot that was asked but not answered yet can be asked again for another question (the run
crashed and on its re-run the first question was gone): each re-ask records a new *generation*
of the slot, and the newest generation is the question the human saw.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from tether.core.errors import RunStateError
from tether.core.ids import effect_key

if TYPE_CHECKING:
    from tether.graph.context import RunContext
    from tether.graph.host import RunHost


class Relay:
    """One node's relay of its children's questions (make one per node run, use it for every
    interrupt the node raises: it owns the node's interrupt positions)."""

    def __init__(self, ctx: RunContext) -> None:
        self.ctx = ctx
        self.answers = ctx.resume_values

    def _key(self, slot: int, generation: int) -> str:
        return effect_key(self.ctx.run_id, self.ctx.task_id, generation, f"relay{slot}")

    async def _newest(self, host: RunHost, slot: int) -> tuple[int, dict[str, Any] | None]:
        """The newest generation recorded for ``slot`` and its question (-1, None: none)."""
        generation, found = 0, None
        while True:
            rec = await host.store.get_effect(self.ctx.run_id, self._key(slot, generation))
            if rec is None or rec.status != "done":
                return generation - 1, found
            found = rec.result
            generation += 1

    async def pass_down(
        self, host: RunHost, child_id: str, pending: Sequence[dict[str, Any]], payload: Any
    ) -> None:
        """``child_id`` waits on ``pending`` (its ``result.interrupts``): pass down the answer
        given for exactly these interrupts, or ask the parent's human (raises the parent's
        interrupt with ``payload``). An answer for several interrupts is a list, in
        ``pending`` order. Every answer is passed down once (journaled); one whose question
        is no longer pending is dropped with a ``relay_stale`` event, one of the wrong shape
        with ``relay_refused`` (and the question is asked again)."""
        question = {"child": child_id, "interrupts": [str(p["id"]) for p in pending]}
        answered = False
        for slot in range(len(self.answers)):
            _, asked = await self._newest(host, slot)
            if asked is not None:
                outcome = await self._deliver(host, slot, asked)
                answered = answered or (asked == question and outcome == "delivered")
        if not answered:
            await self._ask(host, question, payload)

    async def _deliver(self, host: RunHost, slot: int, asked: dict[str, Any]) -> str:
        """Resume the child of ``slot`` with its answer, once: ``delivered``, ``stale`` (the
        question was answered meanwhile) or ``refused`` (not one answer per question: the
        question is asked again)."""
        child_id, ids, answer = asked["child"], list(asked["interrupts"]), self.answers[slot]

        async def resume_child() -> str:
            if len(ids) == 1:
                answers = {ids[0]: answer}
            elif isinstance(answer, list) and len(answer) == len(ids):
                answers = dict(zip(ids, answer, strict=True))
            else:  # dropped, and the question asked again
                why = (
                    f"run {child_id} waits on {len(ids)} questions; resume the parent run "
                    f"{self.ctx.run_id} with a list of {len(ids)} answers, in the order of the "
                    "question's payload list"
                )
                self.ctx.emit("relay_refused", {"child": child_id, "slot": slot, "why": why})
                return "refused"
            try:
                await host.resume(
                    child_id, answers=answers, wait=False, actor=f"run:{self.ctx.run_id}"
                )
            except RunStateError as exc:  # answered meanwhile: never answer another question
                self.ctx.emit(
                    "relay_stale",
                    {"child": child_id, "interrupts": ids, "slot": slot, "why": str(exc)},
                )
                return "stale"
            return "delivered"

        key = effect_key(self.ctx.run_id, self.ctx.task_id, slot, "relay_answer")
        return str(await self.ctx.journaled("relay_answer", asked, resume_child, key=key))

    async def _ask(self, host: RunHost, question: dict[str, Any], payload: Any) -> None:
        slot = len(self.answers)
        generation, asked = await self._newest(host, slot)
        if asked != question:

            async def record() -> dict[str, Any]:
                return question

            await self.ctx.journaled("relay", question, record, key=self._key(slot, generation + 1))
        for _ in range(slot):  # the node's interrupt positions up to this slot are answered
            self.ctx.interrupt(None)
        self.ctx.interrupt(payload)  # raises: the parent parks with the child's question
