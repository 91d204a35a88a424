"""The polarity tables behind ``cache_slots``: negations, antonyms on one axis (increase and
decrease, legal and illegal, send and receive, north and south...) and comparisons with a
number (over, at least, >=). Plain data, English only."""

from __future__ import annotations

import re

NEGATIONS = re.compile(
    r"(?<!\w)(?:not|no|never|none|nothing|nobody|nowhere|neither|nor|without|cannot|unable|"
    r"dont|doesnt|didnt|cant|wont|isnt|arent|wasnt|werent|shouldnt|wouldnt|couldnt|hasnt|"
    r"havent|hadnt)\b|\b\w+n't\b",
    re.IGNORECASE,
)


def _v(*stems: str) -> str:
    """Regular forms of each stem: "increas" -> increase, increases, increased, increasing."""
    return "|".join(f"{s}(?:e|es|ed|ing|s|d)?" for s in stems)


def _at_end(word: str) -> str:
    """ "Are the lights on?": the word ending a clause."""
    return rf"{word}(?=[ \t]?(?:[?!.,;]|$))"


# axis -> pole -> regex alternatives. Two questions conflict on an axis when both name a pole of
# it and the poles differ ("increase" vs "decrease"); a pole named by one question only is fine.
POLARITY: dict[str, dict[str, str]] = {
    "amount": {
        "increase": _v("increas", "rais", "boost", "extend", "grow")
        + r"|higher|grew|grown|bump(?:s|ed|ing)? up",
        "decrease": _v("decreas", "lower", "reduc", "shrink", "shorten") + r"|cut(?:s|ting)?",
    },
    "toggle": {
        "enable": _v("enabl", "activat") + r"|(?:turn|switch)(?:s|ed|ing)? on|" + _at_end("on"),
        "disable": _v("disabl", "deactivat")
        + r"|(?:turn|switch)(?:s|ed|ing)? off|"
        + _at_end("off"),
    },
    "membership": {
        "add": r"add(?:s|ed|ing)?|" + _v("creat", "insert"),
        "remove": _v("remov", "delet", "eras") + r"|get(?:ting)? rid of",
    },
    "order": {
        "before": r"before|prior to|earlier(?: than)?|sooner|ahead of",
        "after": r"after|later(?: than)?",
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
        "charge": _v("charg") + r"|debit(?:s|ed|ing)?(?!\s+cards?)|bill(?:s|ed)?",
        "credit": r"credit(?:s|ed|ing)?(?!\s+cards?)",
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
    "card": {"credit card": r"credit cards?", "debit card": r"debit cards?"},
    "message": {
        "send": r"send(?:s|ing)?|sent",
        "receive": _v("receiv"),
    },
    "sort": {
        "ascending": r"ascending|asc|a-z|oldest first",
        "descending": r"descending|desc|"
        r"z-a|newest first",
    },
    "compass": {
        "north": r"north(?:ern|ward|wards|bound)?",
        "south": r"south(?:ern|ward|wards|bound)?",
        "east": r"east(?:ern|ward|wards|bound)?",
        "west": r"west(?:ern|ward|wards|bound)?",
    },
    "side": {"left": r"left(?:-hand)?", "right": r"right(?:-hand)?(?!\s+(?:now|away)\b)"},
    "gender": {
        "men": r"men(?:'s)?|mens|man's|male|males|boys?(?:'s)?|gentlemen(?:'s)?",
        "women": r"women(?:'s)?|womens|woman's|female|females|girls?(?:'s)?|ladies(?:')?",
    },
    "age": {
        "adult": r"adults?|grown-ups?",
        "child": r"child(?:ren)?(?:'s)?|kids?|infants?|bab(?:y|ies)|toddlers?|pediatric",
    },
    "price": {
        "cheap": r"cheap|inexpensive|affordable|low-cost",
        "expensive": r"expensive|pricey|costly|high-end",
    },
    "outcome": {
        "success": r"success(?:ful|fully|es)?|succe(?:ed|eds|eded|eding)|passed|passing",
        "failure": r"fail(?:s|ed|ing|ure|ures)?|unsuccessful|errored",
    },
    "truth": {
        "true": r"true|correct|accurate",
        "false": r"false|incorrect|wrong|untrue|inaccurate",
    },
    "temperature": {"hot": r"hot|hotter|warm|warmer", "cold": r"cold|colder|cool|cooler"},
    "level": {"high": r"high", "low": r"low"},
    "legality": {"legal": r"legal|lawful|legally", "illegal": r"illegal|unlawful|illegally"},
    "safety": {
        "safe": r"safe|safely|harmless",
        "unsafe": r"unsafe|dangerous|harmful|hazardous|risky|toxic",
    },
    **{
        stem: {"yes": forms, "no": "|".join(f"{no}{f}" for f in forms.split("|"))}
        for stem, forms, no in (
            ("verified", r"verified", "un"),
            ("available", r"available", "un"),
            ("read", r"read", "un"),
            ("resolved", r"resolved", "un"),
            ("assigned", r"assigned", "un"),
            ("published", r"published", "un"),
            ("supported", r"supported", "un"),
            ("authorized", r"authori[sz]ed", "un"),
            ("limited", r"limited", "un"),
            ("official", r"official", "un"),
            ("valid", r"valid", "in"),
            ("active", r"active", "in"),
            ("complete", r"complete", "in"),
            ("possible", r"possible", "im"),
            ("refundable", r"refundable", "non-?"),
        )
    },
}
# Comparisons with a number, each its own slot: "over $100", "> 100", ">= 100" and "at most
# 100" all differ ("at least 5" keeps 5, "more than 5" does not).
COMPARISONS = {  # kind -> (words, signs)
    "more": (
        r"more than|over|above|greater than|bigger than|larger than|higher than|exceeding|"
        r"in excess of",
        r">(?!=)",
    ),
    "at-least": (
        r"at least|no less than|not less than|no fewer than|a minimum of|minimum of",
        r">=|\u2265",
    ),
    "less": (r"less than|fewer than|under|below|lower than|smaller than", r"<(?!=)"),
    "at-most": (
        r"at most|no more than|not more than|up to|a maximum of|maximum of",
        r"<=|\u2264",
    ),
}
# "scale the service up", "the price went down".
UP_DOWN = re.compile(
    r"\b(?:scal(?:e|es|ed|ing)|go(?:es|ing)?|went|gone|turn(?:s|ed|ing)?)\b(?:\s+[\w-]+){0,4}?"
    r"\s+(up|down)\b",
    re.IGNORECASE,
)
