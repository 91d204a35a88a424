"""The context window manager: keeps a run's prompt under its model's token budget.

::

    window = ContextWindow(model)                      # budget: the model's context (n_ctx)
    conv = Conversation.start("Book a flight to Lisbon", system="You are a travel agent.")
    conv = conv.add("I prefer aisle seats.")
    fitted = await window.fit(conv)                    # compacts when past 70 % of the budget
    answer = await model.chat(fitted.messages)
    conv = fitted.conversation.add(answer.message())

``fit`` counts the prompt with the model's own tokenizer (:mod:`tether.memory.tokens`). Under
``threshold`` x budget nothing happens. Past it, the policies run in order (by default: elide
old tool results the plan no longer needs, then summarise the oldest turns with ``model``;
without a model, a sliding window), each stopping once the prompt is at or under ``target`` x
budget. The system prompt, the goal, the pinned items and the ``keep_recent`` latest units stay
verbatim; if the prompt still exceeds the budget, the policies run again keeping only the latest
unit. When the system prompt, goal and pinned items alone (or with the latest unit) exceed the
budget, ``fit`` raises :class:`~tether.core.errors.ContextBudgetError` instead of dropping any
of them.

Inside a run, a compaction puts a ``context_compacted`` event on the run's stream, and the
summary's model call is journaled: see :mod:`tether.memory.compaction_summary`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from tether.core.errors import ConfigurationError, ContextBudgetError
from tether.core.journal import current_journal
from tether.core.messages import Message
from tether.llm.model import Model
from tether.memory.compaction import (
    CompactionPlan,
    CompactionPolicy,
    DropToolResults,
    SlidingWindow,
)
from tether.memory.compaction_summary import Summarize
from tether.memory.conversation import Conversation, units
from tether.memory.tokens import TokenCounter, context_limit, counter_for


@dataclass(frozen=True, slots=True)
class Fitted:
    """What ``fit`` made: the (possibly compacted) conversation and its prompt."""

    conversation: Conversation
    messages: list[Message]
    tokens: int
    """Prompt tokens of ``messages``."""
    budget: int
    before: int
    """Prompt tokens before compaction."""
    actions: tuple[str, ...] = ()
    """Names of the policies that changed the conversation, in order (empty: untouched)."""

    @property
    def compacted(self) -> bool:
        return bool(self.actions)


def _ratio(name: str, value: float) -> float:
    if not isinstance(value, int | float) or not 0 < value <= 1:
        raise ConfigurationError(f"{name} must be a fraction in (0, 1], got {value!r}")
    return float(value)


class ContextWindow:
    """Fits conversations to ``budget`` = the model's context (``limit``) less ``reserve``
    tokens kept free for the answer."""

    def __init__(
        self,
        model: Model | None = None,
        *,
        limit: int | None = None,
        reserve: int = 0,
        threshold: float = 0.7,
        target: float = 0.5,
        keep_recent: int = 6,
        policies: Sequence[CompactionPolicy] | None = None,
        counter: TokenCounter | None = None,
    ) -> None:
        limit = limit if limit is not None else context_limit(model)
        if limit is None:
            raise ConfigurationError(
                f"the context size of {model!r} is not known: pass limit=<tokens> "
                "(the model's context window)"
            )
        if not isinstance(limit, int) or limit < 64:
            raise ConfigurationError(f"limit must be an int of at least 64 tokens, got {limit!r}")
        if not isinstance(reserve, int) or not 0 <= reserve < limit // 2:
            raise ConfigurationError(
                f"reserve must be an int in [0, limit/2) = [0, {limit // 2}), got {reserve!r}"
            )
        self.threshold = _ratio("threshold", threshold)
        self.target = _ratio("target", target)
        if self.target > self.threshold:
            raise ConfigurationError(
                f"target ({target}) must not exceed threshold ({threshold}): compaction "
                "brings the prompt from over the threshold down to the target"
            )
        if not isinstance(keep_recent, int) or keep_recent < 1:
            raise ConfigurationError(f"keep_recent must be an int >= 1, got {keep_recent!r}")
        self.limit = limit
        self.budget = limit - reserve
        self.keep_recent = keep_recent
        self.counter = counter if counter is not None else counter_for(model)
        if policies is None:
            last: CompactionPolicy = Summarize(model) if model is not None else SlidingWindow()
            policies = (DropToolResults(), last)
        if not policies:
            raise ConfigurationError("a ContextWindow needs at least one compaction policy")
        for p in policies:
            if not isinstance(p, CompactionPolicy):
                raise ConfigurationError(
                    f"{p!r} is not a compaction policy (it needs a name and async compact())"
                )
        self.policies = tuple(policies)

    def tokens(self, conv: Conversation) -> int:
        return self.counter.count_messages(conv.messages())

    def _check_fixed(self, conv: Conversation) -> None:
        fixed = self.counter.count_messages(conv.fixed())
        if fixed > self.budget:
            raise ContextBudgetError(
                f"the system prompt, goal and {len(conv.pinned)} pinned items alone take "
                f"{fixed} tokens, over the budget of {self.budget}; nothing of them is dropped: "
                "shorten or unpin items, or use a model with a larger context",
                tokens=fixed,
                budget=self.budget,
            )

    async def _run(
        self, conv: Conversation, plan: CompactionPlan, actions: list[str]
    ) -> Conversation:
        for policy in self.policies:
            if plan.tokens(conv) <= plan.target:
                break
            after = await policy.compact(conv, plan)
            if after != conv:
                actions.append(policy.name)
            conv = after
        return conv

    def _over(self, conv: Conversation, after: int, actions: list[str]) -> ContextBudgetError:
        """Why compaction left ``conv`` over the budget: its latest unit is too large to send
        verbatim, or the policies stopped short of what they could have folded or dropped."""
        done = ", ".join(actions) or "nothing to compact"
        spans = units(conv.turns)
        latest = conv.turns[spans[-1][0] :] if spans else ()
        floor = self.counter.count_messages([*conv.fixed(), *conv.notes(), *latest])
        if floor > self.budget or len(spans) <= 1:
            why = (
                "the latest turn is too large to send verbatim; shorten it (or store it as a "
                "memory and recall parts of it) or use a model with a larger context"
            )
        else:
            why = (
                f"the policies stopped with {len(spans)} units left, the latest of which fits "
                "(a Summarize folds at most max_calls times per fit, as much as one request of "
                "the budget holds each time): fit before every model call so the history never "
                "grows this far, raise Summarize(max_calls=...), or end the policies with "
                "SlidingWindow(), which can always drop the oldest units"
            )
        return ContextBudgetError(
            f"the prompt still takes {after} tokens after compaction ({done}), over the "
            f"budget of {self.budget}: {why}",
            tokens=after,
            budget=self.budget,
        )

    async def fit(self, conv: Conversation) -> Fitted:
        """``conv`` compacted as needed so its prompt fits the budget (see the module)."""
        conv = Conversation.from_state(conv)
        self._check_fixed(conv)
        before = self.tokens(conv)
        if before <= self.threshold * self.budget:
            return Fitted(conv, conv.messages(), before, self.budget, before)
        actions: list[str] = []
        target = int(self.target * self.budget)
        plan = CompactionPlan(self.counter, target, self.budget, self.keep_recent)
        conv = await self._run(conv, plan, actions)
        if self.tokens(conv) > self.budget and self.keep_recent > 1:
            conv = await self._run(
                conv, CompactionPlan(self.counter, target, self.budget, 1), actions
            )
        after = self.tokens(conv)
        if after > self.budget:
            raise self._over(conv, after, actions)
        journal = current_journal()
        if journal is not None and actions:
            journal.emit(
                "context_compacted",
                {
                    "before": before,
                    "after": after,
                    "budget": self.budget,
                    "actions": actions,
                    "folded": conv.folded,
                    "dropped": conv.dropped,
                    "elided": conv.elided,
                },
            )
        return Fitted(conv, conv.messages(), after, self.budget, before, tuple(actions))
