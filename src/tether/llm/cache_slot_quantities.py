"""The ``cache_slots`` steps that read routes, comparisons, literals, operators and money:
from-to routes, "over $100" and "> 100", quoted strings, URLs, emails, handles, file names,
"2 + 3", $5m, 100 australian dollars, ₹100 (see ``cache_slots`` for what each becomes)."""

from __future__ import annotations

from decimal import Decimal

from tether.llm import cache_slot_poles as p
from tether.llm import cache_slot_units as u
from tether.llm import cache_slot_words as w
from tether.llm.cache_slot_scanner import Scanner, number, rx

# -- the steps, in order: each reads what the earlier ones left -------------------------------
_DET = r"(?:the\s+|my\s+|our\s+|your\s+|a\s+|an\s+)?"
# An end: "savings", "account 456" (a noun before an end with a digit names it: the digits).
_END = rf"{_DET}(?:[a-z]+\s+(?=[\w@.'-]*\d))?([\w@.'-]+)"
_ROUTE = rx(
    rf"\bfrom\s+{_END}[^.?!;\n]{{0,40}}?\b(?:to|into)\s+{_END}"
    rf"|\b(?:to|into)\s+{_END}\s+from\s+{_END}"
)
_COMPARISON = rx(
    r"(?:\b(?:"
    + "|".join(rf"(?P<{k.replace('-', '_')}>{words})" for k, (words, _) in p.COMPARISONS.items())
    + r")\b|"
    + "|".join(rf"(?P<{k.replace('-', '_')}_>{sign})" for k, (_, sign) in p.COMPARISONS.items())
    + ")"
    rf"(?=\s*-?(?:(?:{u.SIGNS})\s?)?-?(?:{w.NUM}|(?:{'|'.join(w.NUMBER_WORDS)})\b))"
)


def routes_and_comparisons(s: Scanner) -> None:
    for m in _ROUTE.finditer(s.original):  # the ends keep their own slots too
        src, dst = (m[1], m[2]) if m[1] else (m[4], m[3])
        ends = (end.lower().rstrip(".'-") for end in (src, dst))
        s.note("route", " > ".join(ends), m.start())
    for m in s.take(_COMPARISON):  # "over $100" vs "under $100", "> 5" vs ">= 5"
        s.consume(m, "comparison", (m.lastgroup or "").rstrip("_").replace("_", "-"))


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
    for m in s.take(_QUOTED):  # as written: a password 'Hunter2' is not 'hunter2'
        quoted = next(g for g in m.groups() if g is not None)
        s.consume(m, "entity", " ".join(quoted.split()))
    for m in s.take(_URL):
        s.consume(m, "identifier", m.group().rstrip(".,;:!?)]}"))
    for pattern, lower in ((_EMAIL, True), (_HANDLE, True), (_FILE, False)):
        for m in s.take(pattern):
            s.consume(m, "identifier", m.group().lower() if lower else m.group())
    for m in s.take(_NUMBER_MARK):  # "order no. 12", "#12": the number, not a negation
        s.consume(m)


_OPERAND = r"(?=\s*[-(]?\s*(?:[$€£]\s?)?\.?\d)"
_OPERATOR = rx(
    rf"(?<=[\d)])\s*(\*\*|[+*\u00d7\u00f7^=])\s*{_OPERAND}"
    r"|(?<=[\d)])\s+([-/x]|plus|minus|times|multiplied\s+by|divided\s+by|mod|modulo"
    rf"|to\s+the\s+power\s+of)\s+{_OPERAND}"
)
_OPERATORS = {
    "\u00d7": "*", "x": "*", "times": "*", "multiplied by": "*", "\u00f7": "/", "divided by": "/",
    "plus": "+", "minus": "-", "mod": "%", "modulo": "%", "to the power of": "^", "**": "^",
}  # fmt: skip


def operators(s: Scanner) -> None:
    """ "2 + 3" is not "2 * 3": the operator between two numbers, in its place."""
    for m in s.take(_OPERATOR):
        said = " ".join((m[1] or m[2]).lower().split())
        s.consume(m, "operator", _OPERATORS.get(said, said), group=1 if m[1] else 2)


_SCALE = r"(\s?(?:k|m|mm|mn|mil|b|bn|bil|thousand|million|billion|trillion)\b)?"
_MONEY_BEFORE = rx(rf"({u.SIGNS}|(?<!\w)(?:{u.CODES})\b)\s?(-?)({w.NUM}){_SCALE}")
_NOT_QUALIFIER = r"(?!(?:to|in|into|of|from|for|and|or|per|as|with|at|by|than|on)\s)"
_MONEY_AFTER = rx(
    rf"(?<![\w.])(-?)({w.NUM}){_SCALE}\s?(?:{_NOT_QUALIFIER}({u.QUALIFIER}|[a-z]+)\s+)??"
    rf"({u.CODES}|{u.WORDS})\b"
)
_BARE = rx(rf"\b(?:({u.BARE})|(?-i:({u.BARE_UPPER})))\b")
_QUALIFIER_BEFORE = rx(rf"\b({u.QUALIFIER})\s+$")


def money(s: Scanner) -> None:
    for m in s.take(_MONEY_BEFORE):
        before = s.text[max(0, m.start() - 2) : m.start()]  # "-$5": a minus before the sign
        minus = before.endswith("-") and not before[:1].isalnum()
        sign = "-" if minus or m[2] else ""
        currency = u.CURRENCIES.get(m[1].lower(), m[1].lower())
        s.consume(m, "amount", f"{sign}{number(m[3], m[4])} {currency}")
    for m in s.take(_MONEY_AFTER):
        currency = _currency(m[5], m[4])
        amount = number(m[2], m[3])
        if currency == "usd-cent":
            amount, currency = number(str(Decimal(amount) / 100)), "usd"
        s.consume(m, "amount", f"{m[1]}{amount} {currency}")
    for m in s.take(_BARE):  # "... in euros?" vs "... in canadian dollars?"
        qualifier = _QUALIFIER_BEFORE.search(s.before(m, 20))
        s.consume(m, "currency", _currency(m[1] or m[2], qualifier and qualifier[1]))


def _currency(word: str, qualifier: str | None) -> str:
    word = " ".join(word.lower().split()).removesuffix(" sterling")
    code = u.CURRENCIES.get(word, u.CURRENCIES.get(word.removesuffix("s"), word))
    if not qualifier:
        return code
    qualifier = qualifier.lower()
    return u.QUALIFIED.get(qualifier, f"{qualifier} {code}")
