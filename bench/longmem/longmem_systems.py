"""The three memory set-ups the long-memory bench compares, each answering with the shared
deterministic reader (``longmem_reader``):

- ``CompactionOnly``: no store; the whole conversation goes through tether's ContextWindow
  (a budget of ``budget`` tokens, compaction at 70 %), and a question is answered from the
  prompt the run would send at that moment (summary + recent turns). Two policies: a sliding
  window, and Summarize with an extractive summariser that keeps every fact sentence (an
  upper bound for a summarising model: it never forgets a fact it was shown);
- ``Episodic``: every turn is a memory (MiniLM vectors + full text, SQLite); a question is
  one hybrid search (k=10), a multi-hop question a second search for the entity found;
- ``EpisodicKG``: the same memories, plus the facts the reader's patterns find in each turn
  asserted into the knowledge graph at ingestion (no model call); questions are knowledge
  graph queries (current value, ``history``, two-hop ``hops``), falling back to search.
"""

from __future__ import annotations

import re
import time
from typing import Any

from longmem_data import Conversation
from longmem_reader import (
    ENTITY,
    HOP_QUERY,
    PATTERNS,
    USER,
    Ask,
    answer,
    entity_value,
    kg_facts,
    parse,
)

from tether.core.messages import Message
from tether.llm import FunctionModel
from tether.llm.model import estimate_tokens
from tether.llm.types import ModelRequest
from tether.memory import (
    ContextWindow,
    EstimateCounter,
    MemoryScope,
    NewMemory,
    SlidingWindow,
    Summarize,
)
from tether.memory import (
    Conversation as Prompt,
)

FACTS = [*PATTERNS.values(), *ENTITY.values()]


def is_fact(text: str) -> bool:
    return any(p.search(text) for p in FACTS)


def fact_sentences(text: str) -> list[str]:
    return [s.strip() for s in re.split(r"(?<=[.!?])\s+", text) if is_fact(s)]


def extractive(request: ModelRequest) -> str:
    """The summariser of CompactionOnly(summarise): the fact sentences of the summary so far
    and of the new messages, in order."""
    ask = request.messages[-1].content
    before, _, new = ask.partition("\n\nNew messages:\n")
    kept = [ln for ln in before.removeprefix("Summary so far:\n").splitlines() if is_fact(ln)]
    for line in new.splitlines():
        kept.extend(fact_sentences(line.partition(": ")[2]))
    return "\n".join(kept) or "Nothing factual yet."


class CompactionOnly:
    def __init__(self, policy: str, budget: int) -> None:
        self.name = f"compaction ({policy})"
        self.summariser = FunctionModel(extractive, name="extractive")
        policies = [SlidingWindow()] if policy == "sliding window" else [Summarize(self.summariser)]
        self.window = ContextWindow(limit=budget, policies=policies, counter=EstimateCounter())
        self.prompts: dict[str, Any] = {}

    async def ingest(self, conv: Conversation) -> None:
        prompt = Prompt.start("Chat with the user and remember what matters.")
        for turn in conv.turns:
            prompt = prompt.add(Message(role=turn.role, content=turn.text))  # type: ignore[arg-type]
            prompt = (await self.window.fit(prompt)).conversation
        self.prompts[conv.user] = await self.window.fit(prompt)

    def _items(self, user: str) -> tuple[list[tuple[float, str]], int]:
        fitted = self.prompts[user]
        conv = fitted.conversation
        items = [(-1e9 + i, line) for i, line in enumerate(conv.summary.splitlines())]
        items += [(float(i), m.content) for i, m in enumerate(conv.turns)]
        return items, fitted.tokens

    async def ask(self, user: str, question: str) -> tuple[str | None, int, float]:
        t0 = time.perf_counter()
        items, tokens = self._items(user)
        a = parse(question)
        if a.kind == "multi_hop":
            subject = answer(Ask("current", a.attr), items)
            got = entity_value(items, a.value or "", subject) if subject else None
        else:
            got = answer(a, items)
        return got, tokens, time.perf_counter() - t0


