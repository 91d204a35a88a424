"""Live events across processes: a streamed model's tokens, from the worker process that runs
the call to the server process whose client follows the run.

Live-only events (``graph.events.LIVE_ONLY``) are never stored: a process hands them to its own
subscribers (``EventBus``). A store whose database can carry them between processes offers a
``LiveChannel`` (PostgreSQL: ``NOTIFY`` on the schema's live channel, ``store.pg_live``): the
executing process ``send``\\s each relayed event (``RELAYED``: the tokens, which exist only
live; node progress stays in its process), and a process that follows runs ``listen``\\s and
gets other processes' events handed to ``deliver``. Best effort by design, like the events
themselves: an event lost in an outage is not sent again (the answer is in the stored
``model_call`` event).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol, runtime_checkable

from tether.store.types import Event

RELAYED = frozenset({"model_token"})
"""The live-only events sent to other processes."""

Deliver = Callable[[Event], None]
"""Called, in the event loop, with each event another process sent."""


class LiveChannel(Protocol):
    """One process's end of a store's live-event channel."""

    def send(self, ev: Event) -> None:
        """Queue ``ev`` for the other processes (batched; never blocks, never raises)."""
        ...

    @property
    def pending(self) -> bool:
        """Whether events wait to be sent."""
        ...

    async def flush(self) -> None:
        """Send what waits now (a step commit that follows them waits for this, so a follower
        hears a step's tokens before it reads the step)."""
        ...

    async def sync(self, timeout: float = 1.0) -> None:
        """Return once every event other processes sent before this call was delivered (at
        most ``timeout`` seconds; at once when not listening)."""
        ...

    def listen(self) -> None:
        """Start hearing the other processes' events (idempotent)."""
        ...

    async def listening(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds until the channel hears; whether it does."""
        ...

    async def close(self) -> None: ...


@runtime_checkable
class LiveSource(Protocol):
    """A store that can carry live events between processes."""

    def live_channel(self, deliver: Deliver) -> LiveChannel:
        """This process's end of the channel, handing what it hears to ``deliver``."""
        ...
