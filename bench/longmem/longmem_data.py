"""A seeded synthetic long-memory dataset in the spirit of LoCoMo / LongMemEval.

Each user has one multi-session conversation (default ~100k tokens, about four characters a
token) with an assistant. Spread through its filler turns are *planted facts* about the user
(where they live, where they work, their manager, their pet, the project they lead, their
car), *updates* that supersede earlier ones ("I moved to Porto"), *second-hop facts* about
entities the user's facts name ("Dana works out of the Oslo office", "Project KT-41 is
written in Rust"), and *distractors* that mention the same kinds of values about someone else
("My sister lives in Madrid").

Questions have exact answers (a single value), of three kinds:

- ``current``: "Where does the user live now?" (the latest value);
- ``before``: "Where did the user live before moving to Porto?" (the value the latest one
  replaced);
- ``multi_hop``: "In which city is the office of the user's current manager?" (two facts).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

DAY = 86_400.0
START = 1_750_000_000.0

CITIES = [
    "Lisbon",
    "Porto",
    "Madrid",
    "Berlin",
    "Oslo",
    "Vienna",
    "Prague",
    "Dublin",
    "Warsaw",
    "Athens",
    "Zurich",
    "Helsinki",
    "Krakow",
    "Seville",
    "Munich",
    "Bergen",
    "Tallinn",
    "Riga",
]
COMPANIES = [
    "Globex",
    "Initech",
    "Umbrella",
    "Hooli",
    "Vandelay",
    "Cyberdyne",
    "Stark",
    "Wayne",
    "Tyrell",
    "Soylent",
    "Massive",
    "Wonka",
    "Aperture",
    "Oscorp",
]
PEOPLE = [
    "Dana",
    "Miguel",
    "Priya",
    "Tomas",
    "Ingrid",
    "Kenji",
    "Amara",
    "Lukas",
    "Sofia",
    "Omar",
    "Freya",
    "Mateo",
    "Hana",
    "Viktor",
    "Leila",
    "Ruben",
]
PETS = ["Biscuit", "Pepper", "Mochi", "Rex", "Luna", "Ziggy", "Nala", "Otis", "Pixel", "Waffles"]
LANGS = ["Rust", "Go", "Kotlin", "Haskell", "Elixir", "Scala", "Zig", "OCaml", "Python", "Java"]
CARS = ["Corolla", "Civic", "Golf", "Model3", "Clio", "Octavia", "Mazda3", "Leaf", "Ioniq"]

STATE_FACTS = {
    # attribute: (values, statement templates, how many values over time)
    "lives_in": (CITIES, ["I just moved to {v}.", "We relocated to {v} this month."], 3),
    "works_at": (COMPANIES, ["I started a new job at {v}.", "I now work at {v}."], 3),
    "manager": (PEOPLE, ["My manager is now {v}.", "My new manager is {v}."], 2),
    "pet": (PETS, ["Our dog is called {v}."], 1),
    "leads": (None, ["I now lead project {v}."], 2),
    "drives": (CARS, ["I drive a {v} these days."], 2),
}
DISTRACTORS = [
    ("lives_in", CITIES, "My sister lives in {v}."),
    ("lives_in", CITIES, "A friend of mine moved to {v} last year."),
    ("works_at", COMPANIES, "My cousin got an offer from {v}."),
    ("manager", PEOPLE, "{v} is the manager of the team next door."),
    ("drives", CARS, "My neighbour bought a {v}."),
    ("pet", PETS, "The cat next door is called {v}."),
]
TOPICS = [
    "the weekend hike",
    "a recipe for lentil soup",
    "the quarterly report",
    "jazz records",
    "a broken bike chain",
    "the football match",
    "learning to knit",
    "a podcast on history",
    "the budget spreadsheet",
    "a board game night",
    "tomato seedlings",
    "a long train ride",
    "the new coffee grinder",
    "a museum visit",
    "sourdough starters",
    "a chess opening",
    "the team offsite",
    "noise cancelling headphones",
    "an old sci-fi novel",
    "marathon training",
]
FILLER_USER = [
    "Can you help me think about {t}? I keep going back and forth on it.",
    "I spent the evening on {t} and it took longer than planned.",
    "What do you know about {t}? Keep it short please.",
    "Remind me later to look into {t} again, it was interesting.",
    "I was chatting with a colleague about {t} over lunch today.",
    "Honestly {t} was the highlight of my week so far.",
]
FILLER_ASSISTANT = [
    "Sure. For {t}, start small and note what works; we can refine it next time.",
    "That sounds like a good use of the evening. {t} rewards patience.",
    "Here is a short take on {t}: focus on the basics, then add detail as you go.",
    "Noted. I will keep {t} in mind when you bring it up again.",
    "Good to hear. If {t} comes up again I can suggest a few next steps.",
]


@dataclass(frozen=True, slots=True)
class Turn:
    role: str
    text: str
    ts: float
    session: int


@dataclass(frozen=True, slots=True)
class Question:
    user: str
    kind: str
    """``current``, ``before`` or ``multi_hop``."""
    text: str
    answer: str


@dataclass(slots=True)
class Conversation:
    user: str
    turns: list[Turn] = field(default_factory=list)
    questions: list[Question] = field(default_factory=list)

    @property
    def chars(self) -> int:
        return sum(len(t.text) for t in self.turns)


def _project(rng: random.Random) -> str:
    letters = "ABCDEFGHJKLMNPRSTVWXZ"
    return f"{rng.choice(letters)}{rng.choice(letters)}-{rng.randint(10, 99)}"


def build(user: str, seed: int, tokens: int = 100_000, sessions: int = 20) -> Conversation:
    """One user's conversation of about ``tokens`` tokens, with its questions."""
    rng = random.Random(seed)
    timeline: dict[str, list[str]] = {}
    for attr, (values, _, n) in STATE_FACTS.items():
        pool = values if values is not None else [_project(rng) for _ in range(6)]
        timeline[attr] = rng.sample(pool, n)
    offices = {p: rng.choice(CITIES) for p in timeline["manager"]}
    langs = {p: rng.choice(LANGS) for p in timeline["leads"]}
    other_projects = [_project(rng) for _ in range(4)]

    # the facts to plant, in order of time: state facts spread over the sessions
    planted: list[tuple[float, str]] = []
    for attr, values in timeline.items():
        templates = STATE_FACTS[attr][1]
        slots = sorted(rng.sample(range(1, 20 * sessions - 1), len(values)))
        for slot, v in zip(slots, values, strict=True):
            planted.append((slot, rng.choice(templates).format(v=v)))
    for p, city in offices.items():
        planted.append((rng.randint(0, 20 * sessions - 1), f"{p} works out of the {city} office."))
    for code, lang in langs.items():
        planted.append((rng.randint(0, 20 * sessions - 1), f"Project {code} is written in {lang}."))
    for code in other_projects:
        planted.append(
            (
                rng.randint(0, 20 * sessions - 1),
                f"Project {code} is written in {rng.choice(LANGS)}.",
            )
        )
    for _ in range(8 * sessions // 5):
        _, values, tpl = rng.choice(DISTRACTORS)
        planted.append((rng.randint(0, 20 * sessions - 1), tpl.format(v=rng.choice(values))))
    planted.sort(key=lambda x: x[0])

    conv = Conversation(user)
    budget_chars = tokens * 4
    per_session = budget_chars // sessions
    fact_i = 0
    slot_chars = per_session // 20
    for s in range(sessions):
        ts = START + s * 3 * DAY
        used = 0
        while used < per_session:
            slot = s * 20 + min(19, used // max(1, slot_chars))
            topic = rng.choice(TOPICS)
            text = rng.choice(FILLER_USER).format(t=topic)
            while fact_i < len(planted) and planted[fact_i][0] <= slot:
                text = f"{text} {planted[fact_i][1]}"
                fact_i += 1
            conv.turns.append(Turn("user", text, ts, s))
            reply = rng.choice(FILLER_ASSISTANT).format(t=topic)
            conv.turns.append(Turn("assistant", reply, ts + 30, s))
            used += len(text) + len(reply)
            ts += 60
    while fact_i < len(planted):  # anything past the last slot goes in a last turn
        conv.turns.append(Turn("user", planted[fact_i][1], conv.turns[-1].ts + 60, sessions - 1))
        fact_i += 1

    q = conv.questions
    asks = {
        "lives_in": (
            "Where does the user live now?",
            "Where did the user live before moving to {v}?",
        ),
        "works_at": (
            "Which company does the user work at now?",
            "Which company did the user work at before {v}?",
        ),
        "manager": ("Who is the user's manager now?", "Who was the user's manager before {v}?"),
        "pet": ("What is the name of the user's dog?", None),
        "leads": (
            "Which project does the user lead now?",
            "Which project did the user lead before {v}?",
        ),
        "drives": (
            "Which car does the user drive now?",
            "Which car did the user drive before the {v}?",
        ),
    }
    for attr, (now_q, before_q) in asks.items():
        values = timeline[attr]
        q.append(Question(user, "current", now_q, values[-1]))
        if before_q is not None and len(values) > 1:
            q.append(Question(user, "before", before_q.format(v=values[-1]), values[-2]))
    q.append(
        Question(
            user,
            "multi_hop",
            "In which city is the office of the user's current manager?",
            offices[timeline["manager"][-1]],
        )
    )
    q.append(
        Question(
            user,
            "multi_hop",
            "In which language is the project the user leads now written?",
            langs[timeline["leads"][-1]],
        )
    )
    return conv


def dataset(users: int, seed: int, tokens: int) -> list[Conversation]:
    return [build(f"user{i}", seed * 1000 + i, tokens) for i in range(users)]
