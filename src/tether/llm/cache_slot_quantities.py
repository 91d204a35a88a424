"""The ``cache_slots`` steps that read quantities and literals: from-to routes, comparisons,
quoted strings, URLs, emails, dates, times, relative times, money, numbers, identifiers and
ordinals (see ``cache_slots`` for what each becomes)."""

from __future__ import annotations

import re
from decimal import Decimal

from tether.llm import cache_slot_words as w
from tether.llm.cache_slot_scanner import Scanner, number, rx, unit

# -- the steps, in order: each reads what the earlier ones left -------------------------------
_DET = r"(?:the\s+|my\s+|our\s+|your\s+|a\s+|an\s+)?"
_ROUTE = rx(
    rf"\bfrom\s+{_DET}([\w@.'-]+)[^.?!;\n]{{0,40}}?\b(?:to|into)\s+{_DET}([\w@.'-]+)"
    rf"|\b(?:to|into)\s+{_DET}([\w@.'-]+)\s+from\s+{_DET}([\w@.'-]+)"
)
_COMPARISON = rx(
    "(?:" + "|".join(rf"(?P<{k}>\b(?:{p})\b)" for k, p in w.COMPARISONS.items()) + ")"
    rf"(?=\s*(?:[$€£¥]\s?)?(?:{w.NUM}|(?:{'|'.join(w.NUMBER_WORDS)})\b))"
)


def routes_and_comparisons(s: Scanner) -> None:
    for m in _ROUTE.finditer(s.original):  # the ends keep their own slots too
        src, dst = (m[1], m[2]) if m[1] else (m[4], m[3])
        ends = (end.lower().rstrip(".'-") for end in (src, dst))
        s.exact.append(("route", " > ".join(ends)))
    for m in s.take(_COMPARISON):  # "over $100" vs "under $100"
        s.poles.append(("comparison", m.lastgroup or ""))
        s.consume(m)


_QUOTED = rx(r'"([^"\n]{1,200})"|`([^`\n]{1,200})`|(?<!\w)\'([^\'\n]{1,200})\'(?!\w)')
_URL = rx(r"\b(?:https?://|www\.)[^\s<>\"']+")
# Each starts where a token starts: "a-a-a-..." must not be tried from every letter (quadratic).
_EMAIL = rx(r"(?<![\w.+-])[\w.+-]+@[\w-]+(?:\.[\w-]+)+\b")
_HANDLE = rx(r"(?<![\w.])[#@][A-Za-z][\w-]*")
_FILE = rx(
    r"(?<![\w.-])[\w-]+\.(?:pdf|csv|xlsx?|docx?|json|ya?ml|txt|zip|png|jpe?g|log|py|js|ts|sql)\b"
)
_NUMBER_MARK = rx(r"(?:\b(?:no|nr|num)\.?\s*#?|#)(?=\d)")


def literals(s: Scanner) -> None:
    for m in s.take(_QUOTED):
        quoted = next(g for g in m.groups() if g is not None)
        s.consume(m, "entity", " ".join(quoted.lower().split()))
    for m in s.take(_URL):
        s.consume(m, "identifier", m.group().rstrip(".,;:!?)]}").lower())
    for pattern in (_EMAIL, _HANDLE, _FILE):
        for m in s.take(pattern):
            s.consume(m, "identifier", m.group().lower())
    for m in s.take(_NUMBER_MARK):  # "order no. 12", "#12": the number, not a negation
        s.consume(m)


_ISO_DATE = rx(r"\b(\d{4})-(\d{1,2})-(\d{1,2})\b")
_SLASH_DATE = rx(r"\b(\d{1,2})/(\d{1,2})(?:/(\d{2,4}))?\b")
_MONTH_DATE = rx(
    rf"(?:\b(\d{{1,2}})(?:st|nd|rd|th)?\s+(?:of\s+)?)?"
    rf"\b({'|'.join(sorted(w.MONTHS, key=len, reverse=True))})\b\.?"
    rf"(?:\s+(\d{{1,2}})(?:st|nd|rd|th)?\b(?!:))?(?:,?\s+(\d{{4}})\b)?"
)
_CLOCK = rx(r"\b(\d{1,2})(?::([0-5]\d))?\s*(a\.?m\.?|p\.?m\.?)(?!\w)")
_CLOCK_24 = rx(r"\b([01]?\d|2[0-3]):([0-5]\d)\b")
_CLOCK_WORDS = rx(r"\b(noon|midday|midnight)\b|\b(\d{1,2})\s*o'clock\b")


