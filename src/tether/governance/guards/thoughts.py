"""What the semantic loop guard compares: a run's recent "thoughts" (the text and the tool
calls of its model responses, read from its effect journal) and how alike they are."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from tether.core import serde
from tether.governance.guards.base import Recent
from tether.llm.embeddings import Embedder, embed_unit, numpy
from tether.store.types import EffectRecord


def thought_of(result: Any) -> str | None:
    """One journaled model response (``ModelResponse`` as JSON) as text: what it said, then
    the tool calls it asked for (``name {args}``); None when it is not a response."""
    if not isinstance(result, Mapping):
        return None
    parts = [str(result.get("text") or "").strip()]
    for call in result.get("tool_calls") or ():
        if isinstance(call, Mapping):
            args = serde.dumps(call.get("arguments") or {}).decode()
            parts.append(f"{call.get('name')} {args}")
    text = "\n".join(p for p in parts if p)
    return text or None


def thoughts(effects: Sequence[EffectRecord]) -> list[str]:
    """The run's model responses so far, oldest first, as text (``thought_of``)."""
    out: list[str] = []
    for eff in effects:
        if eff.kind == "model" and eff.status == "done":
            text = thought_of(eff.result)
            if text is not None:
                out.append(text)
    return out


async def mean_pairwise_cosine(
    embedder: Embedder, texts: Sequence[str], cache: Recent[str, Any] | None = None
) -> float:
    """The mean cosine similarity over every pair of ``texts`` (at least two). ``cache``
    keeps each text's unit vector: a window slides by one thought per call, so each check
    embeds only the new one."""
    np = numpy()
    if cache is None:
        vectors = await embed_unit(embedder, texts)
    else:
        missing = list(dict.fromkeys(t for t in texts if cache.get(t) is None))
        for text, row in zip(missing, await embed_unit(embedder, missing), strict=True):
            cache.put(text, row)
        known = {t: cache.get(t) for t in texts}
        vectors = np.stack([known[t] for t in texts])
    sims = vectors @ vectors.T
    n = len(texts)
    upper = sims[np.triu_indices(n, k=1)]
    return float(upper.mean())
