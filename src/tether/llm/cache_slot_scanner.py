"""The scanner under ``cache_slots``: a question whose spans are blanked out as the steps read
them (so a date is not read again as a number), and the number and unit normalisations the
steps share."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator
from decimal import Decimal, InvalidOperation

from tether.llm import cache_slot_words as w


class Scanner:
    """The text with the spans already read blanked out (so a date is not read as a number)."""

    def __init__(self, text: str) -> None:
        self.original = text
        self.text = text
        self.exact: list[tuple[str, str]] = []
        self.at: list[int] = []  # where each of ``exact`` was read
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
            self.note(kind, value, match.start(group))
        self._read.append(match.span(group))

    def note(self, kind: str, value: str, at: int) -> None:
        """The slot ``kind: value``, read at ``at`` (where it stands among its kind)."""
        self.exact.append((kind, value))
        self.at.append(at)

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
    """A pattern of the steps: case-insensitive unless told otherwise. A leading ``\\b`` is
    written as "no word character before" (it means the same here, and the regex engine
    tries the long alternations after it at half the places)."""
    if pattern.startswith(r"\b"):
        pattern = r"(?<!\w)(?=\w)" + pattern[2:]
    return re.compile(pattern, flags)


_SCALES = {
    "k": 1000, "thousand": 1000, "m": 10**6, "mm": 10**6, "mn": 10**6, "mil": 10**6,
    "million": 10**6, "b": 10**9, "bn": 10**9, "bil": 10**9, "billion": 10**9,
    "trillion": 10**12,
}  # fmt: skip


def number(raw: str, multiplier: str | None = None, as_written: bool = False) -> str:
    """'1,234.50' -> '1234.5', '-.5' -> '-0.5'; with 'k' (m, bn...) -> thousands (millions...).
    ``as_written`` keeps the digits of a number with no multiplier as they are ('3.10', '0042':
    a version or an id), less the commas."""
    digits = raw.replace(",", "")
    sign, digits = ("-", digits[1:]) if digits.startswith("-") else ("", digits)
    if not digits.isascii():  # other scripts' digits: ١٢٣٤ is 1234
        digits = "".join(str(unicodedata.digit(c, c)) if c.isdigit() else c for c in digits)
    digits = "0" + digits if digits.startswith(".") else digits
    try:
        value = Decimal(digits)
    except InvalidOperation:
        return raw.lower()
    scale = _SCALES.get((multiplier or "").strip().lower(), 1)
    if as_written and scale == 1:
        return sign + digits
    return sign + format((value * scale).normalize(), "f")
