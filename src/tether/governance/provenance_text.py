"""What a piece of content carries, for the injection guard: its normalised text, the decoded
readings of it a model could follow, and the values a model could lift out of it.

Nothing here looks for attack phrases. Content is reduced to *values* (numbers, identifiers,
passages) so that the guard can ask a provenance question: did this tool argument come from
that content? A model can read encoded text, so each string is also read decoded (HTML
entities, URL escapes, base64 and hex chunks, ROT13, full-width forms: ``provenance_decode``);
a value found in any reading counts as carried by the content. Characters a reader does not see
(zero-width spaces, soft hyphens, direction marks) are dropped and dashes read as ``-``, and an
identifier written in groups (``DE89 3704 0044 0532 0130 00``) is the same identifier as
written in one piece (``ids``).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator

from tether.governance.provenance_decode import decodings

SHINGLE = 5
"""Words per passage window: an argument sharing a run of this many words with content
derives from it."""

_WS = re.compile(r"\s+")
_TOKEN = re.compile(r"[^\s,;()<>\"'\[\]{}|`]+")
_WORD = re.compile(r"[^\W_]+")
_DASHES = str.maketrans(dict.fromkeys("\u2010\u2011\u2012\u2013\u2014\u2015\u2212\ufe58", "-"))
_NUMBER = re.compile(
    r"(?<![\w.])[-+]?(?:\d{1,3}(?:[,.'\u00a0\u202f ]\d{3})+|\d+)(?:[.,]\d+)?"
    r"(?:\s?(?P<unit>k|m|mil|mille|thousand|tausend|million|millions|mio|millones|bn|billion)\b)?",
    re.IGNORECASE,
)
_SCALE = {
    "k": 1e3,
    "mil": 1e3,
    "mille": 1e3,
    "thousand": 1e3,
    "tausend": 1e3,
    "m": 1e6,
    "million": 1e6,
    "millions": 1e6,
    "mio": 1e6,
    "millones": 1e6,
    "bn": 1e9,
    "billion": 1e9,
}
_UNITS = {
    w: i
    for i, w in enumerate(
        (
            *("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"),
            *("ten", "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen"),
            *("seventeen", "eighteen", "nineteen"),
        )
    )
}
_TENS = {
    w: 10 * (i + 2)
    for i, w in enumerate(
        ("twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety")
    )
}
_MULT = {"hundred": 100, "thousand": 1000, "million": 1_000_000, "billion": 1_000_000_000}


def normalize(text: str) -> str:
    """NFKC (full-width digits and letters become plain), without invisible format characters
    (zero-width spaces and joiners, soft hyphens, direction marks), dashes as ``-``,
    case-folded, whitespace collapsed."""
    text = unicodedata.normalize("NFKC", text)
    if not text.isascii():
        text = "".join(c for c in text if unicodedata.category(c) != "Cf").translate(_DASHES)
    return _WS.sub(" ", text).strip().casefold()


def readings(text: str) -> list[str]:
    """``text`` as a model could read it: as written, and decoded every way it may be encoded
    (each reading normalised; duplicates dropped)."""
    seen: dict[str, None] = {normalize(text): None}
    for decoded in decodings(text):
        if decoded:
            seen.setdefault(normalize(decoded), None)
    seen.pop("", None)
    return list(seen)


def numbers(text: str) -> set[float]:
    """Every number ``text`` states, each way it could be read: ``10,000`` and ``10.000`` are
    10000 (and 10.0 / 10.000 read with a decimal point), ``10k`` and ``10 mil`` are 10000,
    English number words (``ten thousand``) count too."""
    out: set[float] = set()
    for m in _NUMBER.finditer(text):
        raw = m.group(0)
        unit = m.group("unit")
        digits = raw[: m.start("unit") - m.start()] if unit else raw
        scale = _SCALE.get(unit.lower(), 1.0) if unit else 1.0
        for value in _number_variants(digits.strip()):
            out.add(value)
            out.add(value * scale)
    out.update(_word_numbers(text))
    return out


def _number_variants(raw: str) -> set[float]:
    s = re.sub(r"['\u00a0\u202f ]", "", raw)
    out: set[float] = set()
    for candidate in (s.replace(",", ""), s.replace(".", "").replace(",", ".")):
        try:
            out.add(float(candidate))
        except ValueError:
            continue
    return out


def _word_numbers(text: str) -> set[float]:
    out: set[float] = set()
    total = current = 0
    seen = False
    for word in [*re.findall(r"[a-z]+", text.casefold().replace("-", " ")), ""]:
        if word in _UNITS or word in _TENS:
            current += _UNITS.get(word, 0) + _TENS.get(word, 0)
            seen = True
        elif word in _MULT and seen:
            if _MULT[word] == 100:
                current *= 100
            else:
                total += current * _MULT[word]
                current = 0
        elif word == "and" and seen:
            continue
        else:
            if seen:
                out.add(float(total + current))
            total = current = 0
            seen = False
    return out


def atoms(text: str) -> set[str]:
    """The identifier-like tokens of ``text`` (normalised): a token of 5 characters or more
    mixing letters and digits (account numbers, IBANs, order ids), an e-mail address, a URL
    or a domain name. Ordinary words and bare numbers are not atoms."""
    out: set[str] = set()
    for tok in _TOKEN.findall(normalize(text)):
        tok = tok.strip(".:!?")
        if len(tok) < 5:
            continue
        letters = any(c.isalpha() for c in tok)
        digits = any(c.isdigit() for c in tok)
        if (
            (letters and digits)
            or "@" in tok
            or "://" in tok
            or tok.startswith("www.")
            or _domain(tok)
        ):
            out.add(tok)
    return out


_SQUEEZE = re.compile(r"[\s./+()\-]")
_EDGES = ".,;:!?\"'[]{}<>"
MIN_ID_DIGITS = 9
"""Digits an identifier written in groups needs (dates and amounts have fewer)."""
MAX_ID_PIECES = 12
"""Groups one such identifier spans at most."""


def squeeze(text: str) -> str:
    """``text`` without whitespace and the separators identifiers are grouped with."""
    return _SQUEEZE.sub("", text)


def ids(text: str) -> set[str]:
    """Identifiers however they are grouped, each as one compact string (normalised,
    separators dropped): every run of whitespace-separated pieces holding a digit
    (``de89 3704 0044 0532 0130 00``, ``4111-1111-1111-1111``, ``+44 20 7946 0958``), and its
    sub-runs, with at least ``MIN_ID_DIGITS`` digits: IBANs, card, phone and account numbers
    written with spaces, dashes or dots, or without."""
    out: set[str] = set()
    run: list[str] = []
    for word in [*normalize(text).split(" "), ""]:
        piece = squeeze(word.strip(_EDGES))
        if piece.isalnum() and any(c.isdigit() for c in piece):
            run.append(piece)
            continue
        for i in range(len(run)):
            for j in range(i + 1, min(len(run), i + MAX_ID_PIECES) + 1):
                joined = "".join(run[i:j])
                if sum(c.isdigit() for c in joined) >= MIN_ID_DIGITS:
                    out.add(joined)
        run = []
    return out


def _domain(tok: str) -> bool:
    parts = tok.split(".")
    return len(parts) >= 2 and all(parts) and parts[-1].isalpha() and 2 <= len(parts[-1]) <= 6


def shingles(text: str) -> Iterator[int]:
    """Hashes of each run of ``SHINGLE`` consecutive words of ``text`` (normalised)."""
    words = _WORD.findall(normalize(text))
    for i in range(len(words) - SHINGLE + 1):
        yield hash(" ".join(words[i : i + SHINGLE]))
