"""Pure ranking: query terms, BM25 (for the in-process backend), reciprocal rank fusion,
temporal decay and the importance weight. The backends fetch candidates; this orders them."""

from __future__ import annotations

import math
import re
import unicodedata
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import TypeVar

from tether.memory.types import Memory, Ranking, Recalled

K = TypeVar("K")

_WORD = re.compile(r"[^\W_]+")
_STOP = (
    # Snowball's English list (function words only), with the pieces contractions leave
    "i me my myself we our ours ourselves you your yours yourself yourselves he him his "
    "himself she her hers herself it its itself they them their theirs themselves what "
    "which who whom this that these those am is are was were be been being have has had "
    "having do does did doing would should could ought a an the and but if or because as "
    "until while of at by for with about against between into through during before after "
    "above below to from up down in out on off over under again further then once here "
    "there when where why how all any both each few more most other some such no nor not "
    "only own same so than too very can will just s t d ll m re ve don isn aren wasn "
    "weren hasn haven hadn doesn didn won wouldn shan shouldn couldn mustn let"
)
STOPWORDS = frozenset(_STOP.split())
"""Dropped from keyword queries (not from the index): words every text has match noise."""
MAX_TERMS = 32


def tokens(text: str) -> list[str]:
    """Lower-case alphanumeric runs: the tokenisation FTS5's unicode61 and Postgres' ``simple``
    configuration agree on (``ERR_CONN-42`` -> err, conn, 42)."""
    return _WORD.findall(text.lower())


def fold(text: str) -> str:
    """``text`` with the accents of Latin letters taken off (``café`` -> ``cafe``, ``İ`` ->
    ``I``), as FTS5's ``unicode61 remove_diacritics 2`` does; other scripts' marks stay (a
    Greek ``ά`` is FTS5's ``ά`` too). The in-process BM25 folds its texts and queries with it,
    so it matches the words SQLite matches."""
    if text.isascii():
        return text
    out: list[str] = []
    latin = False
    for ch in unicodedata.normalize("NFD", text):
        if "\u0300" <= ch <= "\u036f":  # a combining accent: dropped after a Latin letter
            if not latin:
                out.append(ch)
            continue
        latin = ch < "\u0250" or "\u1e00" <= ch <= "\u1eff"
        out.append(ch)
    return unicodedata.normalize("NFC", "".join(out))


def query_terms(query: str) -> list[str]:
    """The distinct non-stopword tokens of a query, at most ``MAX_TERMS``, in order. A query of
    stopwords only keeps them (better something than nothing)."""
    words = list(dict.fromkeys(tokens(query)))
    kept = [w for w in words if w not in STOPWORDS] or words
    return kept[:MAX_TERMS]


MAX_DF = 0.05
"""A keyword in more than this share of the memories is dropped from the keyword query..."""
PRUNE_FROM = 10_000
"""...once the scope searched holds this many: scoring every match of a word that most memories have
costs a scan of the store and says little about which one is meant (max-df pruning)."""


def prune_terms(terms: Sequence[str], df: Mapping[str, float], total: float) -> list[str]:
    """``terms`` less those whose document frequency ``df`` (a count, of ``total``) is above
    ``MAX_DF``; none dropped while ``total`` is under ``PRUNE_FROM``. May return nothing: then
    the keyword search is skipped (the vector side still runs). ``df`` and ``total`` count the
    searching scope's memories only (every backend): counted over the store, another tenant's
    writes would change which of this tenant's memories a search finds (and could hide them)."""
    if total < PRUNE_FROM:
        return list(terms)
    return [t for t in terms if df.get(t, 0) <= MAX_DF * total]


