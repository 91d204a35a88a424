"""The units and currencies behind ``cache_slots``: what may follow a number (10 kg, 30 °C,
5 mph), money words and signs (₹, rupees, A$, australian dollars) and time zones, each
mapped to one spelling. Plain data, English only."""

from __future__ import annotations

import re

# unit as written (lower case, singular) -> its one spelling; plurals with an "s" are read too.
UNITS = {
    "%": "%", "percent": "%", "per cent": "%", "pct": "%",
    "kb": "kb", "kilobyte": "kb", "mb": "mb", "megabyte": "mb", "gb": "gb", "gig": "gb",
    "gigabyte": "gb", "tb": "tb", "terabyte": "tb", "pb": "pb", "kbps": "kbps", "mbps": "mbps",
    "gbps": "gbps", "bit": "bit", "byte": "byte",
    "ms": "ms", "millisecond": "ms", "s": "s", "sec": "s", "second": "s",
    "min": "min", "minute": "min", "h": "h", "hr": "h", "hour": "h", "day": "day",
    "wk": "week", "week": "week", "mo": "month", "month": "month", "yr": "year", "year": "year",
    "x": "x", "time": "x",
    "mg": "mg", "milligram": "mg", "g": "g", "gram": "g", "gramme": "g", "kg": "kg",
    "kilo": "kg", "kilogram": "kg", "lb": "lb", "lbs": "lb", "oz": "oz", "ounce": "oz",
    "ton": "ton", "tonne": "tonne", "mcg": "mcg", "microgram": "mcg",
    "mm": "mm", "millimeter": "mm", "millimetre": "mm", "cm": "cm", "centimeter": "cm",
    "centimetre": "cm", "m": "m", "meter": "m", "metre": "m", "km": "km", "kilometer": "km",
    "kilometre": "km", "inch": "inch", "inches": "inch", "ft": "ft", "foot": "ft", "feet": "ft",
    "yd": "yd", "yard": "yd", "mi": "mi", "mile": "mi",
    "ml": "ml", "milliliter": "ml", "millilitre": "ml", "l": "l", "liter": "l", "litre": "l",
    "gal": "gal", "gallon": "gal", "cup": "cup", "tbsp": "tbsp", "tablespoon": "tbsp",
    "tsp": "tsp", "teaspoon": "tsp", "pint": "pint", "quart": "qt", "qt": "qt",
    "°": "°", "deg": "°", "degree": "°", "°c": "°c", "celsius": "°c", "centigrade": "°c",
    "degree celsius": "°c", "degrees celsius": "°c", "degree c": "°c", "degrees c": "°c",
    "°f": "°f", "fahrenheit": "°f", "degree fahrenheit": "°f", "degrees fahrenheit": "°f",
    "degree f": "°f", "degrees f": "°f", "kelvin": "kelvin",
    "mph": "mph", "kph": "kph", "km/h": "kph", "kmh": "kph", "knot": "knot", "m/s": "m/s",
    "w": "w", "watt": "w", "kw": "kw", "kilowatt": "kw", "kwh": "kwh", "v": "v", "volt": "v",
    "hz": "hz", "khz": "khz", "mhz": "mhz", "ghz": "ghz", "cal": "cal", "calorie": "cal",
    "kcal": "kcal", "px": "px", "pixel": "px",
}  # fmt: skip
# An abbreviation nobody listed (a word of one to four consonants: "10 kn", "3 qts") is a
# unit too, kept as written: an unknown unit makes a miss, never a match.
_ABBREVIATION = r"(?!(?:vs|pls|plz|thx|cc)\b)[b-df-hj-np-tv-xz]{1,4}"
UNIT_PATTERN = (
    "|".join(
        sorted(
            (
                re.escape(u).replace(r"\ ", r"\s+")
                + ("s?" if u[-1].isalpha() and len(u) > 1 else "")
                for u in UNITS
            ),
            key=len,
            reverse=True,
        )
    )
    + "|"
    + _ABBREVIATION
)


def unit(raw: str | None) -> str:
    """' gb' for 'GB', ' min' for 'minutes', ' kg' for 'kilos'; '' for no unit."""
    if not raw:
        return ""
    name = " ".join(raw.lower().split())
    for form in (name, name[:-1] if name.endswith("s") else name):
        if form in UNITS:
            return " " + UNITS[form]
    return " " + name


