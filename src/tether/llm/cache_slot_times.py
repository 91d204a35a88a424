"""The ``cache_slots`` steps that read when: dates (2024-05-01, 3/14, March 3, weekdays),
clock times with their time zone (3pm EST, 15:00, half past six, noon) and relative times
(today, next week, three days ago); see ``cache_slots`` for what each becomes."""

from __future__ import annotations

import re

from tether.llm import cache_slot_units as u
from tether.llm import cache_slot_words as w
from tether.llm.cache_slot_scanner import Scanner, rx

_ISO_DATE = rx(r"\b(\d{4})-(\d{1,2})-(\d{1,2})\b")
_SLASH_DATE = rx(r"\b(\d{1,2})/(\d{1,2})(?:/(\d{2,4}))?\b")
_MONTH_DATE = rx(
    rf"(?:\b(\d{{1,2}})(?:st|nd|rd|th)?\s+(?:of\s+)?)?"
    rf"\b({'|'.join(sorted(w.MONTHS, key=len, reverse=True))})\b\.?"
    rf"(?:\s+(\d{{1,2}})(?:st|nd|rd|th)?\b(?!:))?(?:,?\s+(\d{{4}})\b)?"
)
_HOURS = tuple(k for k, v in w.NUMBER_WORDS.items() if 1 <= v <= 12 and k != "dozen")
_HOUR = rf"(\d{{1,2}}|{'|'.join(_HOURS)}|noon|midnight)"
_MERIDIEM = r"(?:\s*(a\.?m\.?|p\.?m\.?)(?!\w))?"
# "half past six", "a quarter to 7", "20 minutes past 6", "ten past six" (the hour as said).
_CLOCK_SAID = rx(
    r"\b(?:(half|(?:a\s+)?quarter)\s+(past|after|to|till)"
    r"|(\d{1,2}|five|ten|twenty|twenty[\s-]five)\s+(?:minutes?\s+)?(past|after|to|till)"
    rf")\s+{_HOUR}\b{_MERIDIEM}{u.ZONE}"
)
_CLOCK = rx(rf"\b(\d{{1,2}})(?::([0-5]\d))?\s*(a\.?m\.?|p\.?m\.?)(?!\w){u.ZONE}")
_CLOCK_24 = rx(rf"\b([01]?\d|2[0-3]):([0-5]\d)\b{_MERIDIEM}{u.ZONE}")
_CLOCK_WORDS = rx(
    rf"\b(noon|midday|midnight)\b{u.ZONE}"
    rf"|\b(\d{{1,2}}|{'|'.join(_HOURS)})\s*o'clock\b{_MERIDIEM}{u.ZONE}"
)


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
    for m in s.take(_CLOCK_SAID):
        said = (m[1] or m[3]).lower().replace("a ", "").replace(" ", "-").strip()
        minutes = {"half": 30, "quarter": 15, "five": 5, "ten": 10, "twenty": 20}.get(said, 25)
        minutes = int(said) if said.isdigit() else minutes
        hour = _hour(m[5])
        if (m[2] or m[4]).lower() in ("to", "till"):
            hour, minutes = (hour - 1) % 24, 60 - minutes
        s.consume(m, "time", _clock(hour, minutes % 60, m[6]) + u.zone(m, 7))
    for m in s.take(_CLOCK):
        s.consume(m, "time", _clock(int(m[1]), int(m[2] or 0), m[3]) + u.zone(m, 4))
    for m in s.take(_CLOCK_24):
        s.consume(m, "time", _clock(int(m[1]), int(m[2]), m[3]) + u.zone(m, 4))
    for m in s.take(_CLOCK_WORDS):
        if m[1]:
            hour = 0 if m[1].lower() == "midnight" else 12
            s.consume(m, "time", f"{hour:02d}:00" + u.zone(m, 2))
        else:
            s.consume(m, "time", _clock(_hour(m[5]), 0, m[6]) + u.zone(m, 7))


def _hour(said: str) -> int:
    said = said.lower()
    if said in ("noon", "midnight"):
        return 12 if said == "noon" else 0
    return int(said) if said.isdigit() else _HOURS.index(said) + 1


def _clock(hour: int, minutes: int, meridiem: str | None) -> str:
    """'15:05' for 3, 5, 'pm'; '06:30' for 6, 30 and no meridiem (as 06:30 is read)."""
    if meridiem:
        hour = hour % 12 + (12 if meridiem.lower().startswith("p") else 0)
    return f"{hour:02d}:{minutes:02d}"


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
