"""Slots: what a question names that a paraphrase must keep, so the semantic cache never answers
"order 1235" with the answer for "order 1234".

Embeddings put "What is the refund status of order 1234?" and "... of order 1235?" at 0.95
cosine: one token moved, the meaning is the same, the right answer is not. So before a cached
question may answer a new one, ``extract_slots`` pulls out of each, by fixed rules (regular
expressions and word lists, no model):

* ``number``: 1234, 1,234 (= 1234), 12.50 (= 12.5), 5k (= 5000), "five", "twice" (= 2 x), with
  a unit when one follows (10 GB = 10GB, 30 seconds, 10% = 10 percent);
* ``amount``: money, $50 = 50 dollars = 50 USD, €200, £4.50;
* ``identifier``: codes with digits (A1B2, INV-2024-0113, api-7f9c, 2.3.1, 10.0.0.12, 77-B),
  emails, URLs, #channels, @handles, file names;
* ``date``: 2024-05-01, 3/14, March 3 (= 3rd of March), Dec 24, June 2025, weekdays, weekends;
* ``time``: 3pm (= 15:00), 6:30 am, 08:15, noon, midnight, morning/afternoon/evening/night;
* ``relative``: today, tonight, tomorrow, yesterday, this/next/last week (month, quarter...),
  the day after tomorrow, end of the month, "ago", the "next" in "next Friday";
* ``ordinal``: 3rd, third, first; last/latest/newest/previous and next/upcoming;
* ``frequency``: daily, weekly, monthly (= per month), yearly (= annual);
* ``environment``: production (= prod), staging, dev, sandbox, qa;
* ``negation``: not, no, never, without, n't, cannot, unable... (counted, so "cancel" and
  "don't cancel" differ);
* ``entity``: capitalised words not opening a sentence (Germany, PayPal, New York), all-caps
  and camel-case names anywhere (AWS, iOS), countries and languages in any case, plan names
  ("the pro plan"), quoted strings;
* ``route``: the two ends of "from X to Y", in that order;
* ``polarity``: antonyms on one axis (increase/decrease, enable/disable, add/remove,
  before/after, open/close, buy/sell, upgrade/downgrade, log in/log out, import/export,
  start/stop/pause/resume/cancel/renew, min/max, accept/reject, more than/less than, ...).

Two questions *match* when their slots other than polarity are equal as multisets (after the
normalisations above) and no polarity axis is named by both with different poles ("increase my
quota" matches "raise my quota" and "can my quota grow?", never "decrease my quota"). The rules
err on the side of a miss: a paraphrase that words a slot differently ("2FA" for "two-factor
authentication") is asked again, which costs a model call, never a wrong answer.
"""

from __future__ import annotations

import unicodedata
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

from tether.llm import cache_slot_names as names
from tether.llm import cache_slot_quantities as quantities
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
    return Slots(tuple(sorted(scan.exact)), tuple(sorted(set(scan.poles))))


def _normalise(text: str) -> str:
    text = unicodedata.normalize("NFKC", text)
    quotes: dict[str, str | int | None] = {
        "\u2018": "'",
        "\u2019": "'",
        "\u201c": '"',
        "\u201d": '"',
        "\u2013": "-",
    }
    return text.translate(str.maketrans(quotes))


_STEPS: tuple[Callable[[Scanner], None], ...] = (
    quantities.routes_and_comparisons,
    quantities.literals,
    quantities.dates_and_times,
    quantities.relative_times,
    quantities.money,
    quantities.numbers,
    names.names,
    names.polarity,
    names.entities,
)