def dates_and_times(s: Scanner) -> None:
    for m in s.take(_ISO_DATE):
        s.consume(m, "date", f"{m[1]}-{int(m[2]):02d}-{int(m[3]):02d}")
    for m in s.take(_SLASH_DATE):
        s.consume(m, "date", f"{int(m[1])}/{int(m[2])}" + (f"/{m[3]}" if m[3] else ""))
    for m in s.take(_MONTH_DATE):
        name, day, year = m[2].lower(), m[1] or m[3], m[4]
        if not day and not year and not _bare_month(s, m, name):
            continue
        day_part = f"{int(day):02d}" if day else "*"
        s.consume(m, "date", f"{year or '*'}-{w.MONTHS[name]:02d}-{day_part}")
    for m in s.take(_CLOCK):
        hour = int(m[1]) % 12 + (12 if m[3].lower().startswith("p") else 0)
        s.consume(m, "time", f"{hour:02d}:{m[2] or '00'}")
    for m in s.take(_CLOCK_24):
        s.consume(m, "time", f"{int(m[1]):02d}:{m[2]}")
    for m in s.take(_CLOCK_WORDS):
        word = (m[1] or "").lower()
        value = "00:00" if word == "midnight" else "12:00" if word else f"{int(m[2])}:00"
        s.consume(m, "time", value)


def _bare_month(s: Scanner, m: re.Match[str], name: str) -> bool:
    """A month named without day or year: "May" and "march" are words too, "dec" an
    abbreviation only when capitalised."""
    if name in w.AMBIGUOUS_MONTHS:
        return m[2][0].isupper() and bool(w.MONTH_CONTEXT.search(s.before(m)))
    return name in w.FULL_MONTHS or m[2][0].isupper()


_DAY_AFTER = rx(r"\b(?:the\s+)?day\s+(after|before)\s+(tomorrow|yesterday)\b")
_RELATIVE_DAY = rx(rf"\b({'|'.join(w.RELATIVE_DAYS)})(?:'s)?\b")
_RELATIVE_PERIOD = rx(
    r"\b(?:this|current)\s+(evening)\b"
    rf"|\b({'|'.join(w.RELATIVE_MODIFIERS)})\s+({w.RELATIVE_UNITS})(?:s|'s)?\b"
)
_RELATIVE_WEEKDAY = rx(
    rf"\b({'|'.join(w.RELATIVE_MODIFIERS)})\s+(?=(?:mon|tues|wednes|thurs|fri|satur|sun)day)"
)
_PERIOD_EDGE = rx(
    r"\b(end|start|beginning|middle)\s+of\s+(?:the\s+)?(day|week|month|quarter|year)\b"
    r"|\b(eod|eow|eom)\b"
)
_AGO = rx(r"\bago\b")
_PART_OF_DAY = rx(r"\b(morning|afternoon|evening|night)s?\b")
_WEEKEND = rx(r"\b(weekend|weekday)s?\b")


