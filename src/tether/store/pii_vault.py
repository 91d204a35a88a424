"""The PII vault's rows (schema v14): per run, each personal value a run's prompts carried,
encrypted, under the typed number its token shows (``<EMAIL_ADDRESS_2>``).

The store never sees a value or a key: ``tether.governance.pii_vault`` seals each value
(AES-GCM) before it is written and opens it after it is read. Rows are found by ``digest``, a
keyed hash (HMAC) of the value, so the same value gets the same token within a run without the
store being able to tell what it is; and each run records a ``key check`` (a keyed hash of a
constant) so a process holding another key is refused before it writes anything.

``assign_pii`` is atomic per run: a value already in the run's vault keeps its number; a new
one takes the next number of its entity type. Two writers of one run (parallel nodes, two
workers) never give two values one token nor one value two tokens.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable


@dataclass(slots=True, frozen=True)
class PiiSecret:
    """One sealed value as the vault hands it to the store."""

    entity_type: str
    """``PERSON``, ``EMAIL_ADDRESS``... (upper case, digits and ``_``)."""
    digest: str
    """Keyed hash of the value (hex): how the same value is found again."""
    sealed: bytes
    """The value, encrypted (nonce and ciphertext)."""


@dataclass(slots=True, frozen=True)
class PiiRow:
    """One stored value of a run's vault."""

    entity_type: str
    number: int
    digest: str
    sealed: bytes


@runtime_checkable
class PiiVaultStore(Protocol):
    """What the PII vault needs of a store (every tether backend has it)."""

    async def pii_key_check(self, run_id: str, check: str) -> str:
        """The key check recorded for ``run_id``; records ``check`` first when there is none."""
        ...

    async def assign_pii(self, run_id: str, secrets: Sequence[PiiSecret]) -> list[int]:
        """Each secret's number in the run (in order): the stored one when its digest is
        already there, else the next free number of its entity type (stored with it)."""
        ...

    async def get_pii(self, run_id: str, refs: Sequence[tuple[str, int]]) -> list[PiiRow]:
        """The stored rows among ``(entity_type, number)`` pairs (unknown ones are left out)."""
        ...

    async def delete_pii(self, run_id: str) -> int:
        """Forget a run's vault (its values and key check); returns the values removed."""
        ...
