"""Model usage of a run, summed where its events live: ``RunStore.model_usage``.

A run's ``model_call`` events carry tokens, cost and timings (``tether.llm.model.usage_event``).
Reading every event to add them up costs a round trip per page and a decode per event; the SQL
backends sum them in one query (SQLite ``json_extract``, PostgreSQL ``jsonb``), the memory store
in Python with the same rules:

* a call counts under its ``model`` (``"?"`` when absent or empty);
* tokens, cost and timings count only when they are JSON numbers (a call without a numeric
  ``cost`` is unpriced); tokens are truncated to integers;
* timings (``latency``, ``ttft``, ``tpot``) count only when non-negative;
* ``estimated`` and ``cache.hit`` count when ``true``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from tether.store.rows import EVENT_COLUMNS
from tether.store.sql_json import JsonFields

MODEL_CALL = "model_call"


@dataclass(slots=True)
class ModelCallTotals:
    """The ``model_call`` events of one run and one model, summed."""

    model: str
    calls: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost: float = 0.0
    priced_calls: int = 0
    estimated_calls: int = 0
    cached_calls: int = 0
    latency: float = 0.0
    latency_calls: int = 0
    max_latency: float = 0.0
    ttft: float = 0.0
    ttft_calls: int = 0
    tpot: float = 0.0
    tpot_calls: int = 0


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _whole(value: Any) -> int | None:
    """A token count: an integer as it is (exact past 2^53), a finite float truncated."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if isinstance(value, int):
        return value
    return int(value) if math.isfinite(value) else None


def _duration(value: Any) -> float | None:
    seconds = _number(value)
    return seconds if seconds is not None and seconds >= 0.0 else None


def sum_model_calls(datas: Iterable[Mapping[str, Any]]) -> list[ModelCallTotals]:
    """The data of ``model_call`` events, summed per model (sorted by model)."""
    out: dict[str, ModelCallTotals] = {}
    for data in datas:
        model = data.get("model")
        name = str(model) if model is not None and model != "" else "?"
        t = out.get(name) or out.setdefault(name, ModelCallTotals(name))
        t.calls += 1
        for field in ("input_tokens", "output_tokens"):
            n = _whole(data.get(field))
            if n is not None:
                setattr(t, field, getattr(t, field) + n)
        cost = _number(data.get("cost"))
        if cost is not None:
            t.cost += cost
            t.priced_calls += 1
        t.estimated_calls += data.get("estimated") is True
        cache = data.get("cache")
        t.cached_calls += isinstance(cache, Mapping) and cache.get("hit") is True
        latency = _duration(data.get("latency"))
        if latency is not None:
            t.latency += latency
            t.latency_calls += 1
            t.max_latency = max(t.max_latency, latency)
        ttft = _duration(data.get("ttft"))
        if ttft is not None:
            t.ttft += ttft
            t.ttft_calls += 1
        tpot = _duration(data.get("tpot"))
        if tpot is not None:
            t.tpot += tpot
            t.tpot_calls += 1
    return [out[k] for k in sorted(out)]


def model_usage_sql(dialect: str, prefix: str) -> str:
    """One ``SELECT`` (parameter: the run id) of the columns of ``ModelCallTotals``, a row per
    model (``""`` for "no model", as ``?`` would read as a placeholder), for ``dialect``
    ``"sqlite"`` or ``"postgres"`` (placeholders as ``?``)."""
    js = JsonFields(dialect)
    num, true = js.num, js.true

    def dur(path: str) -> str:
        return f"CASE WHEN {num(path)} >= 0 THEN {num(path)} END"

    total = js.total
    cols = [
        "COUNT(*)",
        total(js.whole("input_tokens")),
        total(js.whole("output_tokens")),
        total(num("cost")),
        f"COUNT({num('cost')})",
        f"SUM({true('estimated')})",
        f"SUM({true('cache,hit')})",
        total(dur("latency")),
        f"COUNT({dur('latency')})",
        f"COALESCE(MAX({dur('latency')}), 0)",
        total(dur("ttft")),
        f"COUNT({dur('ttft')})",
        total(dur("tpot")),
        f"COUNT({dur('tpot')})",
    ]
    return (
        f"SELECT COALESCE(m, '') AS model, {', '.join(cols)} FROM "
        f"(SELECT {js.text('model')} AS m, d FROM (SELECT {js.doc} AS d FROM {prefix}events "
        f"WHERE run_id = ? AND type = '{MODEL_CALL}') AS e) AS x "
        "GROUP BY COALESCE(m, '')"
    )


def step_model_calls_sql(dialect: str, prefix: str) -> str:
    """The ``model_call`` events of one run at one step, in order (parameters: the run id, the
    step), read through the partial index of model calls (schema v18): a run's model calls,
    not every event it has."""
    events = f"{prefix}events"
    if dialect != "postgres":
        # without statistics SQLite would read every event of the run by the primary key
        events += " INDEXED BY tether_events_model_calls"
    return (
        f"SELECT {', '.join(EVENT_COLUMNS)} FROM {events} "
        f"WHERE run_id = ? AND type = '{MODEL_CALL}' AND step = ? ORDER BY seq"
    )


def row_to_totals(row: Any) -> ModelCallTotals:
    f = float
    return ModelCallTotals(
        str(row[0]) or "?", int(row[1]), int(row[2]), int(row[3]), f(row[4]), int(row[5]),
        int(row[6]), int(row[7]), f(row[8]), int(row[9]), f(row[10]), f(row[11]),
        int(row[12]), f(row[13]), int(row[14]),
    )  # fmt: skip
