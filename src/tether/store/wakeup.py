"""Wake-ups: tell the runtimes serving a database that a run became claimable, at once.

A run becomes claimable when it is submitted unowned, released mid-flight, parked until a time
(``Commit(available_at=..., release_lease=True)``) or resumed for any worker. Every store
announces those moments as ``(queue, available_at)``:

* in this process, through the ``Wakeup`` hub of its database (stores opened on the same SQLite
  file, PostgreSQL schema or memory instance share one), so a runtime in the same process hears
  of a submit without polling;
* across processes on PostgreSQL, with ``pg_notify`` sent in the writing transaction and heard
  on a ``LISTEN`` connection (``store.pg_listen``).

A runtime subscribes (``subscribe``) and claims at once when it hears of a run it serves; its
poll (``Runtime(poll_interval=)``) remains as the fallback for what is never announced (a lease
that expires, a notification lost while the listener reconnected).
"""

from __future__ import annotations

import hashlib
import re
import threading
from collections.abc import Callable
from typing import Protocol, runtime_checkable

from tether.core.lifecycle import ACTIVE
from tether.store.types import Commit, RunRecord

Listener = Callable[[str, float], None]
"""Called with ``(queue, available_at)`` of a run that became claimable (or will at that time),
from whichever thread announced it: keep it short and thread-safe."""

_PLAIN = re.compile(r"[a-z0-9_]{1,40}")


def channel_for(schema: str) -> str:
    """The PostgreSQL NOTIFY channel of a schema's runs (a plain identifier, at most 63 bytes)."""
    if _PLAIN.fullmatch(schema):
        return f"tether_wake_{schema}"
    return "tether_wake_" + hashlib.sha256(schema.encode()).hexdigest()[:24]


def payload(queue: str, available_at: float) -> str:
    return f"{queue}\n{available_at!r}"


def parse_payload(text: str) -> tuple[str, float]:
    """``(queue, available_at)`` of a notification; an unreadable one wakes for every queue."""
    queue, _, at = text.rpartition("\n")
    try:
        return queue, float(at)
    except ValueError:
        return "", 0.0


def announces(token: int | None, commit: Commit, run: RunRecord) -> bool:
    """Whether a commit that gave ``run`` leaves it claimable: ACTIVE and released (or an
    administrative write, which drops the owner)."""
    return (token is None or commit.release_lease) and run.status in ACTIVE


class Wakeup:
    """The wake-up hub of one database in this process."""

    def __init__(self) -> None:
        self._listeners: dict[int, Listener] = {}
        self._next = 0
        self._lock = threading.Lock()

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        """Call ``listener`` on every announcement; returns the unsubscribe function."""
        with self._lock:
            key, self._next = self._next, self._next + 1
            self._listeners[key] = listener

        def unsubscribe() -> None:
            with self._lock:
                self._listeners.pop(key, None)

        return unsubscribe

    def notify(self, queue: str, available_at: float = 0.0) -> None:
        with self._lock:
            listeners = list(self._listeners.values())
        for listener in listeners:
            listener(queue, available_at)

    def __len__(self) -> int:
        return len(self._listeners)


_HUBS: dict[str, Wakeup] = {}
_HUBS_LOCK = threading.Lock()


def hub(key: str) -> Wakeup:
    """The process-wide hub of the database named ``key`` (a resolved path, a DSN + schema)."""
    with _HUBS_LOCK:
        found = _HUBS.get(key)
        if found is None:
            found = _HUBS[key] = Wakeup()
        return found


@runtime_checkable
class WakeSource(Protocol):
    """A store that announces claimable runs (every built-in store does)."""

    def subscribe_wakeups(self, listener: Listener) -> Callable[[], None]:
        """Subscribe ``listener`` (see ``Listener``); returns the unsubscribe function."""
        ...
