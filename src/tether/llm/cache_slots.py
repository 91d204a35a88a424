"""Slots: what a question names that a paraphrase must keep, so the semantic cache never answers
"order 1235" with the answer for "order 1234".

Embeddings put "What is the refund status of order 1234?" and "... of order 1235?" at 0.95
cosine: one token moved, the meaning is the same, the right answer is not. So before a cached
question may answer a new one, ``extract_slots`` pulls out of each, by fixed rules (regular
expressions and word lists, no model):

* ``number``: 1234, 1,234 (= 1234), -5 (or with the minus sign), .5 (= 0.5), 5k (= 5000),
  "twenty-three", "one hundred and five", "twice" (= 2 x), digits kept as written otherwise
  (3.10 is not 3.1, 0042 not 42), with the unit that follows (10 GB = 10GB, 10 kg = 10 kilos,
  30 °C = 30 degrees celsius, 10% = 10 percent; an unlisted abbreviation such as "10 kn" is
  kept as written);
* ``amount``: money, $50 = 50 dollars = 50 USD, €200, £4.50, $5m (= 5000000), ₹100, A$20,
  100 australian dollars (= AUD); ``currency``: one named without an amount ("in euros?");
* ``identifier``: codes with digits, as written (A1B2, INV-2024-0113, 2.3.1, 10.0.0.12, 77-B),
  emails, URLs, #channels, @handles, file names;
* ``date``: 2024-05-01, 3/14, March 3 (= 3rd of March), Dec 24, June 2025, weekdays, weekends;
* ``time``: 3pm (= 15:00), 6:30 am, 08:15, half past six (= 06:30), noon, midnight, with the
  time zone that follows (3pm EST is not 3pm PST); morning/afternoon/evening/night;
* ``operator`` and ``comparison``: "2 + 3" (plus, times...), "> 100", "over", "at least";
* ``relative``: today, tonight, tomorrow, yesterday, this/next/last week (month, quarter...),
  the day after tomorrow, end of the month, "ago", the "next" in "next Friday";
* ``ordinal``: 3rd, third, first; last/latest/newest/previous and next/upcoming;
* ``frequency``: daily, weekly, monthly (= per month), yearly (= annual);
* ``environment``: production (= prod), staging, dev, sandbox, qa;
* ``negation``: not, no, never, without, n't, cannot, unable... (counted, so "cancel" and
  "don't cancel" differ);
* ``entity``: capitalised words not opening a sentence (Germany, PayPal, New York), all-caps
  and camel-case names anywhere (AWS, iOS), countries and languages in any case, plan names
  ("the pro plan"), quoted strings (as written: 'Hunter2' is not 'hunter2');
* ``route``: the two ends of "from X to Y" (or "to account 1 from account 2"), in that order;
* ``polarity``: antonyms on one axis (increase/decrease, enable/disable, on/off, add/remove,
  before/after, earlier/later, open/close, buy/sell, send/receive, credit/debit,
  upgrade/downgrade, log in/log out, start/stop/pause/resume/cancel, min/max, legal/illegal,
  safe/unsafe, ascending/descending, north/south, left/right, men/women, adult/child,
  cheap/expensive, success/failure, true/false, verified/unverified, valid/invalid, ...).

Numbers, amounts, ids, dates, times, operators and comparisons must come in the same order
("is 7 greater than 5" is not "is 5 greater than 7"); the other slots are compared as
multisets. Two questions *match* when their slots other than polarity are equal (after the
normalisations above) and no polarity axis is named by both with different poles ("increase
my quota" matches "raise my quota" and "can my quota grow?", never "decrease my quota"). The
rules err on the side of a miss: a paraphrase that words a slot differently ("2FA" for
"two-factor authentication"), or names two numbers in the other order, is asked again, which
costs a model call, never a wrong answer.
"""

from __future__ import annotations

import unicodedata
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

