"""How ``tether runs show`` prints what a run spent on models: calls, tokens and cost, and how
long the calls took (latency; time to first token and per output token for streamed calls)."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from rich.text import Text

if TYPE_CHECKING:
    from tether.llm.usage import RunUsage


def fmt_cost(dollars: float, significant: int = 3) -> str:
    """US dollars with at least two decimals and enough of them to show ``significant``
    digits of a small amount: ``$0.000016``, ``$0.0123``, ``$1.50``, ``$0``."""
    if not math.isfinite(dollars):
        return f"${dollars}"
    if dollars == 0:
        return "$0"
    magnitude = math.floor(math.log10(abs(dollars)))
    if magnitude >= 15:  # no real bill: a provider's absurd report, kept to a readable width
        return f"-${-dollars:.3e}" if dollars < 0 else f"${dollars:.3e}"
    decimals = max(2, significant - 1 - magnitude)
    text = f"{dollars:,.{decimals}f}"
    if decimals > 2:  # 0.0000160 -> 0.000016, but keep cents: 1.50
        whole, _, frac = text.partition(".")
        text = f"{whole}.{frac.rstrip('0').ljust(2, '0')}"
    return f"-${text[1:]}" if text.startswith("-") else f"${text}"


def fmt_seconds(seconds: float) -> str:
    """A duration: ``850 ms`` under a second, ``2.41 s`` above, ``4m 05s`` past a minute."""
    if seconds < 1.0:
        return f"{seconds * 1000:.3g} ms"
    if seconds < 60.0:
        return f"{seconds:.2f} s"
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes}m {rest:02d}s"


def usage_text(usage: RunUsage) -> Text:
    """Calls, tokens and cost, with notes (unpriced, estimated, cached, the models)."""
    t = Text(
        f"{usage.calls} call(s), {usage.input_tokens:,} in / {usage.output_tokens:,} out "
        f"tokens, {fmt_cost(usage.cost)}"
    )
    notes = []
    if usage.unpriced_calls:
        notes.append(f"{usage.unpriced_calls} unpriced")
    if usage.estimated_calls:
        notes.append(f"{usage.estimated_calls} with estimated tokens")
    if usage.cached_calls:
        notes.append(f"{usage.cached_calls} from cache")
    notes.append(", ".join(sorted(usage.by_model)))
    t.append(f"  ({'; '.join(notes)})", style="dim")
    return t


def latency_text(usage: RunUsage) -> Text:
    """Total, mean and slowest call latency; mean TTFT and TPOT over the streamed calls."""
    parts = [f"{fmt_seconds(usage.latency)} in all"]
    if usage.mean_latency is not None:
        parts.append(f"mean {fmt_seconds(usage.mean_latency)}")
        parts.append(f"max {fmt_seconds(usage.max_latency)}")
    t = Text(", ".join(parts))
    streamed = []
    if usage.mean_ttft is not None:
        streamed.append(f"TTFT mean {fmt_seconds(usage.mean_ttft)}")
    if usage.mean_tpot is not None:
        streamed.append(f"TPOT mean {fmt_seconds(usage.mean_tpot)}")
    if streamed:
        t.append(f"; {', '.join(streamed)}")
        t.append(f"  ({usage.streamed_calls} streamed)", style="dim")
    else:
        t.append("  (no streamed calls: no TTFT/TPOT)", style="dim")
    return t


def usage_json(usage: RunUsage, jsonable: Callable[[Any], Any]) -> Any:
    """The usage record for ``--json``, with the means worked out."""
    data = jsonable(usage)
    data["mean_latency"] = usage.mean_latency
    data["mean_ttft"] = usage.mean_ttft
    data["mean_tpot"] = usage.mean_tpot
    return data
