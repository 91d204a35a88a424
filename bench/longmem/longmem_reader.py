"""The deterministic reader every system shares: what a question asks, and the answer a set
of timestamped texts gives (no model, so the scores measure the memory, not a reader).

``parse`` maps a question to (kind, attribute, the value it names). ``facts_in`` pulls the
first-person facts and the entity facts out of a text with fixed patterns; the same patterns
feed the knowledge graph at ingestion (``kg_facts``), so the episodic and the KG systems read
the same facts, and differ only in what their memory hands back.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

USER = "user"
PATTERNS: dict[str, re.Pattern[str]] = {
    "lives_in": re.compile(r"\b(?:I just moved to|We relocated to) (?P<v>[A-Z][a-z]+)"),
    "works_at": re.compile(r"\bI (?:started a new job at|now work at) (?P<v>[A-Z][a-z]+)"),
    "manager": re.compile(r"\bMy (?:manager is now|new manager is) (?P<v>[A-Z][a-z]+)"),
    "pet": re.compile(r"\bOur dog is called (?P<v>[A-Z][a-z]+)"),
    "leads": re.compile(r"\bI now lead project (?P<v>[A-Z]{2}-\d{2})"),
    "drives": re.compile(r"\bI drive a (?P<v>[A-Z][A-Za-z0-9]+)"),
}
ENTITY: dict[str, re.Pattern[str]] = {
    "office_in": re.compile(r"\b(?P<s>[A-Z][a-z]+) works out of the (?P<v>[A-Z][a-z]+) office"),
    "written_in": re.compile(
        r"\bProject (?P<s>[A-Z]{2}-\d{2}) is written in (?P<v>[A-Z][A-Za-z]+)"
    ),
}
HOPS = {  # multi-hop question -> (user attribute, entity relation)
    "In which city is the office of the user's current manager?": ("manager", "office_in"),
    "In which language is the project the user leads now written?": ("leads", "written_in"),
}
HOP_QUERY = {"office_in": "{s} works out of the office", "written_in": "Project {s} is written in"}
_NOW = [
    (re.compile(r"Where does the user live now"), "lives_in"),
    (re.compile(r"Which company does the user work at now"), "works_at"),
    (re.compile(r"Who is the user's manager now"), "manager"),
    (re.compile(r"name of the user's dog"), "pet"),
    (re.compile(r"Which project does the user lead now"), "leads"),
    (re.compile(r"Which car does the user drive now"), "drives"),
]
_BEFORE = [
    (re.compile(r"Where did the user live before moving to (\S+)\?"), "lives_in"),
    (re.compile(r"Which company did the user work at before (\S+)\?"), "works_at"),
    (re.compile(r"Who was the user's manager before (\S+)\?"), "manager"),
    (re.compile(r"Which project did the user lead before (\S+)\?"), "leads"),
    (re.compile(r"Which car did the user drive before the (\S+)\?"), "drives"),
]


@dataclass(frozen=True, slots=True)
class Ask:
    kind: str
    attr: str
    value: str | None = None
    """``before``: the value the question names; ``multi_hop``: the entity relation."""


def parse(question: str) -> Ask:
    if question in HOPS:
        attr, rel = HOPS[question]
        return Ask("multi_hop", attr, rel)
    for pattern, attr in _BEFORE:
        m = pattern.search(question)
        if m:
            return Ask("before", attr, m.group(1))
    for pattern, attr in _NOW:
        if pattern.search(question):
            return Ask("current", attr)
    raise ValueError(f"the reader does not know the question {question!r}")


def user_facts(text: str, attr: str) -> list[str]:
    return [m.group("v") for m in PATTERNS[attr].finditer(text)]


def kg_facts(text: str) -> list[tuple[str, str, str]]:
    """(subject, relation, object) triples a text states."""
    out = [(USER, attr, v) for attr in PATTERNS for v in user_facts(text, attr)]
    for rel, pattern in ENTITY.items():
        out.extend((m.group("s"), rel, m.group("v")) for m in pattern.finditer(text))
    return out


def timeline(items: Iterable[tuple[float, str]], attr: str) -> list[str]:
    """The values of ``attr`` the texts state, oldest first (ties keep their order)."""
    found: list[tuple[float, int, str]] = []
    for n, (ts, text) in enumerate(items):
        found.extend((ts, n, v) for v in user_facts(text, attr))
    found.sort()
    out: list[str] = []
    for _, _, v in found:
        if not out or out[-1] != v:
            out.append(v)
    return out


def answer(ask: Ask, items: list[tuple[float, str]]) -> str | None:
    """The answer the texts give to a ``current`` or ``before`` question (multi-hop questions
    are answered in two reads by the systems)."""
    values = timeline(items, ask.attr)
    if not values:
        return None
    if ask.kind == "current":
        return values[-1]
    if ask.value in values:
        i = values.index(ask.value)
        return values[i - 1] if i > 0 else None
    return values[-2] if len(values) > 1 else None


def entity_value(items: list[tuple[float, str]], relation: str, subject: str) -> str | None:
    """The latest value of ``subject``'s ``relation`` in the texts."""
    best: tuple[float, str] | None = None
    for ts, text in items:
        for m in ENTITY[relation].finditer(text):
            if m.group("s") == subject and (best is None or ts >= best[0]):
                best = (ts, m.group("v"))
    return best[1] if best else None
