"""The ``cache_slots`` steps that read words: frequencies, environments, places and plan names,
negations and polarity, and capitalised names (see ``cache_slots``)."""

from __future__ import annotations

import re

from tether.llm import cache_slot_poles as p
from tether.llm import cache_slot_words as w
from tether.llm.cache_slot_scanner import Scanner, rx

_FREQUENCY = rx(
    r"\b(hourly|daily|nightly|weekly|biweekly|fortnightly|monthly|quarterly|yearly|annual|"
    r"annually)\b|\b(?:per|every|each)\s+(hour|day|night|week|month|quarter|year|annum)\b"
)
_ENVIRONMENT = rx(rf"\b({'|'.join(sorted(w.ENVIRONMENTS, key=len, reverse=True))})\b")
_PLACE = rx(rf"\b({'|'.join(sorted(w.GAZETTEER))})\b")
_PLAN = rx(rf"\b(?:{w.PLAN_LEAD})\s+([A-Za-z][\w-]*)\s+(?=(?:{w.PLAN_NOUNS})s?\b)")


def names(s: Scanner) -> None:
    for m in s.take(_FREQUENCY):
        s.consume(m, "frequency", w.FREQUENCIES[(m[1] or m[2]).lower()])
    for m in s.take(_ENVIRONMENT):
        s.consume(m, "environment", w.ENVIRONMENTS[m[1].lower()])
    for m in s.take(_PLACE):
        s.consume(m, "entity", m[1].lower())
    for m in s.take(_PLAN):
        if m[1].lower() not in w.NOT_PLAN_NAMES:
            s.consume(m, "entity", m[1].lower(), group=1)


def _polarity_pattern() -> tuple[re.Pattern[str], dict[str, tuple[str, str]]]:
    groups: dict[str, tuple[str, str]] = {}
    parts: list[str] = []
    for axis, poles in p.POLARITY.items():
        for pole, pattern in poles.items():
            name = f"p{len(groups)}"
            groups[name] = (axis, pole)
            parts.append(rf"(?P<{name}>{pattern})")
    return rx(rf"\b(?:{'|'.join(parts)})\b"), groups  # one \b first: most places fail fast


_POLARITY, _POLE_OF = _polarity_pattern()


def polarity(s: Scanner) -> None:
    for m in s.take(p.NEGATIONS):
        s.consume(m, "negation", "not")
    for m in s.take(p.UP_DOWN):
        s.poles.append(("amount", "increase" if m[1].lower() == "up" else "decrease"))
    for m in s.take(_POLARITY):
        s.poles.append(_POLE_OF[m.lastgroup or ""])
        s.consume(m)


_WORD = re.compile(r"[^\W\d_][\w'&+-]*")


def entities(s: Scanner) -> None:
    """Names: capitalised words not opening a sentence, acronyms and camel case anywhere;
    consecutive ones are one name ("New York"). Title Case or ALL CAPS text names nothing by
    capitals alone."""
    words = list(_WORD.finditer(s.text))
    tokens = [m.group() for m in words]
    long = [t for t in tokens[1:] if len(t) > 3]  # "How to Reset a Password": title case
    title_case = len(long) >= 2 and sum(t[0].isupper() for t in long) >= 0.75 * len(long)
    shouting = len(tokens) >= 3 and sum(t.isupper() for t in tokens) >= 0.6 * len(tokens)
    names: list[tuple[int, int]] = []
    for m in words:
        token = m.group()
        bare = token[:-2] if token.lower().endswith("'s") else token
        if bare.lower() in w.NOT_NAMES:
            continue
        camel = any(c.isupper() for c in bare[1:]) and not bare.isupper()
        acronym = bare.isupper() and len(bare) > 1 and not shouting
        plain = bare[0].isupper() and not (title_case or shouting or s.opens_sentence(m.start()))
        if camel or acronym or plain:
            if names and s.text[names[-1][1] : m.start()] == " ":
                names[-1] = (names[-1][0], m.start() + len(bare))  # "New York": one name
            else:
                names.append((m.start(), m.start() + len(bare)))
    for a, b in names:
        s.note("entity", s.text[a:b].lower(), a)
