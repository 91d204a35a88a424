"""An index of content of one trust level (untrusted or trusted) in a run, and the rule that
says whether a tool argument derives from it.

**The matching rule** (provenance, never attack phrases). Content (a tool result, the run's
input, a value marked with ``untrusted()``) is flattened to its leaves; each string leaf is
read as written and decoded (``provenance_text.readings``). An argument value *derives from*
the indexed content when:

- a number (or a string that is only a number, ``"$10,000"``) equals a number the content
  states (``10,000``, ``10.000``, ``10k``, ``ten thousand``, a numeric leaf), unless its
  absolute value is below ``small_numbers`` (counts and flags are everywhere);
- a string equals a string leaf of the content, or (5 characters or more) is contained in it;
- a string contains an identifier-like token of the content (an account number, IBAN, e-mail
  address, URL or domain: ``provenance_text.atoms``), or an identifier of 9 digits or more
  the content writes in groups or in one piece (``provenance_text.ids``: ``DE89 3704 ...`` is
  ``DE893704...``);
- a string shares a passage of ``SHINGLE`` consecutive words with the content.

A key of a mapping is content too: the content's keys carry their numbers, identifiers and
passages (not their bare words: ``status``, ``amount``), and the keys of an argument's nested
mappings are checked like its values (its top-level keys are the tool's parameter names).

Trusted content wins: the guard only reports an argument value that derives from untrusted
content and *not* from trusted content (the run's metadata, system values, trusted tools).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from tether.governance.provenance_text import (
    MIN_ID_DIGITS,
    atoms,
    ids,
    normalize,
    numbers,
    readings,
    shingles,
    squeeze,
)


def leaves(value: Any, path: str = "$") -> Iterator[tuple[str, Any]]:
    """``(json path, leaf)`` for each scalar inside ``value`` (mappings, lists, tuples)."""
    if isinstance(value, Mapping):
        for k, v in value.items():
            yield from leaves(v, f"{path}.{k}")
    elif isinstance(value, list | tuple | set | frozenset):
        for i, v in enumerate(value):
            yield from leaves(v, f"{path}[{i}]")
    elif value is not None and not isinstance(value, bool):
        yield path, value


def keys(value: Any, path: str = "$") -> Iterator[tuple[str, Any]]:
    """``(json path, key)`` for each key of the mappings inside ``value`` (and of ``value``)."""
    if isinstance(value, Mapping):
        for k, v in value.items():
            yield f"{path}.{k}", k
            yield from keys(v, f"{path}.{k}")
    elif isinstance(value, list | tuple | set | frozenset):
        for i, v in enumerate(value):
            yield from keys(v, f"{path}[{i}]")


def nested_keys(args: Any) -> Iterator[tuple[str, Any]]:
    """``keys`` of each argument's value: an argument's own name is not content."""
    if isinstance(args, Mapping):
        for k, v in args.items():
            yield from keys(v, f"$.{k}")


@dataclass(frozen=True, slots=True)
class Derivation:
    """One argument value found to derive from content."""

    path: str
    """The argument's JSON path (``$.amount``)."""
    value: Any
    how: str
    """``number``, ``equals``, ``contained``, ``identifier`` or ``passage``."""
    source: str
    """Where the content came from (``tool read_email``, ``input``, ``retrieval``...)."""
    detail: str = ""

    def describe(self) -> str:
        extra = f" ({self.detail})" if self.detail else ""
        return f"argument {self.path}={self.value!r} {self.how} {self.source}{extra}"


class ContentIndex:
    """Values carried by content of one trust level, with where each came from."""

    MIN_CONTAINED = 5

    def __init__(self) -> None:
        self.texts: list[tuple[str, str]] = []
        self.strings: dict[str, str] = {}
        self.numbers: dict[float, str] = {}
        self.atoms: dict[str, str] = {}
        self.shingles: dict[int, str] = {}
        self.ids: dict[str, str] = {}

    def add(self, value: Any, source: str) -> None:
        for _, leaf in leaves(value):
            if isinstance(leaf, int | float):
                self.numbers.setdefault(float(leaf), source)
                if isinstance(leaf, int):
                    self._values(str(leaf), source)
                continue
            text = leaf if isinstance(leaf, str) else str(leaf)
            for reading in readings(text):
                self.texts.append((reading, source))
                self.strings.setdefault(reading, source)
                self._values(reading, source)
        for _, key in keys(value):
            for reading in readings(str(key)):
                self._values(reading, source)

    def _values(self, reading: str, source: str) -> None:
        for n in numbers(reading):
            self.numbers.setdefault(n, source)
        for a in atoms(reading):
            self.atoms.setdefault(a, source)
        for i in ids(reading):
            self.ids.setdefault(i, source)
        for h in shingles(reading):
            self.shingles.setdefault(h, source)

    def identifier(self, packed: str, trusted: ContentIndex) -> tuple[str, str] | None:
        """``(identifier, source)`` of an ``ids`` identifier of this content that ``packed``
        (a value without its separators: ``squeeze``) holds and ``trusted`` does not."""
        if sum(c.isdigit() for c in packed) < MIN_ID_DIGITS:
            return None
        for ident, source in self.ids.items():
            if ident in packed and ident not in trusted.ids:
                return ident, source
        return None

    def number(self, n: float) -> str | None:
        return self.numbers.get(float(n))

    def string(self, s: str) -> tuple[str, str] | None:
        """``(how, source)`` when the normalised string ``s`` is a leaf of, or contained in,
        this content."""
        if s in self.strings:
            return "equals a value of", self.strings[s]
        if len(s) >= self.MIN_CONTAINED:
            for text, source in self.texts:
                if s in text:
                    return "is contained in", source
        return None


