"""Reading the past: rebuild state at any step from snapshot + deltas; the snapshot policy."""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from tether.core.errors import ConfigurationError
from tether.core.finite import check_number
from tether.graph.state import StateSchema
from tether.store.types import Checkpoint


def replay(schema: StateSchema, chain: Sequence[Checkpoint]) -> dict[str, Any]:
    """State after the last checkpoint of ``chain`` (which starts with a snapshot)."""
    if not chain or chain[0].snapshot is None:
        raise ValueError("a checkpoint chain must start with a snapshot")
    state = copy.deepcopy(chain[0].snapshot)
    for cp in chain[1:]:
        if cp.snapshot is not None:
            state = copy.deepcopy(cp.snapshot)
            continue
        schema.apply(state, [(w[0], w[2]) for w in cp.delta])
    return state


@dataclass(slots=True)
class SnapshotPolicy:
    """Snapshot when the delta chain since the last snapshot outweighs the state.

    The state's size is not measured every step (that would make step cost grow with state);
    the last snapshot's size stands in for it: snapshot when the chain reaches ``ratio`` times
    that size (at least ``min_bytes``), or after ``every`` steps. Reading a step replays at most
    that chain; storage stays within a small factor of the deltas themselves.
    """

    every: int = 500
    ratio: float = 4.0
    min_bytes: int = 16 * 1024

    def __post_init__(self) -> None:
        # checked here, not mid-run: a text or NaN setting would fail (or never fire) in a step
        for name, least in (("every", 1), ("min_bytes", 0)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < least:
                raise ConfigurationError(
                    f"SnapshotPolicy.{name} must be an int >= {least}, got {value!r}"
                )
        check_number("SnapshotPolicy.ratio", self.ratio, above=True)


@dataclass(slots=True)
class SnapshotTracker:
    policy: SnapshotPolicy = field(default_factory=SnapshotPolicy)
    chain_bytes: int = 0
    steps: int = 0
    last_size: int = 0

    def add(self, delta_bytes: int) -> bool:
        """Account one step's delta; True when this step should carry a snapshot."""
        self.chain_bytes += delta_bytes
        self.steps += 1
        p = self.policy
        return self.steps >= p.every or self.chain_bytes >= max(
            p.min_bytes, p.ratio * self.last_size
        )

    def took(self, size: int) -> None:
        self.chain_bytes = 0
        self.steps = 0
        self.last_size = size
