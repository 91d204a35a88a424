"""The summarising policy: fold the oldest turns into the session summary with a model call.

The call is an ordinary ``model.chat``: inside a run it goes through the run's effect journal
(and its governor: budget, policy), so a resumed or crash-recovered run gets the recorded
summary back and never pays for it twice. Which turns are folded depends only on the
conversation and the counts, so a re-run of the node asks the same question with the same
journal key.
"""

from __future__ import annotations

from tether.core.errors import ConfigurationError, ModelResponseError
from tether.core.messages import Message
from tether.llm.model import Model
from tether.memory.compaction import CompactionPlan
from tether.memory.conversation import Conversation
from tether.memory.tokens import TokenCounter

INSTRUCTIONS = (
    "You maintain the running summary of a conversation between a user and an assistant. "
    "Rewrite the summary so it also covers the new messages. Keep every fact, name, number, "
    "identifier, decision, date and open question; drop greetings and repetition. Write plain "
    "sentences, at most {cap} tokens."
)
SUMMARY_MARKER = "tether.memory.summary"
"""The ``name`` of the summariser's system message: marks the journal's summary calls."""


def transcript(messages: tuple[Message, ...]) -> str:
    lines = []
    for m in messages:
        text = m.content
        for call in m.tool_calls:
            text += f" [calls {call.name}({call.arguments})]"
        who = f"tool {m.name}" if m.role == "tool" and m.name else m.role
        lines.append(f"{who}: {text}")
    return "\n".join(lines)


def fit_text(text: str, cap: int, counter: TokenCounter) -> str:
    """``text`` cut (at the end, marked with an ellipsis) to at most ``cap`` tokens."""
    n = counter.count_text(text)
    while n > cap and text:
        text = text[: max(0, int(len(text) * cap / n * 0.95) - 1)].rstrip() + "…"
        n = counter.count_text(text)
    return text


class Summarize:
    """Fold the oldest turns (all but the ``keep_recent`` latest units) into the summary.

    ``model`` writes the summary (the run's own model or a cheaper one); ``summary_tokens``
    caps it (default: a fifth of the budget, at least 32 tokens; a longer answer is cut to
    the cap). Each call folds as many of the oldest units as needed to reach the target, as
    many as fit in one request of the budget's size; a very long history takes several calls.
    """

    name = "summarize"

    def __init__(
        self,
        model: Model,
        *,
        summary_tokens: int | None = None,
        instructions: str = INSTRUCTIONS,
        max_calls: int = 8,
    ) -> None:
        if not isinstance(model, Model):
            raise ConfigurationError(
                f"Summarize needs a tether Model to write summaries, got {type(model).__name__}"
            )
        if summary_tokens is not None and summary_tokens < 16:
            raise ConfigurationError(f"summary_tokens must be at least 16, got {summary_tokens}")
        if max_calls < 1:
            raise ConfigurationError(f"max_calls must be at least 1, got {max_calls}")
        self.model = model
        self.summary_tokens = summary_tokens
        self.instructions = instructions
        self.max_calls = max_calls

    def cap(self, plan: CompactionPlan) -> int:
        return self.summary_tokens or max(32, plan.budget // 5)

    async def compact(self, conv: Conversation, plan: CompactionPlan) -> Conversation:
        for _ in range(self.max_calls):
            folded = await self._fold_once(conv, plan)
            if folded is conv:
                break
            conv = folded
            if plan.tokens(conv) <= plan.target:
                break
        return conv

    def _span(self, conv: Conversation, plan: CompactionPlan, cap: int) -> int:
        """How many of the oldest turns to fold: enough to reach the target, no more than one
        request of the budget's size holds (at least one unit)."""
        count = plan.counter.count_message
        over = plan.tokens(conv) - plan.target
        need = over + max(0, cap - plan.counter.count_text(conv.summary))
        room = plan.budget - 2 * cap - count(Message.system(self.instructions))
        removed = cut = 0
        for start, end in plan.old_units(conv):
            size = sum(count(m) for m in conv.turns[start:end])
            if cut and removed + size > room:
                break
            removed += size
            cut = end
            if removed >= need:
                break
        return cut

    async def _fold_once(self, conv: Conversation, plan: CompactionPlan) -> Conversation:
        if plan.tokens(conv) <= plan.target:
            return conv
        cap = self.cap(plan)
        cut = self._span(conv, plan, cap)
        if cut == 0:
            return conv
        room = max(cap, plan.budget - 2 * cap)
        text = fit_text(transcript(conv.turns[:cut]), room, plan.counter)
        ask = f"Summary so far:\n{conv.summary or '(none yet)'}\n\nNew messages:\n{text}"
        system = Message(
            role="system", content=self.instructions.replace("{cap}", str(cap)), name=SUMMARY_MARKER
        )
        response = await self.model.chat(
            [system, Message.user(ask)], max_tokens=cap, temperature=0.0
        )
        summary = response.text.strip()
        if not summary:
            raise ModelResponseError(
                f"{self.model.name} returned an empty summary while compacting {cut} messages; "
                "nothing was dropped. Use a model that can summarise, or a SlidingWindow",
                model=self.model.name,
            )
        return conv.model_copy(
            update={
                "summary": fit_text(summary, cap, plan.counter),
                "turns": conv.turns[cut:],
                "folded": conv.folded + cut,
            }
        )
