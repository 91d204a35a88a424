"""``PiiVault``: personal values swapped for typed tokens, kept encrypted per run in the store.

``redact(run_id, text)`` replaces each value the detector finds with ``<TYPE_N>``: the same value
gets the same token within a run (``<PERSON_1>`` everywhere Ada Lovelace appears), another
value the next number of its type. The values are sealed (``pii_crypto``) before they are
written, so the store, its backups and anyone reading its tables see ciphertext and keyed
hashes only; the key stays with the configuration. ``restore`` (trusted egress: a tool that
needs the real address) and ``reveal`` (a human's approved view, holding the key) put the
values back; tokens the run's vault does not hold are left as they are.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from tether.core.errors import ConfigurationError, PiiKeyError
from tether.governance.pii_crypto import PiiKey
from tether.governance.pii_detect import TOKEN, PiiDetector
from tether.store.pii_vault import PiiSecret, PiiVaultStore

KeyLike = PiiKey | str | bytes | None


class PiiVault:
    """Tokenises and restores personal data for runs, in ``store`` (any tether store)."""

    def __init__(
        self, store: Any, key: KeyLike = None, *, detector: PiiDetector | None = None
    ) -> None:
        if not isinstance(store, PiiVaultStore):
            raise ConfigurationError(
                f"PiiVault needs a tether store with a PII vault (memory, SQLite, PostgreSQL), "
                f"got {type(store).__name__}"
            )
        self.store = store
        self._key_in = key
        self._key: PiiKey | None = None
        self.detector = detector if detector is not None else PiiDetector()
        self._checked: dict[tuple[str, str], bool] = {}

    @property
    def key(self) -> PiiKey:
        """The vault's key (the one passed, else ``TETHER_PII_KEY``), resolved on first use."""
        if self._key is None:
            self._key = PiiKey.resolve(self._key_in)
        return self._key

    async def _check(self, run_id: str, key: PiiKey) -> None:
        """Refuse a key other than the one the run's vault was first sealed with."""
        if (run_id, key.check) in self._checked:
            return
        stored = await self.store.pii_key_check(run_id, key.check)
        if stored != key.check:
            raise PiiKeyError(
                f"the PII vault of run {run_id!r} was sealed with another key: configure the "
                "key it was created with (TETHER_PII_KEY or key=...)",
                reason="wrong_key",
                run_id=run_id,
            )
        if len(self._checked) >= 4096:  # one entry a run: a worker lives through many
            self._checked.clear()
        self._checked[(run_id, key.check)] = True

    # -- in ---------------------------------------------------------------------------------
    async def tokens(self, run_id: str, values: Sequence[tuple[str, str]]) -> list[str]:
        """The token of each ``(entity_type, value)`` in the run's vault (stored if new)."""
        if not values:
            return []
        key = self.key
        await self._check(run_id, key)
        secrets = []
        for entity_type, value in values:
            if not TOKEN.fullmatch(f"<{entity_type}_1>"):
                raise ConfigurationError(
                    f"a PII entity type is upper case letters, digits and '_', got {entity_type!r}"
                )
            digest = key.digest(entity_type, value)
            secrets.append(PiiSecret(entity_type, digest, key.seal(run_id, digest, value)))
        numbers = await self.store.assign_pii(run_id, secrets)
        return [f"<{s.entity_type}_{n}>" for s, n in zip(secrets, numbers, strict=True)]

    async def redact(self, run_id: str, text: str) -> tuple[str, dict[str, int]]:
        """``text`` with its personal data tokenised, and how many values of each type."""
        spans = await self.detector.adetect(text)
        if not spans:
            return text, {}
        tokens = await self.tokens(run_id, [(s.entity_type, text[s.start : s.end]) for s in spans])
        out, at, found = [], 0, dict[str, int]()
        for span, token in zip(spans, tokens, strict=True):
            out += [text[at : span.start], token]
            at = span.end
            found[span.entity_type] = found.get(span.entity_type, 0) + 1
        out.append(text[at:])
        return "".join(out), found

    # -- out --------------------------------------------------------------------------------
    async def restore(self, run_id: str, text: str) -> str:
        """``text`` with the run's tokens replaced by their values (trusted egress only)."""
        return await self._restore(run_id, text, self.key)

    async def reveal(self, run_id: str, text: str, key: KeyLike) -> str:
        """A human's approved view of ``text``: its tokens restored with ``key``, which must be
        the key the run's vault was sealed with (``PiiKeyError`` otherwise)."""
        return await self._restore(run_id, text, PiiKey.resolve(key) if key else _missing())

    async def restore_value(self, run_id: str, value: Any) -> Any:
        """``restore`` through nested dicts (their keys too), lists and tuples (new containers,
        never changed in place); other values come back as they are."""
        if isinstance(value, str):
            return await self.restore(run_id, value) if TOKEN.search(value) else value
        if isinstance(value, dict):
            return {
                await self.restore_value(run_id, k): await self.restore_value(run_id, v)
                for k, v in value.items()
            }
        if isinstance(value, list | tuple):
            items = [await self.restore_value(run_id, v) for v in value]
            return items if isinstance(value, list) else tuple(items)
        return value

    async def _restore(self, run_id: str, text: str, key: PiiKey) -> str:
        refs = [(m.group(1), int(m.group(2))) for m in TOKEN.finditer(text)]
        if not refs:
            return text
        await self._check(run_id, key)
        values: dict[str, str] = {}
        for row in await self.store.get_pii(run_id, refs):
            value = key.open(run_id, row.digest, row.sealed)
            if key.digest(row.entity_type, value) != row.digest:
                raise PiiKeyError(
                    f"a value in the PII vault of run {run_id!r} is not the one its row names: "
                    "the stored row was altered",
                    reason="tampered",
                    run_id=run_id,
                )
            values[f"<{row.entity_type}_{row.number}>"] = value
        return TOKEN.sub(lambda m: values.get(m.group(0), m.group(0)), text)


def _missing() -> PiiKey:
    raise PiiKeyError(
        "reveal(run_id, text, key) needs the vault's key: the approver's view holds it",
        reason="missing",
    )
