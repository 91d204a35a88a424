"""Span ids chosen by tether where the run needs them fixed in advance.

A run's ``invoke_workflow`` span is exported once, when the run ends, by whichever process
ends it, but its steps (possibly run by other workers, hours earlier) name it as their parent
from the start. So its ids are decided when the run is created (``tether.observability.
trace_ids``) and handed to the SDK through this id generator when the span is finally made:
inside :func:`pinned`, the next trace id and span id are the given ones; elsewhere the wrapped
generator decides (random ids, or the application's own generator).

Duck-typed on the SDK's ``IdGenerator`` (three methods), so this module imports no SDK.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

_PIN: ContextVar[tuple[int, int] | None] = ContextVar("tether_pinned_span_ids", default=None)


class PinnableIds:
    """An SDK ``IdGenerator`` that returns the pinned ids when asked inside :func:`pinned`."""

    def __init__(self, base: Any) -> None:
        self.base = base

    def generate_span_id(self) -> int:
        pin = _PIN.get()
        return pin[1] if pin is not None else int(self.base.generate_span_id())

    def generate_trace_id(self) -> int:
        pin = _PIN.get()
        return pin[0] if pin is not None else int(self.base.generate_trace_id())

    def is_trace_id_random(self) -> bool:
        if _PIN.get() is not None:
            return False
        check = getattr(self.base, "is_trace_id_random", None)
        return bool(check()) if check is not None else False


@contextmanager
def pinned(trace_id: int, span_id: int) -> Iterator[None]:
    """The span started inside gets these ids (the trace id only when it has no parent)."""
    token = _PIN.set((trace_id, span_id))
    try:
        yield
    finally:
        _PIN.reset(token)


def pin_tracer(tracer: Any) -> bool:
    """Make an SDK tracer's id generator pinnable (once); False for a tracer that has none
    (not the SDK's): its spans get ids of their own."""
    ids = getattr(tracer, "id_generator", None)
    if ids is None:
        return False
    if not isinstance(ids, PinnableIds):
        tracer.id_generator = PinnableIds(ids)
    return True