class Episodic:
    name = "episodic search"

    def __init__(self, memory: Any, k: int = 10) -> None:
        self.memory = memory
        self.k = k
        self.search_s: list[float] = []

    async def ingest(self, conv: Conversation) -> None:
        scope = MemoryScope(conv.user)
        by_session: dict[int, list[NewMemory]] = {}
        for t in conv.turns:
            by_session.setdefault(t.session, []).append(
                NewMemory(t.text, metadata={"role": t.role}, created_at=t.ts)
            )
        for items in by_session.values():
            for i in range(0, len(items), 256):
                await self.memory.add_many(items[i : i + 256], scope=scope)

    async def _search(self, user: str, query: str) -> list[tuple[float, str]]:
        t0 = time.perf_counter()
        hits = await self.memory.search(
            query, scope=MemoryScope(user), k=self.k, record_access=False
        )
        self.search_s.append(time.perf_counter() - t0)
        return [(h.memory.created_at, h.memory.text) for h in hits]

    async def ask(self, user: str, question: str) -> tuple[str | None, int, float]:
        t0 = time.perf_counter()
        a = parse(question)
        items = await self._search(user, question)
        read = list(items)
        if a.kind == "multi_hop":
            subject = answer(Ask("current", a.attr), items)
            got = None
            if subject:
                more = await self._search(user, HOP_QUERY[a.value or ""].format(s=subject))
                read += more
                got = entity_value(more, a.value or "", subject)
        else:
            got = answer(a, items)
        tokens = sum(estimate_tokens(t) for _, t in read)
        return got, tokens, time.perf_counter() - t0


class EpisodicKG(Episodic):
    name = "episodic + KG"

    def __init__(self, memory: Any, k: int = 10) -> None:
        super().__init__(memory, k)
        self.kg = memory.kg
        self.assert_s: list[float] = []

    async def ingest(self, conv: Conversation) -> None:
        """The memories are shared with ``Episodic`` (ingested once); this adds the facts."""
        scope = MemoryScope(conv.user)
        for t in conv.turns:
            for s, r, o in kg_facts(t.text):
                t0 = time.perf_counter()
                await self.kg.assert_fact(s, r, o, scope=scope, valid_from=t.ts, functional=True)
                self.assert_s.append(time.perf_counter() - t0)

    async def _kg(self, user: str, a: Ask) -> tuple[str | None, list[str]]:
        scope = MemoryScope(user)
        if a.kind == "current":
            facts = await self.kg.facts(scope=scope, subject=USER, relation=a.attr)
            return (facts[0].object if facts else None), [
                f"{USER} {a.attr} {f.object}" for f in facts
            ]
        if a.kind == "before":
            hist = await self.kg.history(USER, a.attr, scope=scope)
            objs = [f.object for f in hist]
            lines = [f"{USER} {a.attr} {o}" for o in objs]
            if a.value in objs and objs.index(a.value) > 0:
                return objs[objs.index(a.value) - 1], lines
            return None, lines
        hops = await self.kg.hops(USER, scope=scope, relations=[a.attr, a.value or ""], depth=2)
        for h in hops:
            rels = [f.relation for f in h.path]
            if h.depth == 2 and rels == [a.attr, a.value]:
                return h.node, [f"{f.subject} {f.relation} {f.object}" for f in h.path]
        return None, []

    async def ask(self, user: str, question: str) -> tuple[str | None, int, float]:
        t0 = time.perf_counter()
        got, lines = await self._kg(user, parse(question))
        self.search_s.append(time.perf_counter() - t0)
        if got is not None:
            tokens = sum(estimate_tokens(x) for x in lines)
            return got, tokens, time.perf_counter() - t0
        got, tokens, _ = await super().ask(user, question)
        return got, tokens + sum(estimate_tokens(x) for x in lines), time.perf_counter() - t0