from tether.llm import cache_slot_names as names
from tether.llm import cache_slot_numbers as numbers
from tether.llm import cache_slot_quantities as quantities
from tether.llm import cache_slot_times as times
from tether.llm.cache_slot_scanner import Scanner

__all__ = ["Slots", "extract_slots"]


@dataclass(frozen=True)
class Slots:
    """What ``extract_slots`` found: ``exact`` (kind, value) pairs, sorted, repeats kept, which
    must be equal; ``poles`` (axis, pole) pairs, which must not contradict."""

    exact: tuple[tuple[str, str], ...] = ()
    poles: tuple[tuple[str, str], ...] = ()

    @property
    def key(self) -> str:
        """The exact slots as one string: equal keys, equal exact slots."""
        return "\x1e".join(f"{kind}\x1f{value}" for kind, value in self.exact)

    def conflicts(self, other: Slots) -> list[str]:
        """Why ``other`` may not share this question's answer ([] when it may)."""
        why = []
        if self.exact != other.exact:
            mine, theirs = Counter(self.exact), Counter(other.exact)
            only = sorted((mine - theirs).elements()) + sorted((theirs - mine).elements())
            why.append("different " + ", ".join(dict.fromkeys(kind for kind, _ in only)))
        mine_poles, their_poles = _by_axis(self.poles), _by_axis(other.poles)
        for axis in sorted(mine_poles.keys() & their_poles.keys()):
            if mine_poles[axis] != their_poles[axis]:
                a, b = "/".join(sorted(mine_poles[axis])), "/".join(sorted(their_poles[axis]))
                why.append(f"opposite {axis}: {a} vs {b}")
        return why

    def matches(self, other: Slots) -> bool:
        return not self.conflicts(other)

    def describe(self) -> list[str]:
        """``kind:value`` for each slot, polarity as ``polarity:axis=pole``."""
        return [f"{k}:{v}" for k, v in self.exact] + [f"polarity:{a}={p}" for a, p in self.poles]


def _by_axis(poles: tuple[tuple[str, str], ...]) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for axis, pole in poles:
        out.setdefault(axis, set()).add(pole)
    return out


def extract_slots(text: str) -> Slots:
    """The slots of one question (see the module docs); deterministic, never raises."""
    scan = Scanner(_normalise(text))
    for step in _STEPS:
        step(scan)
    found = sorted(
        zip(scan.exact, scan.at, strict=True),
        key=lambda f: (f[0][0], f[1] if f[0][0] in _IN_ORDER else 0, f[0][1]),
    )
    return Slots(tuple(slot for slot, _ in found), tuple(sorted(set(scan.poles))))


# Kinds whose order matters: "is 7 greater than 5" is not "is 5 greater than 7", "2 - 3" is not
# "3 - 2", "move my 3pm call to 4pm" not "move my 4pm call to 3pm". The others are multisets.
_IN_ORDER = frozenset(
    {"number", "amount", "operator", "comparison", "date", "time", "identifier", "currency"}
)


def _normalise(text: str) -> str:
    quotes: dict[str, str | int | None] = {
        "\u2018": "'",
        "\u2019": "'",
        "\u201c": '"',
        "\u201d": '"',
        "\u2013": "-",
        "\u2212": "-",  # the minus sign (U+2212)
        "\u00bd": ".5",  # 2 1/2 is 2.5 (NFKC would make it 21, a fraction slash, 2)
        "\u00bc": ".25",
        "\u00be": ".75",
        "\u215b": ".125",
    }
    return unicodedata.normalize("NFKC", text.translate(str.maketrans(quotes)))


_STEPS: tuple[Callable[[Scanner], None], ...] = (
    quantities.routes_and_comparisons,
    quantities.literals,
    times.dates_and_times,
    times.relative_times,
    quantities.operators,
    quantities.money,
    numbers.numbers,
    names.names,
    names.polarity,
    names.entities,
)
