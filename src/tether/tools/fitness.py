"""What tool arguments may hold beyond their types: finite numbers, integers the journal keeps
(64 bits at most). A model sent them, so a problem is a ``ToolArgumentsError`` for it to fix."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterator, Mapping
from decimal import Decimal
from typing import Any

from pydantic import BaseModel

from tether.core import serde

NON_FINITE = "Input should be a finite number"
"""Tool arguments never hold NaN or infinity: no policy comparison decides on them, and the
journal (JSON) would keep them as null."""

HUGE_INT = (
    "Input should be an integer of at most 64 bits (-2**63 to 2**64-1); pass a bigger number "
    "as a string"
)
"""Tool arguments never hold an integer the journal cannot keep (it writes 64 bits at most):
inside a run such a call could not be journaled, and a model sent it, so it is the model's to
fix."""


def _unfit(value: Any, loc: tuple[str | int, ...]) -> Iterator[tuple[tuple[str | int, ...], str]]:
    """Where ``value`` (validated arguments: models, dataclasses, mappings, sequences) holds
    a float or Decimal that is not finite (``"finite_number"``) or an integer beyond 64 bits
    (``"int_64_bits"``). A model's defaults are its author's, not checked."""
    if isinstance(value, bool):
        return
    if isinstance(value, int):
        if not serde.MIN_INT <= value <= serde.MAX_INT:
            yield loc, "int_64_bits"
    elif isinstance(value, float):
        if not math.isfinite(value):
            yield loc, "finite_number"
    elif isinstance(value, Decimal):
        if not value.is_finite():
            yield loc, "finite_number"
    elif isinstance(value, BaseModel):
        for k in sorted(value.model_fields_set):
            yield from _unfit(getattr(value, k, None), (*loc, k))
        for k, v in (value.model_extra or {}).items():
            yield from _unfit(v, (*loc, k))
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        for f in dataclasses.fields(value):
            yield from _unfit(getattr(value, f.name, None), (*loc, f.name))
    elif isinstance(value, Mapping):
        for k, v in value.items():
            yield from _unfit(v, (*loc, str(k)))
    elif isinstance(value, list | tuple | set | frozenset):
        for i, v in enumerate(value):
            yield from _unfit(v, (*loc, i))


def unfit_problems(value: Any) -> list[dict[str, Any]]:
    """``_unfit`` as the ``errors`` of a ToolArgumentsError (empty when there is none)."""
    msgs = {"finite_number": NON_FINITE, "int_64_bits": HUGE_INT}
    return [{"loc": list(loc), "msg": msgs[kind], "type": kind} for loc, kind in _unfit(value, ())]
