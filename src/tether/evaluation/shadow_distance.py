"""How far apart two models' decisions are, in [0, 1]: 0 the same decision, 1 unrelated.

A decision is what a model answered: its text and its tool calls (name and arguments). Three
parts, each in [0, 1]:

* **tool**: 1 minus the Jaccard index of the two multisets of tool names (0 when neither
  called a tool);
* **arguments**: over the calls both made to the same tool (paired in order), 0 for equal
  arguments (canonical JSON) else 1 minus the cosine similarity of the embedded canonical
  JSON; their mean (1 when both called tools but none in common, 0 when neither did);
* **text**: 0 for equal texts, 1 when only one is empty, else 1 minus the cosine similarity
  of the embedded texts.

When neither model called a tool the text is the decision: the distance is the text part.
Otherwise it is ``weights.tool * tool + weights.args * arguments + weights.text * text``
(default 0.5, 0.3, 0.2): choosing another tool weighs most, rewording the text least.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from tether.core.errors import ConfigurationError
from tether.core.finite import is_number
from tether.llm.embeddings import Embedder, embed_unit
from tether.llm.types import ModelResponse


@dataclass(frozen=True, slots=True)
class DecisionWeights:
    tool: float = 0.5
    args: float = 0.3
    text: float = 0.2

    def __post_init__(self) -> None:
        parts = (self.tool, self.args, self.text)
        # a NaN compares false with every bound: check that each is a finite number first
        if not all(is_number(p) for p in parts) or min(parts) < 0 or abs(sum(parts) - 1) > 1e-9:
            raise ConfigurationError(
                "decision weights must be finite numbers >= 0 that sum to 1, got "
                f"tool={self.tool!r}, args={self.args!r}, text={self.text!r}"
            )


@dataclass(frozen=True, slots=True)
class DecisionDistance:
    distance: float
    tool: float
    args: float
    text: float

    @property
    def tool_agrees(self) -> bool:
        return self.tool == 0.0


def decision(response: ModelResponse) -> dict[str, Any]:
    """A response's decision: ``{"text", "tool_calls": [{"name", "arguments"}]}``."""
    return {
        "text": response.text,
        "tool_calls": [
            {"name": c.name, "arguments": dict(c.arguments)} for c in response.tool_calls
        ],
    }


def canonical(value: Any) -> str:
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS, default=str).decode()


def _calls(d: Mapping[str, Any]) -> list[tuple[str, str]]:
    return [(str(c["name"]), canonical(c.get("arguments") or {})) for c in d["tool_calls"]]


def tool_part(a: Sequence[tuple[str, str]], b: Sequence[tuple[str, str]]) -> float:
    ca, cb = Counter(n for n, _ in a), Counter(n for n, _ in b)
    union = sum((ca | cb).values())
    return 0.0 if union == 0 else 1.0 - sum((ca & cb).values()) / union


def arg_pairs(a: Sequence[tuple[str, str]], b: Sequence[tuple[str, str]]) -> list[tuple[str, str]]:
    """The arguments of the calls both made to one tool, paired in call order."""
    by_name: dict[str, list[str]] = defaultdict(list)
    for name, args in b:
        by_name[name].append(args)
    pairs = []
    for name, args in a:
        if by_name[name]:
            pairs.append((args, by_name[name].pop(0)))
    return pairs


async def decision_distance(
    a: Mapping[str, Any],
    b: Mapping[str, Any],
    embedder: Embedder,
    weights: DecisionWeights | None = None,
) -> DecisionDistance:
    """The distance of decision ``b`` from decision ``a`` (see the module's definition)."""
    w = weights or DecisionWeights()
    ca, cb = _calls(a), _calls(b)
    pairs = arg_pairs(ca, cb)
    ta, tb = str(a.get("text") or ""), str(b.get("text") or "")
    to_embed = [p for p in pairs if p[0] != p[1]]
    if ta and tb and ta != tb:
        to_embed.append((ta, tb))
    texts = list(dict.fromkeys(t for p in to_embed for t in p))
    vectors = await embed_unit(embedder, texts) if texts else None
    row = {t: i for i, t in enumerate(texts)}

    def gap(x: str, y: str) -> float:
        if x == y:
            return 0.0
        assert vectors is not None
        return max(0.0, min(1.0, 1.0 - float(vectors[row[x]] @ vectors[row[y]])))

    tool = tool_part(ca, cb)
    if pairs:
        args = sum(gap(x, y) for x, y in pairs) / len(pairs)
    else:
        args = 0.0 if not ca and not cb else 1.0
    text = 0.0 if ta == tb else 1.0 if not (ta and tb) else gap(ta, tb)
    if not ca and not cb:
        return DecisionDistance(text, tool, args, text)
    total = w.tool * tool + w.args * args + w.text * text
    return DecisionDistance(min(1.0, total), tool, args, text)
