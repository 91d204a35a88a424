"""Presidio recognizers the PII detector adds to Presidio's own (``pii_detect``).

Presidio finds emails, cards (Luhn-checked), IBANs (checksum), US SSNs, IPv4/IPv6 and phone
numbers (``phonenumbers``) itself; these extend it where a prompt needs more:

- ``OfflineEmailRecognizer``: Presidio's email recognizer, validating the domain after the
  ``@`` against ``tldextract``'s bundled public suffix snapshot, never downloading the list
  (the stock one makes ``tldextract`` fetch it on first use);
- ``LuhnCardRecognizer``: Presidio's card recognizer (its Luhn check) over any 12 to 19 digit
  run, so issuer ranges its patterns do not list (Mastercard 2-series, Maestro, JCB...) count;
- ``AnyCaseIbanRecognizer``: Presidio's IBAN recognizer (its checksum) also over an IBAN
  written in lower case (``de89 3704 0044 0532 0130 00``), which a model reads all the same;
- ``LabelledSsnRecognizer``: Presidio's SSN recognizer, which also takes nine digits written
  without separators after an ``SSN`` / ``social security number`` label (Presidio's own
  context words need the NLP engine, which the patterns-only detector does not run);
- ``PhoneShapeRecognizer``: numbers written like phone numbers (North American 3-3-4 with an
  optional country or dial-out prefix and extension, ``+CC`` international, trunk-prefixed
  national) that ``phonenumbers`` rejects because the area code is not assigned: a prompt's
  "phone" is personal data whether or not the exchange exists.
"""

from __future__ import annotations

import re
from typing import Any

import tldextract
from presidio_analyzer import Pattern, PatternRecognizer
from presidio_analyzer.predefined_recognizers import (
    CreditCardRecognizer,
    EmailRecognizer,
    IbanRecognizer,
    UsSsnRecognizer,
)

_OFFLINE_TLD = tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None)
"""The bundled public suffix snapshot: no URL to fetch, no cache to write."""


class OfflineEmailRecognizer(EmailRecognizer):
    def validate_result(self, pattern_text: str) -> bool:
        # the address's own domain: a match inside a link (``localhost:8080/u?email=ada@...``)
        # starts in its path, which tldextract would read as the link's host
        return bool(_OFFLINE_TLD(pattern_text.rpartition("@")[2]).fqdn)


class LuhnCardRecognizer(CreditCardRecognizer):
    ANY_ISSUER = Pattern(
        "Card (any issuer, Luhn)", r"(?<![\d-])\d{4}(?:[ -]?\d){8,15}(?![\d-])", 0.3
    )

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(patterns=[*CreditCardRecognizer.PATTERNS, self.ANY_ISSUER], **kwargs)


class AnyCaseIbanRecognizer(IbanRecognizer):
    def __init__(self) -> None:
        # Presidio matches with the regex module, whose flag values are re's
        super().__init__(regex_flags=int(re.DOTALL | re.MULTILINE | re.IGNORECASE))

    def validate_result(self, pattern_text: str) -> bool | None:
        # Presidio scores a lower-case IBAN below a checked one (a phone shape in it then wins)
        valid: bool | None = super().validate_result(pattern_text.upper())
        return valid


class LabelledSsnRecognizer(UsSsnRecognizer):
    LABELLED = Pattern(
        "SSN (labelled, no separators)",
        r"(?i)(?<=\b(?:ssn|ss#|social[ -]security(?:[ -](?:number|no\.?|#))?)\s*"
        r"(?:#|no\.?|number|is)?\s*[:=]?\s*)\d{9}\b",
        0.5,
    )

    def __init__(self) -> None:
        super().__init__(patterns=[*UsSsnRecognizer.PATTERNS, self.LABELLED])


_NANP = (
    r"(?<![\w+.-])(?:(?:\+?1|001)[ .-]?)?(?:\(\d{3}\)[ .-]?|\d{3}[ .-])\d{3}[ .-]\d{4}"
    r"(?:\s?(?:x|ext\.?)\s?\d{1,5})?(?![\w-])"
)
_INTL = r"(?<![\w+])\+\d{1,3}(?:[ .-]?\(0?\d{1,4}\)|[ .-]?\d{1,5}){2,6}(?![\w-])"
_NATIONAL = r"(?<![\w+.-])\(?0\d{1,4}\)?[ -]\d{3,4}[ -]?\d{3,4}(?![\w-])"


class PhoneShapeRecognizer(PatternRecognizer):
    PATTERNS = [
        Pattern("Phone (NANP shape)", _NANP, 0.5),
        Pattern("Phone (+CC shape)", _INTL, 0.45),
        Pattern("Phone (national trunk 0 shape)", _NATIONAL, 0.4),
    ]
    CONTEXT = ["phone", "call", "mobile", "cell", "tel", "telephone", "fax", "number"]

    def __init__(self) -> None:
        super().__init__(
            supported_entity="PHONE_NUMBER",
            name="PhoneShapeRecognizer",
            patterns=self.PATTERNS,
            context=self.CONTEXT,
        )

    def validate_result(self, pattern_text: str) -> bool:
        digits = sum(c.isdigit() for c in pattern_text)
        return 8 <= digits <= 18