def derive(
    args: Any, untrusted: ContentIndex, trusted: ContentIndex, small_numbers: float
) -> list[Derivation]:
    """Each argument value of ``args`` that derives from ``untrusted`` and not ``trusted``."""
    found: list[Derivation] = []
    for path, value in [*leaves(args), *nested_keys(args)]:
        hit = _derive_one(value, untrusted, trusted, small_numbers)
        if hit is not None:
            how, source, detail = hit
            found.append(Derivation(path, value, how, source, detail))
    return found


_EMPTY = ContentIndex()


def identifiers(args: Any, untrusted: ContentIndex, trusted: ContentIndex) -> list[Derivation]:
    """Each string of ``args`` that carries an identifier (an account, IBAN, e-mail address,
    URL or domain: ``provenance_text.atoms``) of ``untrusted`` and not of ``trusted`` content."""
    found: list[Derivation] = []
    how = "carries an identifier from"
    for path, leaf in [*leaves(args), *nested_keys(args)]:
        if not isinstance(leaf, str | int) or isinstance(leaf, bool):
            continue
        s = normalize(str(leaf))
        for a in sorted(atoms(s)):
            if a in untrusted.atoms and a not in trusted.atoms:
                found.append(Derivation(path, leaf, how, untrusted.atoms[a], a))
                break
        else:
            grouped = untrusted.identifier(squeeze(s), trusted)
            if grouped is not None:
                found.append(Derivation(path, leaf, how, grouped[1], grouped[0]))
    return found


def unsourced(args: Any, sources: Sequence[ContentIndex]) -> list[tuple[str, Any]]:
    """``(json path, leaf)`` for each string (2 characters or more) and number in ``args``
    that derives from none of ``sources`` (numbers of any size count here)."""
    out: list[tuple[str, Any]] = []
    for path, leaf in leaves(args):
        if not isinstance(leaf, str | int | float):
            continue
        if isinstance(leaf, str) and len(normalize(leaf)) < 2:
            continue
        if not any(_derive_one(leaf, idx, _EMPTY, 0) is not None for idx in sources):
            out.append((path, leaf))
    return out


def _derive_one(
    value: Any, untrusted: ContentIndex, trusted: ContentIndex, small: float
) -> tuple[str, str, str] | None:
    if isinstance(value, int | float):
        hit = _derive_number(float(value), untrusted, trusted, small)
        if hit is None and isinstance(value, int) and trusted.number(float(value)) is None:
            hit = _grouped(str(value), untrusted, trusted)  # a card or account as a number
        return hit
    s = normalize(value if isinstance(value, str) else str(value))
    if len(s) < 2 or trusted.string(s) is not None:
        return None
    stated = numbers(s)
    if stated and _only_number(s):
        for n in stated:
            hit = _derive_number(n, untrusted, trusted, small)
            if hit is not None:
                return hit
        return _grouped(s, untrusted, trusted)
    seen = untrusted.string(s)
    if seen is not None:
        return f"{seen[0]} content from", seen[1], ""
    for a in sorted(atoms(s)):
        if a in untrusted.atoms and a not in trusted.atoms:
            return "carries an identifier from", untrusted.atoms[a], a
    grouped = _grouped(s, untrusted, trusted)
    if grouped is not None:
        return grouped
    for h in shingles(s):
        if h in untrusted.shingles and h not in trusted.shingles:
            return "shares a passage with", untrusted.shingles[h], ""
    return None


def _grouped(s: str, untrusted: ContentIndex, trusted: ContentIndex) -> tuple[str, str, str] | None:
    hit = untrusted.identifier(squeeze(s), trusted)
    return None if hit is None else ("carries an identifier from", hit[1], hit[0])


def _derive_number(
    n: float, untrusted: ContentIndex, trusted: ContentIndex, small: float
) -> tuple[str, str, str] | None:
    if abs(n) < small or trusted.number(n) is not None:
        return None
    source = untrusted.number(n)
    return None if source is None else ("is a number stated in", source, "")


def _only_number(s: str) -> bool:
    core = s.strip().strip("$€£¥").strip()
    return bool(core) and all(c.isdigit() or c in ",.' -+$€£¥k" for c in core)
