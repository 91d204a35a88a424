"""The ``cache_slots`` step that reads numbers: 1,234, -5, .5, 3.10 (as written: a version
3.10 is not 3.1, order 0042 is not 42), 5k, 10 kg, 30 °C, twenty-three, one hundred and five,
twice; then codes with digits (identifiers, as written) and ordinals."""

from __future__ import annotations

import re

from tether.llm import cache_slot_units as u
from tether.llm import cache_slot_words as w
from tether.llm.cache_slot_scanner import Scanner, number, rx

_ORDINAL = rx(r"\b(\d+)(?:st|nd|rd|th)\b")
_NUMBER = rx(
    rf"(?<![\w.\-/])(-?)({w.NUM})(\s?(?:k|bn|mn|thousand|million|billion|trillion)\b)?"
    rf"(?:\s?({u.UNIT_PATTERN}))?(?![\w\-/])(?!\.\d)"
    r"|\b(twice)\b"
)
_WORDS = "|".join(sorted(w.NUMBER_WORDS, key=len, reverse=True))
# A number said in words: "twenty-three", "one hundred and five", "twenty eighteen" (20, 18).
_SPELLED = rx(
    rf"\b(?:{_WORDS})(?:(?:[\s-]+|\s+and\s+)(?:{_WORDS})\b)*\b(?!-\w)"
    rf"(?:\s({u.UNIT_PATTERN})(?![\w\-/]))?"
)
_SPELLED_WORD = rx(rf"\b(?:{_WORDS}|and)\b")
_IDENTIFIER = rx(r"(?<![\w@/.#-])[A-Za-z0-9]+(?:[-_/.][A-Za-z0-9]+)*(?![\w-])")
_ORDINAL_WORD = rx(rf"\b({'|'.join(w.ORDINAL_WORDS)})\b")
_POSITION = rx(
    r"\b(last|latest|newest|most recent|previous|prior(?!\s+to)|next(?!\s+to)|upcoming)\b"
)


def numbers(s: Scanner) -> None:
    for m in s.take(_ORDINAL):
        s.consume(m, "ordinal", str(int(m[1])))
    for m in s.take(_NUMBER):
        if m[5]:
            s.consume(m, "number", "2 x")
        else:
            value = number(m[1] + m[2], m[3], as_written=True)
            s.consume(m, "number", value + u.unit(m[4]))
    for m in s.take(_SPELLED):
        said = m.group(0)[: m.start(1) - m.start()] if m[1] else m.group(0)
        if said.strip().lower() == "one" and w.ONE_AS_PRONOUN.search(s.before(m)):
            continue  # "which one"
        values = _spelled(list(_SPELLED_WORD.finditer(said)), m.start())
        for i, (at, said_value) in enumerate(values):
            s.note("number", str(said_value) + (u.unit(m[1]) if i == len(values) - 1 else ""), at)
        s.consume(m)
    for m in s.take(_IDENTIFIER):
        token = m.group()
        if any(c.isdigit() for c in token) and (
            any(c.isalpha() for c in token)
            or any(c in token for c in "-_/")
            or token.count(".") >= 2
        ):
            s.consume(m, "identifier", token)  # as written: ABC-1 and abc-1 may differ
    for m in s.take(_ORDINAL_WORD):
        s.consume(m, "ordinal", str(w.ORDINAL_WORDS[m[1].lower()]))
    for m in s.take(_POSITION):
        s.consume(m, "ordinal", "next" if m[1].lower() in ("next", "upcoming") else "last")


_SCALES = {"thousand": 1000, "million": 1_000_000}


def _spelled(words: list[re.Match[str]], offset: int) -> list[tuple[int, int]]:
    """The numbers a run of number words says, each with where it starts: "twenty three" is
    23, "two thousand and five" 2005, "twenty eighteen" 20 then 18 (never one wrong number)."""
    values: list[tuple[int, int]] = []
    start, total, group, last = 0, 0, 0, ""  # last: what the previous word was

    def flush() -> None:
        nonlocal total, group, last
        if last:
            values.append((start, total + group))
        total, group, last = 0, 0, ""

    for m in words:
        word, at = m.group().lower(), offset + m.start()
        if word == "and":
            if last not in ("hundred", "scale"):
                flush()
            continue
        value = w.NUMBER_WORDS[word]
        if word == "hundred":
            if last in ("unit", "teen", "tens") and group < 100:
                group, last = group * 100, "hundred"
                continue
            flush()
        elif word in _SCALES:
            if last in ("unit", "teen", "tens", "hundred") and total % 1000 == 0 < group:
                total, group, last = total + group * value, 0, "scale"
                continue
            flush()
        elif word == "dozen" and last in ("unit", "teen", "tens"):
            group *= 12
            flush()
            continue
        elif word in ("zero", "dozen"):
            flush()
        elif value < 10 and (last == "tens" or (last in ("hundred", "scale") and group % 10 == 0)):
            group, last = group + value, "unit"
            continue
        elif 10 <= value < 100 and last in ("hundred", "scale") and group % 100 == 0:
            group, last = group + value, "teen" if value < 20 else "tens"
            continue
        else:
            flush()
        start, group = at, value
        if word in _SCALES:
            total, group = value, 0
        last = {"hundred": "hundred", "thousand": "scale", "million": "scale"}.get(word, "")
        last = last or ("unit" if value < 10 else "teen" if value < 20 else "tens")
        if word in ("zero", "dozen"):
            last = "done"
    flush()
    return values