class Bm25:
    """Okapi BM25 over an in-memory corpus (k1=1.2, b=0.75, FTS5's defaults)."""

    def __init__(self, k1: float = 1.2, b: float = 0.75) -> None:
        self.k1 = k1
        self.b = b

    def rank(self, terms: Sequence[str], docs: Mapping[K, str], limit: int) -> list[K]:
        return self.rank_bags(
            terms, {key: Counter(tokens(text)) for key, text in docs.items()}, limit
        )

    def rank_bags(
        self, terms: Sequence[str], bags: Mapping[K, Counter[str]], limit: int
    ) -> list[K]:
        """``rank`` over texts already tokenised: each key's token counts."""
        if not terms or not bags:
            return []
        n = len(bags)
        avg = sum(sum(b.values()) for b in bags.values()) / n or 1.0
        df = {t: sum(1 for b in bags.values() if t in b) for t in terms}
        scores: dict[K, float] = {}
        for key, bag in bags.items():
            length = sum(bag.values())
            s = 0.0
            for t in terms:
                f = bag.get(t, 0)
                if not f:
                    continue
                idf = math.log((n - df[t] + 0.5) / (df[t] + 0.5) + 1.0)
                s += idf * f * (self.k1 + 1) / (f + self.k1 * (1 - self.b + self.b * length / avg))
            if s > 0:
                scores[key] = s
        return [key for key, _ in sorted(scores.items(), key=lambda kv: -kv[1])[:limit]]


def decay(age: float, ranking: Ranking) -> float:
    """The recency factor of a memory ``age`` seconds old (a memory from the future counts as
    new): ``floor + (1 - floor) * 0.5 ** (age / half_life)``."""
    if ranking.half_life is None:
        return 1.0
    fresh = 0.5 ** (max(age, 0.0) / ranking.half_life)
    return float(ranking.decay_floor + (1.0 - ranking.decay_floor) * fresh)


def importance_factor(importance: float, ranking: Ranking) -> float:
    """``1 + weight * (importance - 0.5)``: 0.5..1.5 at full weight, 1 for a neutral memory."""
    return 1.0 + ranking.importance_weight * (importance - 0.5)


def rrf(
    vector_ids: Sequence[K], keyword_ids: Sequence[K], ranking: Ranking
) -> dict[K, tuple[float, int | None, int | None]]:
    """Reciprocal rank fusion: each key's fused score and its 1-based rank in each list."""
    out: dict[K, tuple[float, int | None, int | None]] = {}
    for rank, key in enumerate(vector_ids, 1):
        out[key] = (ranking.vector_weight / (ranking.rrf_k + rank), rank, None)
    for rank, key in enumerate(keyword_ids, 1):
        score, vrank, _ = out.get(key, (0.0, None, None))
        out[key] = (score + ranking.keyword_weight / (ranking.rrf_k + rank), vrank, rank)
    return out


def fuse(
    vector_ids: Sequence[str],
    keyword_ids: Sequence[str],
    memories: Mapping[str, Memory],
    *,
    now: float,
    ranking: Ranking,
    k: int,
) -> list[Recalled]:
    """The top ``k`` of the candidates, best first: RRF * decay * importance factor; ties go to
    the newer memory, then the smaller id (ids count up: the one added first, on every store
    filled the same way). Ids missing from ``memories`` are skipped."""
    hits: list[Recalled] = []
    for key, (score, vrank, krank) in rrf(vector_ids, keyword_ids, ranking).items():
        memory = memories.get(key)
        if memory is None:
            continue
        final = (
            score
            * decay(now - memory.created_at, ranking)
            * importance_factor(memory.importance, ranking)
        )
        hits.append(Recalled(memory, final, vrank, krank))
    hits.sort(key=lambda h: (-h.score, -h.memory.created_at, h.memory.id))
    return hits[:k]


def pool_size(k: int, ranking: Ranking) -> int:
    """How many candidates each retriever fetches for a top-``k`` search."""
    return max(k, ranking.candidates)


def uses(ranking: Ranking) -> tuple[bool, bool]:
    """Whether the vector and the keyword retriever take part."""
    return ranking.vector_weight > 0, ranking.keyword_weight > 0


def all_ids(*lists: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(i for ids in lists for i in ids))
