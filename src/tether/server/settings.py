"""``ServerSettings``: what ``create_app`` serves and how (store, workflows, limits, workers)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from tether.graph.builder import Workflow
from tether.store.protocol import RunStore

DEFAULT_STORE = "sqlite:///.tether/tether.db"


@dataclass(slots=True)
class ServerSettings:
    store: str | RunStore = DEFAULT_STORE
    """A store URL (``sqlite:///runs.db``, ``postgresql://...``) or an opened-or-not store."""
    workflows: Sequence[Workflow] = ()
    """The workflows runs may be submitted for (``--app module:workflows``)."""
    embedded_workers: int = 0
    """Runs executed at once by a worker inside the server process (0: none; runs wait for
    ``tether worker`` processes)."""
    max_body_bytes: int = 1 << 20
    """Largest request body accepted (413 above)."""
    request_timeout: float = 30.0
    """Seconds a request may take before it is answered 504 (event streams excepted)."""
    sse_heartbeat: float = 15.0
    """Seconds between two ``: ping`` comments on an idle event stream."""
    sse_poll: float = 0.005
    """Seconds between two looks at the store for a streamed run's new events while they flow
    (a read of the run's head each; 0.1 s once the run was quiet for 2 s). An event committed
    by a worker in another process reaches the stream half this interval later on average:
    5 ms keeps the 95th percentile under 10 ms; raise it for many streams open at once."""
    runs_poll: float = 0.5
    """Seconds between two looks at the store for the run-change stream."""
    require_keys: bool = False
    """Never serve in local mode: with no live key in the store every request is refused
    (401). ``tether serve`` sets it when it binds a non-loopback address, so revoking the
    last key never opens a public server."""
    key_cache_ttl: float = 30.0
    """Seconds a verified API key is remembered (a revoked key works at most this long)."""
    key_recheck: float = 30.0
    """Seconds between two looks at the key of an open event stream: a revoked key's streams
    end within this (plus at most a heartbeat) with an ``event: revoked`` frame."""
    lease_ttl: float = 15.0
    """Lease TTL of the embedded worker's runs."""
    drain_grace: float = 10.0
    """Seconds the embedded worker drains on shutdown."""
