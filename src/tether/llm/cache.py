"""An agent-safe semantic cache: answers a question again when it is *worded* differently, never
when the conversation, the state, the tools or the model behind it differ.

Every request is split in two. The **scope** is everything but the wording of the last user
message: the model, the system prompt, the turns before and after that message (tool calls and
results included), the tools (names, schemas, scopes), tool_choice, response_format,
temperature, max_tokens, stop, seed, logprobs, the request's ``state_fingerprint`` and the
tenant of the run making the call (``RunContext.tenant``: one cache shared by a multi-tenant
server never serves one tenant's answer to another); it must match *exactly* (a hash). Only
then is the last user message compared with the questions cached in that scope, and the
closest at or above ``threshold`` is served, provided that:

* its **slots match** (``tether.llm.cache_slots``): the two questions name the same numbers,
  amounts, identifiers, dates, times, relative times, negations and names, and no opposite
  actions (increase/decrease, log in/log out...). So "order 1234" never gets the answer for
  "order 1235", nor "tomorrow" today's, nor "Don't cancel" the answer to "Cancel", however
  close their embeddings are;
* its **meaning is close**: the cosine similarity of their embeddings (all-MiniLM-L6-v2 by
  default) is at or above ``threshold``; the default, 0.72, is tuned on the labelled pairs of
  ``bench/data/cache_pairs.jsonl`` (``bench/cache_bench.py``). Questions with the same slots and
  another intent ("update" vs "verify my phone number") are told apart by the threshold alone:
  raise it where a wrong answer costs more than a model call.

A multi-turn agent whose history or state moved on therefore never gets another turn's answer.

Caching is opt-in per node: only calls made through a ``CachedModel`` use the cache, so wrap the
model for the nodes that want it and give the others the plain model::

    from tether.llm import Message, model_from_spec
    from tether.llm.cache import CachedModel, SemanticCache, fingerprint

    model = model_from_spec("openai:gpt-4o-mini")
    faq_model = CachedModel(model, SemanticCache(ttl=3600))

    async def answer_faq(state):                     # this node opts in
        reply = await faq_model.chat(
            [Message.system(FAQ_PROMPT), Message.user(state["question"])],
            state_fingerprint=fingerprint(state, ["plan", "locale"]),
        )
        return {"answer": reply.text}

    async def plan_refund(state):                    # this one does not
        return {"plan": (await model.chat(state["messages"])).text}

Put the CachedModel *outside* a structured-output wrapper, so only validated answers are cached.

What is never stored: answers that call a tool whose scope is ``write`` or ``destructive`` (or a
tool the request did not offer), unless ``allow_write_tools=True``; answers that did not finish
normally (finish_reason other than ``stop``/``tool_calls``: truncated at ``length``, filtered,
errors); empty answers; tool calls with malformed arguments; non-JSON text when a
response_format was asked for. Exceptions are never cached. Entries expire ``ttl`` seconds after
they were stored; beyond ``max_entries`` the least recently used go first.

A hit is the stored answer with zero usage and cost 0.0 (nothing was spent; the original usage
is in ``metadata["cache"]["usage"]``), timed afresh, with ``metadata["cache"] = {"hit": True,
"similarity": s, "age": seconds, "usage": {...}, "slots": ["number:1234", ...]}`` (the slots
both questions share). A miss carries ``{"hit": False, "stored": bool}`` plus ``"reason"`` when
the answer was not stored.

Single-flight: while a ``CachedModel`` call that missed is asking the model, an identical call
(same scope key, same last user message to the character) that misses too waits for it instead
of asking again, and is served its answer as a hit (similarity 1.0, zero usage and cost). When
the first call fails, is cancelled, or its answer may not be stored (the rules above), the
waiting calls each make their own. Streamed calls wait for a call in flight like the others, but
never lead one (see ``CachedModel.stream``).
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from tether.core.clock import SYSTEM_CLOCK, Clock
from tether.core.errors import ConfigurationError
from tether.core.finite import check_similarity, is_number
from tether.llm.cache_entries import (
    CacheLookup,
    CacheStats,
    Entry,
    Scope,
    key_of,
    served,
    slots_of,
)
from tether.llm.cache_keys import fingerprint, refusal, scope_of, write_calls
from tether.llm.cache_slots import Slots, extract_slots
from tether.llm.cached_model import CachedModel
from tether.llm.embeddings import Embedder, default_embedder, embed_unit
from tether.llm.types import ModelRequest, ModelResponse

__all__ = [
    "CacheLookup",
    "CacheStats",
    "CachedModel",
    "SemanticCache",
    "Slots",
    "extract_slots",
    "fingerprint",
    "refusal",
    "scope_of",
    "write_calls",
]

if TYPE_CHECKING:
    from tether.llm.embeddings import Vectors


class SemanticCache:
    """Answers by scope key, question slots and question meaning; shareable by several
    CachedModels (the model name is part of the scope). Brute-force cosine over the unit vectors
    of the questions with the same scope and slots."""

    def __init__(
        self,
        embedder: Embedder | None = None,
        *,
        threshold: float = 0.72,
        ttl: float | None = 3600.0,
        max_entries: int = 10_000,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        threshold = check_similarity("threshold", threshold, low=-1.0, low_open=True)
        if ttl is not None and not (is_number(ttl) and ttl > 0):
            raise ConfigurationError(f"ttl must be > 0 seconds or None (never expire), got {ttl!r}")
        if isinstance(max_entries, bool) or not isinstance(max_entries, int) or max_entries < 1:
            raise ConfigurationError(f"max_entries must be an int >= 1, got {max_entries!r}")
        self.embedder = embedder if embedder is not None else default_embedder()
        self.threshold, self.ttl, self.max_entries, self.clock = threshold, ttl, max_entries, clock
        self.stats = CacheStats()
        self._entries: dict[int, Entry] = {}
        self._used: OrderedDict[int, None] = OrderedDict()  # least recently used first
        self._scopes: dict[str, Scope] = {}
        self._flights: dict[tuple[str, str], asyncio.Future[Entry | None]] = {}
        self._next_id = 0

    def __len__(self) -> int:
        self.purge_expired()
        return len(self._entries)

    async def lookup(
        self,
        model: str,
        request: ModelRequest,
        *,
        allow_write_tools: bool = False,
        tenant: str | None = None,
    ) -> CacheLookup:
        """The cached answer for ``request`` to ``model`` asked for ``tenant``, if any. On a
        miss, when an identical call is in flight under ``lead``, waits for it and serves its
        answer (see the module docs)."""
        scoped = scope_of(model, request, tenant)
        if scoped is None:
            self.stats.misses += 1
            return CacheLookup(request, None, "")
        scope, question = scoped
        slots = await slots_of(question)
        found = CacheLookup(request, scope, question, slots=slots)
        key = key_of(scope, slots)
        self.purge_expired()
        if key in self._scopes:
            found.vector = (await embed_unit(self.embedder, [question]))[0]
            found.response = self._best(key, found.vector, slots, allow_write_tools)
        if found.response is None:
            found.response = await self._shared(scope, question, allow_write_tools)
        if found.response is None:
            self.stats.misses += 1
        else:
            self.stats.hits += 1
        return found

    def _best(
        self, key: str, vector: Vectors, slots: Slots, allow_write_tools: bool
    ) -> ModelResponse | None:
        self.purge_expired()
        scope = self._scopes.get(key)
        if scope is None:
            return None
        for entry_id, similarity in scope.index.search(vector, self.threshold):
            entry = self._entries[entry_id]
            if (entry.writes and not allow_write_tools) or not entry.slots.matches(slots):
                continue  # (equal exact slots share the key; opposite poles may not hit)
            self._used.move_to_end(entry_id)
            return served(entry, min(similarity, 1.0), self.clock.now() - entry.stored_at)
        return None

    async def _shared(
        self, scope: str, question: str, allow_write_tools: bool
    ) -> ModelResponse | None:
        """The answer of the identical call in flight, once it has landed; None when there is
        none, or it stored nothing (failed, cancelled, refused) or nothing this caller may use."""
        flight = self._flights.get((scope, question))
        if flight is None:
            return None
        entry = await asyncio.shield(flight)  # a waiter's cancellation is not the leader's
        if entry is None or (entry.writes and not allow_write_tools):
            return None
        return served(entry, 1.0, self.clock.now() - entry.stored_at)

    @contextmanager
    def lead(self, lookup: CacheLookup) -> Iterator[None]:
        """Around the model call after a miss: marks the question as in flight, so identical
        calls that miss meanwhile wait in ``lookup`` for the answer ``store`` keeps. However the
        block ends without one stored (an error, cancellation, a refused answer), they are
        released to make their own calls. A no-op when the question is in flight already."""
        if lookup.scope is None or (lookup.scope, lookup.question) in self._flights:
            yield
            return
        key = (lookup.scope, lookup.question)
        flight = self._flights[key] = asyncio.get_running_loop().create_future()
        try:
            yield
        finally:
            del self._flights[key]
            if not flight.done():
                flight.set_result(None)

    async def store(
        self, lookup: CacheLookup, response: ModelResponse, *, allow_write_tools: bool = False
    ) -> str | None:
        """Keep ``response`` as the answer to the looked-up request (and hand it to identical
        calls waiting for it); returns why it was not kept (see the module docs), or None."""
        why = "no user message" if lookup.scope is None else None
        why = why or refusal(lookup.request, response, allow_write_tools)
        if why is not None or lookup.scope is None:
            self.stats.refused += 1
            return why
        if lookup.vector is None:
            lookup.vector = (await embed_unit(self.embedder, [lookup.question]))[0]
        if lookup.slots is None:
            lookup.slots = await slots_of(lookup.question)
        key = key_of(lookup.scope, lookup.slots)
        scope = self._scopes.setdefault(key, Scope())
        if (old := scope.questions.get(lookup.question)) is not None:
            self._drop(old)
            scope = self._scopes.setdefault(key, scope)
        self._next_id += 1
        entry = self._entries[self._next_id] = Entry(
            key,
            lookup.question,
            lookup.vector,
            response.model_copy(deep=True),
            self.clock.now(),
            bool(write_calls(lookup.request, response)),
            lookup.slots,
        )
        self._used[self._next_id] = None
        scope.index.add(self._next_id, lookup.vector)
        scope.questions[lookup.question] = self._next_id
        self.stats.stores += 1
        flight = self._flights.get((lookup.scope, lookup.question))
        if flight is not None and not flight.done():
            flight.set_result(entry)
        if len(self._entries) > self.max_entries:
            self.purge_expired()
        while len(self._entries) > self.max_entries:
            self._drop(next(iter(self._used)))
            self.stats.evicted += 1
        return None

    def purge_expired(self) -> int:
        """Drop the entries older than ``ttl``; returns how many."""
        if self.ttl is None:
            return 0
        cutoff = self.clock.now() - self.ttl
        old = []
        for entry_id, entry in self._entries.items():  # in the order they were stored
            if entry.stored_at > cutoff:
                break
            old.append(entry_id)
        for entry_id in old:
            self._drop(entry_id)
        self.stats.expired += len(old)
        return len(old)

    def clear(self) -> None:
        self._entries.clear()
        self._used.clear()
        self._scopes.clear()

    def _drop(self, entry_id: int) -> None:
        entry = self._entries.pop(entry_id)
        del self._used[entry_id]
        scope = self._scopes[entry.key]
        scope.index.remove(entry_id)
        del scope.questions[entry.question]
        if not scope.questions:
            del self._scopes[entry.key]
