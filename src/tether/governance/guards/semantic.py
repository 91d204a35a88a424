"""Semantic loop detection: when a run's last few thoughts (its model responses) say nearly the
same thing, the agent is going round in circles even if no call repeats exactly.

Before each live model call of the run, the guard embeds the last ``window`` thoughts from the
run's effect journal (the llm plane's embedder: all-MiniLM-L6-v2 by default) and takes their
mean pairwise cosine similarity. Above ``threshold``:

1. the first time, it **warns and forces a re-plan**: the call about to be made gets a system
   message at the end of its prompt saying the recent plans are near-duplicates and asking for
   a new, different plan before acting again, and a higher temperature (``temperature_boost``
   over the request's, or over ``base_temperature`` when it set none); a ``loop_warning`` event
   (with ``replan: true``, for agent patterns that route to a planner) and an audit entry
   record it;
2. if the next check (the next model call, its window now holding the warned call's answer)
   is still above the threshold, it **trips**: the run parks ESCALATED (``guard="semantic"``).

It checks the run's own (journaled) model calls only: a call made outside the journal (a
judge a model consults, a guard model's check, ``journal=False``: ``scratch["nested"]``) is
not one of the run's thoughts, is not warned and costs no check.

Resuming the run starts a fresh window (only thoughts after the trip count);
``{"raise_limit": {"semantic": 0.99}}`` also raises the threshold for the run. Whether a
warning was given is kept in this process: after a crash the guard warns once more before it
trips.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tether.core.errors import ConfigurationError, InvalidInputError
from tether.core.finite import check_similarity
from tether.core.governor import GovernedCall
from tether.core.messages import Message
from tether.governance.guards.base import (
    LIMITS_KEY,
    WARNING_EVENT,
    Recent,
    raised_limit,
    run_limit,
    trip,
    tripped,
    with_limit,
)
from tether.governance.guards.thoughts import mean_pairwise_cosine, thoughts
from tether.governance.scope import GovernancePart, RunScope
from tether.llm.embeddings import Embedder, default_embedder
from tether.store.protocol import RunStore
from tether.store.types import RunRecord

GUARD = "semantic"
SINCE = "semantic_since"
"""In the run's guard settings: how many thoughts came before the last resume (not counted)."""

WARNING = (
    "Loop warning: your last {window} responses are nearly identical (mean similarity "
    "{score:.3f}). Repeating the same plan will not make progress. Stop, state what the results "
    "so far tell you, and make a new, different plan before you act again; if the task cannot "
    "be done, say so."
)


class SemanticLoopGuard(GovernancePart):
    """Warn (and force a re-plan), then trip, when the run's last ``window`` thoughts have a
    mean pairwise cosine similarity above ``threshold``. ``embedder``: any
    ``tether.llm.embeddings.Embedder`` (default: the shared MiniLM model, offline)."""

    def __init__(
        self,
        window: int = 5,
        threshold: float = 0.95,
        *,
        embedder: Embedder | None = None,
        temperature_boost: float = 0.3,
        base_temperature: float = 0.7,
    ) -> None:
        if isinstance(window, bool) or not isinstance(window, int) or window < 2:
            raise ConfigurationError(
                f"SemanticLoopGuard: window must be a whole number >= 2, got {window!r}"
            )
        threshold = check_similarity(
            "SemanticLoopGuard: threshold", threshold, low=0.0, low_open=True
        )
        if not 0.0 <= base_temperature <= 2.0 or temperature_boost < 0.0:
            raise ConfigurationError(
                "SemanticLoopGuard: base_temperature must be in [0, 2] and temperature_boost "
                f">= 0, got {base_temperature!r} and {temperature_boost!r}"
            )
        self.window, self.threshold = window, float(threshold)
        self.embedder: Embedder = embedder if embedder is not None else default_embedder()
        self.temperature_boost, self.base_temperature = temperature_boost, base_temperature
        self._warned: Recent[str, int] = Recent()
        """Per run: how many thoughts there were when it was warned."""
        self._vectors: Recent[str, Any] = Recent(4096)
        """Thoughts already embedded (by text): each check embeds only the new ones."""

    async def before_call(self, scope: RunScope, call: GovernedCall) -> None:
        if call.kind != "model" or call.scratch.get("nested"):
            return  # a judge's, a guard model's or a journal=False call is not the run's thought
        run = scope.run
        seen = thoughts(await scope.store.list_effects(run.run_id))
        since = int(run_limit(run, SINCE, 0))
        recent = seen[since:][-self.window :]
        threshold = run_limit(run, GUARD, self.threshold)
        if len(recent) < self.window:
            self._warned.pop(run.run_id)
            return
        score = await mean_pairwise_cosine(self.embedder, recent, self._vectors)
        if score <= threshold:
            self._warned.pop(run.run_id)
            return
        warned_at = self._warned.get(run.run_id)
        shown = [t if len(t) <= 200 else t[:197] + "..." for t in recent]
        if warned_at is not None and len(seen) > warned_at:
            self._warned.pop(run.run_id)
            await trip(
                scope,
                GUARD,
                f"loop guard 'semantic' tripped: the run's last {self.window} model responses "
                f"are near-duplicates (mean pairwise cosine {score:.3f} > {threshold}) even "
                "after a warning to re-plan. Resume the run to go on with a fresh window (or "
                f"with {{'raise_limit': {{'semantic': {min(1.0, round(score + 0.01, 2))}}}}} to "
                "tolerate more similarity), or cancel it",
                score=round(score, 4),
                threshold=threshold,
                window=self.window,
                thoughts=shown,
                seen=len(seen),
            )
        self._warn(call, score)
        self._warned.put(run.run_id, len(seen))
        data = {"guard": GUARD, "score": round(score, 4), "threshold": threshold, "replan": True}
        scope.emit(WARNING_EVENT, {**data, "temperature": call.request.temperature})
        await scope.audit("loop_guard.warning", {**data, "thoughts": shown})

    def _warn(self, call: GovernedCall, score: float) -> None:
        """Put the warning at the end of the call's prompt and raise its temperature."""
        request = call.request
        base = request.temperature if request.temperature is not None else self.base_temperature
        note = Message.system(WARNING.format(window=self.window, score=score))
        call.request = request.model_copy(
            update={
                "messages": (*request.messages, note),
                "temperature": min(2.0, base + self.temperature_boost),
            }
        )

    async def on_resume(
        self, store: RunStore, run: RunRecord, escalation: Mapping[str, Any], value: Any
    ) -> dict[str, Any] | None:
        details = tripped(escalation, GUARD)
        if details is None:
            return None
        score = float(details.get("score", 0.0))
        limit = raised_limit(value, GUARD, example=str(min(1.0, round(score + 0.01, 2))))
        meta = with_limit(run, SINCE, int(details.get("seen", 0)))
        if limit is None:
            return meta
        if isinstance(limit, bool) or not isinstance(limit, int | float) or not 0 < limit <= 1:
            raise InvalidInputError(
                f"raise_limit 'semantic' is the similarity threshold, a number in (0, 1], got "
                f"{limit!r}"
            )
        return {LIMITS_KEY: {**meta[LIMITS_KEY], GUARD: float(limit)}}
