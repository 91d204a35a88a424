"""What a pattern's model calls cost: counted per node into state fields every pattern shares.

Each pattern's state carries ``model_calls`` and ``tokens`` (``add`` reducers), so a finished
run says what it spent, and two patterns run on one task can be compared (``Savings``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from tether.llm.types import ModelResponse


def spend(responses: Iterable[ModelResponse]) -> dict[str, int]:
    """The state update counting ``responses``: ``{"model_calls": n, "tokens": total}``."""
    calls = tokens = 0
    for response in responses:
        calls += 1
        tokens += response.usage.total_tokens
    return {"model_calls": calls, "tokens": tokens}


@dataclass(frozen=True)
class Savings:
    """What one pattern spent less than another on the same task (positive: fewer)."""

    model_calls: int
    """Model calls of the baseline minus the pattern's."""
    tokens: int
    """Tokens of the baseline minus the pattern's."""
    baseline_calls: int
    baseline_tokens: int
    calls: int
    tokens_used: int

    @property
    def tokens_ratio(self) -> float:
        """The fraction of the baseline's tokens saved (0.0 when the baseline spent none)."""
        return self.tokens / self.baseline_tokens if self.baseline_tokens else 0.0

    def table(self, pattern: str = "rewoo", baseline: str = "react") -> str:
        """A small text table of both runs and the difference."""
        rows = [
            ("", "model calls", "tokens"),
            (baseline, str(self.baseline_calls), str(self.baseline_tokens)),
            (pattern, str(self.calls), str(self.tokens_used)),
            ("saved", str(self.model_calls), f"{self.tokens} ({self.tokens_ratio:.0%})"),
        ]
        width = [max(len(r[i]) for r in rows) for i in range(3)]
        return "\n".join(
            "  ".join(cell.ljust(width[i]) for i, cell in enumerate(row)) for row in rows
        )


def savings(pattern: Mapping[str, Any], baseline: Mapping[str, Any]) -> Savings:
    """Compare the final states of two runs of one task (``model_calls``/``tokens`` fields)."""
    calls, tokens = int(pattern.get("model_calls", 0)), int(pattern.get("tokens", 0))
    base_calls, base_tokens = int(baseline.get("model_calls", 0)), int(baseline.get("tokens", 0))
    return Savings(base_calls - calls, base_tokens - tokens, base_calls, base_tokens, calls, tokens)