# Money: a sign or code before the amount, a word after it.
CURRENCIES = {
    "$": "usd", "usd": "usd", "dollar": "usd", "buck": "usd", "€": "eur", "eur": "eur",
    "euro": "eur", "£": "gbp", "gbp": "gbp", "pound": "gbp", "quid": "gbp", "¥": "jpy",
    "jpy": "jpy", "yen": "jpy", "chf": "chf", "cad": "cad", "aud": "aud", "cent": "usd-cent",
    "₹": "inr", "inr": "inr", "rupee": "inr", "₽": "rub", "rub": "rub", "ruble": "rub",
    "rouble": "rub", "₩": "krw", "krw": "krw", "won": "krw", "₺": "try", "lira": "try",
    "₪": "ils", "ils": "ils", "shekel": "ils", "₱": "php", "₫": "vnd", "฿": "thb", "baht": "thb",
    "₴": "uah", "₦": "ngn", "cny": "cny", "rmb": "cny", "yuan": "cny", "renminbi": "cny",
    "mxn": "mxn", "peso": "peso", "brl": "brl", "real": "brl", "reais": "brl", "zar": "zar",
    "rand": "zar", "sek": "sek", "nok": "nok", "dkk": "dkk", "krona": "krona", "krone": "krone",
    "kronor": "krona", "kroner": "krone", "pln": "pln", "zloty": "pln", "huf": "huf",
    "forint": "huf", "czk": "czk", "sgd": "sgd", "hkd": "hkd", "nzd": "nzd", "franc": "franc",
    "dirham": "dirham", "aed": "aed", "ringgit": "myr", "myr": "myr", "btc": "btc",
    "bitcoin": "btc", "eth": "eth",
    "a$": "aud", "au$": "aud", "c$": "cad", "ca$": "cad", "us$": "usd", "hk$": "hkd",
    "nz$": "nzd", "s$": "sgd", "r$": "brl", "mx$": "mxn",
}  # fmt: skip
SIGNS = r"[$€£¥₹₽₩₺₪₱₫฿₴₦]|(?<!\w)(?:a|au|c|ca|us|hk|nz|s|r|mx)\$"
CODES = (
    r"usd|eur|gbp|jpy|chf|cad|aud|inr|rub|krw|ils|cny|rmb|mxn|brl|zar|sek|nok|dkk|pln|huf|czk|"
    r"sgd|hkd|nzd|aed|myr|btc"
)
WORDS = (
    r"dollars?|bucks?|euros?|pounds?(?:\s+sterling)?|quid|yen|cents?|rupees?|rubles?|roubles?|"
    r"won|lira|liras|lire|shekels?|baht|yuan|renminbi|pesos?|reais|real|rand|kron(?:a|e|or|er)|"
    r"zloty|zlotys|forints?|francs?|dirhams?|ringgits?|bitcoins?"
)
# Whose dollar (peso, franc...): "australian dollars" is AUD, "100 fijian dollars" keeps its
# word, so it never matches plain dollars.
QUALIFIED = {
    "us": "usd", "u.s.": "usd", "american": "usd", "australian": "aud", "aussie": "aud",
    "canadian": "cad", "hong kong": "hkd", "singapore": "sgd", "new zealand": "nzd",
    "mexican": "mxn", "swiss": "chf", "indian": "inr", "pakistani": "pkr", "russian": "rub",
    "chilean": "clp", "argentine": "ars", "argentinian": "ars", "colombian": "cop",
    "philippine": "php", "swedish": "sek", "norwegian": "nok", "danish": "dkk",
    "british": "gbp", "egyptian": "egp", "turkish": "try", "brazilian": "brl",
    "south african": "zar", "japanese": "jpy", "chinese": "cny", "korean": "krw",
}  # fmt: skip
QUALIFIER = "|".join(sorted((re.escape(q) for q in QUALIFIED), key=len, reverse=True))
# Currencies named without an amount ("how much is 100 USD in euros?"). Lower-case codes and
# words that are English words too (cad, won, real, rand, try) are left out.
BARE = (
    r"(?:dollars?|euros?|pounds? sterling|yen|rupees?|rubles?|roubles?|yuan|renminbi|pesos?|"
    r"francs?|shekels?|zloty|usd|eur|gbp|jpy|chf|aud|inr|cny|mxn|brl|sek|nok|dkk|pln|sgd|hkd|"
    r"nzd)"
)
BARE_UPPER = r"CAD|TRY|ZAR|KRW|RUB|ILS|HUF|CZK|AED|MYR|BTC"

# Time zones after a clock time ("3pm EST"); spelled regions keep one name.
ZONES = {
    "eastern": "et", "pacific": "pt", "central": "ct", "mountain": "mt",
    "greenwich": "gmt", "zulu": "utc",
}  # fmt: skip
ZONE = (
    r"(?:\s*\b(utc|gmt)\s?([+-]\d{1,2}(?::?\d{2})?)(?![\w:])"
    r"|\s*\(?\b(utc|gmt|est|edt|et|cst|cdt|ct|mst|mdt|mt|pst|pdt|pt|akst|hst|cet|cest|bst|ist|"
    r"jst|kst|sgt|hkt|aest|aedt|acst|awst|nzst|nzdt|msk|eastern|pacific|central|mountain)\b"
    r"(?:\s+time)?\)?)?"
)


def zone(match: re.Match[str], first: int) -> str:
    """' est' for the zone the three groups from ``first`` on read ('' for none)."""
    if match[first]:
        return f" {match[first].lower()}{match[first + 1]}"
    name = match[first + 2]
    return " " + ZONES.get(name.lower(), name.lower()) if name else ""
