"""The word lists and patterns behind ``cache_slots``: number words, months, weekdays, relative
times, frequencies, environments, plan names and a small gazetteer. Plain data, English
only; each table says what it maps to."""

from __future__ import annotations

import re


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


# A number as people write it: 1234, 1,234, 12.5, .5, 1,234.50 (commas group thousands).
NUM = r"\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?|\.\d+"

NUMBER_WORDS = {
    "zero": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7,
    "eight": 8, "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13,
    "fourteen": 14, "fifteen": 15, "sixteen": 16, "seventeen": 17, "eighteen": 18,
    "nineteen": 19, "twenty": 20, "thirty": 30, "forty": 40, "fifty": 50, "sixty": 60,
    "seventy": 70, "eighty": 80, "ninety": 90, "hundred": 100, "thousand": 1000,
    "million": 1_000_000, "dozen": 12,
}  # fmt: skip
ORDINAL_WORDS = {
    "first": 1, "second": 2, "third": 3, "fourth": 4, "fifth": 5, "sixth": 6, "seventh": 7,
    "eighth": 8, "ninth": 9, "tenth": 10, "eleventh": 11, "twelfth": 12,
}  # fmt: skip
# "which one", "this one": a pronoun, not a count.
ONE_AS_PRONOUN = re.compile(
    r"\b(?:which|this|that|the|a|an|another|every|any|no|each|some|same|only|last|first|next|"
    r"new|right|into|other|one)\s+$",
    re.IGNORECASE,
)

FULL_MONTHS = _words(
    """january february march april may june july august september october november december"""
)
MONTHS = {
    "january": 1, "february": 2, "march": 3, "april": 4, "may": 5, "june": 6, "july": 7,
    "august": 8, "september": 9, "october": 10, "november": 11, "december": 12,
    "jan": 1, "feb": 2, "mar": 3, "apr": 4, "jun": 6, "jul": 7, "aug": 8, "sep": 9,
    "sept": 9, "oct": 10, "nov": 11, "dec": 12,
}  # fmt: skip
# Month names that are also everyday words: only a month next to a day, a year or a preposition.
AMBIGUOUS_MONTHS = frozenset({"may", "march"})
MONTH_CONTEXT = re.compile(
    r"\b(?:in|of|since|until|by|from|to|early|late|mid|during|before|after|end|start|each|"
    r"every|last|next|this)\s+$",
    re.IGNORECASE,
)

WEEKDAYS = re.compile(
    r"(?i:\b(mon|tues|wednes|thurs|fri|satur|sun)days?\b)|\b(Mon|Tue|Tues|Wed|Thu|Thur|Thurs|Fri|Sat"
    r"|Sun)\b\.?"
)

RELATIVE_DAYS = {
    "today": "today", "tonight": "tonight", "tonite": "tonight", "tomorrow": "tomorrow",
    "tomorow": "tomorrow", "tmrw": "tomorrow", "yesterday": "yesterday",
}  # fmt: skip
RELATIVE_MODIFIERS = {
    "this": "this", "current": "this", "next": "next", "coming": "next", "upcoming": "next",
    "last": "last", "past": "last", "previous": "last",
}  # fmt: skip
RELATIVE_UNITS = (
    "week|weekend|month|year|quarter|morning|afternoon|evening|night|sprint|release|season"
)
PERIOD_EDGES = {"eod": "end of day", "eow": "end of week", "eom": "end of month"}

FREQUENCIES = {
    "hourly": "hourly", "daily": "daily", "nightly": "nightly", "weekly": "weekly",
    "biweekly": "biweekly", "fortnightly": "biweekly", "monthly": "monthly",
    "quarterly": "quarterly", "yearly": "yearly", "annual": "yearly", "annually": "yearly",
    "hour": "hourly", "day": "daily", "night": "nightly", "week": "weekly", "month": "monthly",
    "quarter": "quarterly", "year": "yearly", "annum": "yearly",
}  # fmt: skip

ENVIRONMENTS = {
    "production": "production", "prod": "production", "prd": "production",
    "staging": "staging", "stg": "staging", "sandbox": "sandbox", "development": "dev",
    "dev": "dev", "qa": "qa", "uat": "uat", "preprod": "preprod", "pre-prod": "preprod",
}  # fmt: skip

# Countries and languages people name in lower case too ("do you ship to germany").
GAZETTEER = _words(
    """germany france spain italy portugal netherlands holland belgium switzerland austria
     poland sweden norway denmark finland ireland uk england scotland wales usa canada mexico
     brazil argentina chile colombia peru japan china india korea australia singapore
     indonesia vietnam thailand philippines israel egypt nigeria kenya russia ukraine greece
     romania hungary english spanish french german italian portuguese dutch swedish polish
     russian chinese mandarin japanese korean arabic hindi turkish greek"""
)

# "the Pro plan", "our enterprise tier": the word before one of these names a plan.
PLAN_NOUNS = r"plan|tier|edition|license|licence|package|bundle"
NOT_PLAN_NAMES = _words(
    """the a an my your our their his her its this that these those which what whose current
     new old same different other another cheapest cheaper best right whole entire any every
     each some no one paid existing"""
)
# Words before a plan name: "the Pro plan", "to enterprise tier"; "switch plans" names none.
PLAN_LEAD = r"the|a|an|my|our|your|their|this|that|on|to|from|per"
# Capitalised words that are not names: the pronoun I, greetings, courtesy words.
NOT_NAMES = _words("""i i'm i'll i've i'd ok okay hi hello hey please thanks thank dear yes no""")
# Abbreviations whose dot does not end a sentence ("Dr. Patel").
TITLES = re.compile(r"\b(?:Dr|Mr|Mrs|Ms|Mx|Prof|St|Jr|Sr|vs|etc|e\.g|i\.e)\.\s*$")
