"""The scanner under ``cache_slots``: a question whose spans are blanked out as the steps read
them (so a date is not read again as a number), and the number and unit normalisations the
steps share."""

from __future__ import annotations

import re
from collections.abc import Iterator
from decimal import Decimal, InvalidOperation

from tether.llm import cache_slot_words as w


class Scanner:
    """The text with the spans already read blanked out (so a date is not read as a number)."""

    def __init__(self, text: str) -> None:
        self.original = text
        self.text = text
        self.exact: list[tuple[str, str]] = []
        self.poles: list[tuple[str, str]] = []
        self._read: list[tuple[int, int]] = []

    def take(self, pattern: re.Pattern[str]) -> Iterator[re.Match[str]]:
        """The matches in the text still unread; the spans ``consume``d are blanked after."""
        yield from pattern.finditer(self.text)
        if self._read:
            chars = list(self.text)
            for start, end in self._read:
                chars[start:end] = " " * (end - start)
            self.text, self._read = "".join(chars), []

    def consume(
        self, match: re.Match[str], kind: str | None = None, value: str = "", group: int = 0
    ) -> None:
        """Mark ``match`` (or one of its groups) read, noting the slot ``kind: value``."""
        if kind is not None:
            self.exact.append((kind, value))
        self._read.append(match.span(group))

    def before(self, match: re.Match[str], span: int = 40) -> str:
        return self.text[max(0, match.start() - span) : match.start()]

    def opens_sentence(self, start: int) -> bool:
        """Whether the word at ``start`` is the first of a sentence (or of the text)."""
        text, i = self.original, start - 1  # what was read away still counts ("Add Maria")
        while i >= 0 and text[i].isspace():
            if text[i] == "\n":
                return True
            i -= 1
        if i < 0:
            return True
        if text[i] == ".":
            return not w.TITLES.search(text[max(0, i - 5) : i + 1])
        return text[i] in '!?:;("'


def rx(pattern: str, flags: int = re.IGNORECASE) -> re.Pattern[str]:
    """A pattern of the steps: case-insensitive unless told otherwise."""
    return re.compile(pattern, flags)


def number(raw: str, multiplier: str | None = None) -> str:
    """'1,234.50' -> '1234.5'; with 'k' -> thousands."""
    try:
        value = Decimal(raw.replace(",", ""))
    except InvalidOperation:
        return raw.lower()
    if multiplier and multiplier.strip().lower() in ("k", "thousand"):
        value *= 1000
    elif multiplier and multiplier.strip().lower() in ("m", "million"):
        value *= 1_000_000
    elif multiplier and multiplier.strip().lower() in ("bn", "billion"):
        value *= 1_000_000_000
    return format(value.normalize(), "f")


def unit(raw: str | None) -> str:
    """' gb' for 'GB', ' min' for 'minutes'; '' for no unit."""
    if not raw:
        return ""
    unit = raw.lower().strip()
    if unit not in w.UNITS and unit.endswith("s"):
        unit = unit[:-1]
    return " " + w.UNITS.get(unit, unit)
