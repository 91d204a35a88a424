"""The word lists and patterns behind ``cache_slots``: units, months, weekdays, relative times,
frequencies, environments, negations, polarity axes and a small gazetteer. Plain data, English
only; each table says what it maps to."""

from __future__ import annotations

import re


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


# A number as people write it: 1234, 1,234, 12.5, 1,234.50 (commas group thousands).
NUM = r"\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?"

NUMBER_WORDS = {
    "zero": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7,
    "eight": 8, "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13,
    "fourteen": 14, "fifteen": 15, "sixteen": 16, "seventeen": 17, "eighteen": 18,
    "nineteen": 19, "twenty": 20, "thirty": 30, "forty": 40, "fifty": 50, "sixty": 60,
    "seventy": 70, "eighty": 80, "ninety": 90, "hundred": 100, "thousand": 1000, "dozen": 12,
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

UNITS = {
    "%": "%", "percent": "%", "per cent": "%", "pct": "%",
    "kb": "kb", "kilobyte": "kb", "mb": "mb", "megabyte": "mb", "gb": "gb", "gig": "gb",
    "gigabyte": "gb", "tb": "tb", "terabyte": "tb",
    "ms": "ms", "millisecond": "ms", "s": "s", "sec": "s", "second": "s",
    "min": "min", "minute": "min", "h": "h", "hr": "h", "hour": "h", "day": "day",
    "wk": "week", "week": "week", "mo": "month", "month": "month", "yr": "year", "year": "year",
    "x": "x", "time": "x",
}  # fmt: skip
UNIT_PATTERN = "|".join(
    sorted((re.escape(u) + ("s?" if u[-1].isalpha() and len(u) > 1 else "") for u in UNITS),
           key=len, reverse=True)
)  # fmt: skip

CURRENCIES = {
    "$": "usd", "usd": "usd", "dollar": "usd", "buck": "usd", "€": "eur", "eur": "eur",
    "euro": "eur", "£": "gbp", "gbp": "gbp", "pound": "gbp", "¥": "jpy", "jpy": "jpy",
    "yen": "jpy", "chf": "chf", "cad": "cad", "aud": "aud", "cent": "usd-cent",
}  # fmt: skip

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

NEGATIONS = re.compile(
    r"\b(?:not|no|never|none|nothing|nobody|nowhere|neither|nor|without|cannot|unable|"
    r"dont|doesnt|didnt|cant|wont|isnt|arent|wasnt|werent|shouldnt|wouldnt|couldnt|hasnt|"
    r"havent|hadnt)\b|\b\w+n't\b",
    re.IGNORECASE,
)


def _v(*stems: str) -> str:
    """Regular forms of each stem: "increas" -> increase, increases, increased, increasing."""
    return "|".join(f"{s}(?:e|es|ed|ing|s|d)?" for s in stems)


# axis -> pole -> regex alternatives. Two questions conflict on an axis when both name a pole of
# it and the poles differ ("increase" vs "decrease"); a pole named by one question only is fine.
POLARITY: dict[str, dict[str, str]] = {
    "amount": {
        "increase": _v("increas", "rais", "boost", "extend", "grow")
        + r"|higher|grew|grown|bump(?:s|ed|ing)? up",
        "decrease": _v("decreas", "lower", "reduc", "shrink", "shorten") + r"|cut(?:s|ting)?",
    },
    "toggle": {
        "enable": _v("enabl", "activat") + r"|(?:turn|switch)(?:s|ed|ing)? on",
        "disable": _v("disabl", "deactivat") + r"|(?:turn|switch)(?:s|ed|ing)? off",
    },
    "membership": {
        "add": r"add(?:s|ed|ing)?|" + _v("creat", "insert"),
        "remove": _v("remov", "delet", "eras") + r"|get(?:ting)? rid of",
    },
    "order": {
        "before": r"before|prior to|earlier than|ahead of",
        "after": r"after|later than",
    },
    "state": {"open": _v("open", "reopen"), "close": _v("clos") + r"|shut"},
    "trade": {"buy": _v("buy", "purchas") + "|bought", "sell": _v("sell") + "|sold"},
    "plan": {"upgrade": _v("upgrad"), "downgrade": _v("downgrad")},
    "session": {
        "login": r"(?:log(?:ged|ging)?|sign(?:s|ed|ing)?) (?:in|on)(?:to)?|login|signin|logon",
        "logout": r"(?:log(?:ged|ging)?|sign(?:s|ed|ing)?) (?:out|off)|logout|signout",
        "signup": r"sign(?:s|ed|ing)? up|signup|" + _v("register"),
    },
    "transfer": {"import": _v("import"), "export": _v("export")},
    "transfer-file": {"upload": _v("upload"), "download": _v("download")},
    "lock": {"lock": _v("lock"), "unlock": _v("unlock")},
    "subscription": {
        "subscribe": _v("subscrib") + r"|opt(?:s|ed|ing)? in",
        "unsubscribe": _v("unsubscrib") + r"|opt(?:s|ed|ing)? out",
    },
    "lifecycle": {
        "start": _v("start", "launch") + r"|begin(?:s|ning)?|began|begun",
        "stop": r"stop(?:s|ped|ping)?|" + _v("halt"),
        "pause": _v("paus", "suspend", "freez") + r"|froze|put on hold",
        "resume": _v("resum", "unpaus", "reactivat"),
        "cancel": _v("cancel", "cancell", "terminat") + "|cancellation",
        "renew": _v("renew") + "|renewal",
        "restart": _v("restart", "reboot"),
    },
    "extreme": {
        "min": r"minimum|min|lowest|smallest|cheapest|least expensive|slowest",
        "max": r"maximum|max|highest|largest|biggest|most expensive|fastest",
    },
    "decision": {
        "accept": _v("accept", "approv"),
        "reject": _v("reject", "declin", "deni", "deny", "refus"),
    },
    "visibility": {
        "show": r"show(?:s|ed|n|ing)?(?!\s+(?:me|us)\b)|" + _v("unhid", "display"),
        "hide": r"hid(?:e|es|den|ing)",
    },
    "permission": {
        "allow": _v("allow", "permit", "whitelist", "allowlist", "unblock"),
        "block": _v("block", "blacklist", "blocklist") + r"|ban(?:s|ned|ning)?",
    },
    "archive": {"archive": _v("archiv"), "unarchive": _v("unarchiv")},
    "money": {
        "charge": _v("charg", "debit") + r"|bill(?:s|ed)?",
        "refund": _v("refund", "reimburs") + r"|money back",
        "return": _v("return") + r"|send(?:ing)? back|sent back",
        "exchange": _v("exchang", "replac") + r"|replacement",
    },
    "inclusion": {"include": _v("includ"), "exclude": _v("exclud")},
    "connection": {"connect": _v("connect"), "disconnect": _v("disconnect")},
    "install": {"install": _v("install"), "uninstall": _v("uninstall")},
    "crypto": {"encrypt": _v("encrypt"), "decrypt": _v("decrypt")},
    "sound": {"mute": _v("mut"), "unmute": _v("unmut")},
    "payment": {"paid": r"paid", "unpaid": r"unpaid"},
    "direction": {"inbound": r"incoming|inbound", "outbound": r"outgoing|outbound"},
    "visibility-scope": {"public": r"public", "private": r"private"},
    "span": {"since": r"since", "until": r"until|till"},
}
# Comparisons with a number: "over $100" vs "under $100".
COMPARISONS = {
    "more": r"more than|over|above|greater than|higher than|at least|exceeding",
    "less": r"less than|fewer than|under|below|lower than|at most",
}
# "scale the service up", "the price went down".
UP_DOWN = re.compile(
    r"\b(?:scal(?:e|es|ed|ing)|go(?:es|ing)?|went|gone|turn(?:s|ed|ing)?)\b(?:\s+[\w-]+){0,4}?"
    r"\s+(up|down)\b",
    re.IGNORECASE,
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