def relative_times(s: Scanner) -> None:
    for m in s.take(_DAY_AFTER):
        s.consume(m, "relative", f"day {m[1].lower()} {m[2].lower()}")
    for m in s.take(_RELATIVE_DAY):
        s.consume(m, "relative", w.RELATIVE_DAYS[m[1].lower()])
    for m in s.take(_RELATIVE_PERIOD):
        if m[1]:
            s.consume(m, "relative", "tonight")
        else:
            s.consume(m, "relative", f"{w.RELATIVE_MODIFIERS[m[2].lower()]} {m[3].lower()}")
    for m in s.take(_RELATIVE_WEEKDAY):
        s.consume(m, "relative", w.RELATIVE_MODIFIERS[m[1].lower()])
    for m in s.take(_PERIOD_EDGE):
        edge = "start" if (m[1] or "").lower() == "beginning" else (m[1] or "").lower()
        value = w.PERIOD_EDGES[m[3].lower()] if m[3] else f"{edge} of {m[2].lower()}"
        s.consume(m, "relative", value)
    for m in s.take(_AGO):
        s.consume(m, "relative", "ago")
    for m in s.take(w.WEEKDAYS):
        s.consume(m, "date", (m[1] or m[2])[:3].lower())
    for m in s.take(_WEEKEND):
        s.consume(m, "date", m[1].lower())
    for m in s.take(_PART_OF_DAY):
        s.consume(m, "time", m[1].lower())


_SCALE = r"(\s?(?:k|bn|million|thousand|billion)\b)?"
_MONEY_BEFORE = rx(rf"([$€£¥]|\b(?:usd|eur|gbp|jpy|chf|cad|aud)\b)\s?({w.NUM}){_SCALE}")
_MONEY_AFTER = rx(
    rf"(?<![\w.])({w.NUM}){_SCALE}\s?"
    r"(usd|eur|gbp|jpy|chf|cad|aud|dollars?|euros?|pounds?|bucks?|yen|cents?)\b"
)


def money(s: Scanner) -> None:
    for m in s.take(_MONEY_BEFORE):
        s.consume(m, "amount", f"{number(m[2], m[3])} {w.CURRENCIES[m[1].lower()]}")
    for m in s.take(_MONEY_AFTER):
        unit = m[3].lower()
        currency = w.CURRENCIES.get(unit, w.CURRENCIES.get(unit.rstrip("s"), unit))
        amount = number(m[1], m[2])
        if currency == "usd-cent":
            amount, currency = number(str(Decimal(amount) / 100)), "usd"
        s.consume(m, "amount", f"{amount} {currency}")


_ORDINAL = rx(r"\b(\d+)(?:st|nd|rd|th)\b")
_NUMBER = rx(
    rf"(?<![\w.\-/])({w.NUM})(k\b)?(?:\s?({w.UNIT_PATTERN}))?(?![\w\-/])(?!\.\d)"
    rf"|\b({'|'.join(w.NUMBER_WORDS)})\b(?!-\w)(?:\s({w.UNIT_PATTERN})\b)?"
    r"|\b(twice)\b"
)
_IDENTIFIER = rx(r"(?<![\w@/.#-])[A-Za-z0-9]+(?:[-_/.][A-Za-z0-9]+)*(?![\w-])")
_ORDINAL_WORD = rx(rf"\b({'|'.join(w.ORDINAL_WORDS)})\b")
_POSITION = rx(
    r"\b(last|latest|newest|most recent|previous|prior(?!\s+to)|next(?!\s+to)|upcoming)\b"
)


def numbers(s: Scanner) -> None:
    for m in s.take(_ORDINAL):
        s.consume(m, "ordinal", str(int(m[1])))
    for m in s.take(_NUMBER):
        if m[6]:
            s.consume(m, "number", "2 x")
        elif m[1]:
            s.consume(m, "number", number(m[1], m[2]) + unit(m[3]))
        elif m[4].lower() != "one" or not w.ONE_AS_PRONOUN.search(s.before(m)):
            s.consume(m, "number", str(w.NUMBER_WORDS[m[4].lower()]) + unit(m[5]))
    for m in s.take(_IDENTIFIER):
        token = m.group()
        if any(c.isdigit() for c in token) and (
            any(c.isalpha() for c in token)
            or any(c in token for c in "-_/")
            or token.count(".") >= 2
        ):
            s.consume(m, "identifier", token.lower())
    for m in s.take(_ORDINAL_WORD):
        s.consume(m, "ordinal", str(w.ORDINAL_WORDS[m[1].lower()]))
    for m in s.take(_POSITION):
        s.consume(m, "ordinal", "next" if m[1].lower() in ("next", "upcoming") else "last")
