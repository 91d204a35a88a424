"""``PiiGuard``: the governance part that keeps personal data away from models.

Before each governed model call it tokenises the request's messages in place (their text and
the arguments of earlier tool calls), so the model only ever sees ``<PERSON_1>``,
``<EMAIL_ADDRESS_2>``...; what the model answers stays tokenised in the run's state. Before a
call of a tool marked as trusted egress (``PiiGuard(egress=["send_email"])``, or the tool's
``metadata={"pii_egress": True}``) it puts the real values back into the call's arguments,
right before the tool runs: the tool receives them, the effect journal keeps the tokenised
arguments (the executor records a copy taken before governance). Nested arguments are
tokenised and restored throughout, the keys of their mappings too (``{"ada@example.com": 1}``).

A run tree (child runs, forks) shares the vault of its root run, so tokens handed from a parent
to a child restore in the child; a run whose parent was deleted is a root. Counts per entity
type (never values) go to the audit trail and the run's events (``pii_redacted``,
``pii_restored``).
"""

from __future__ import annotations

from collections.abc import Iterable, MutableMapping
from typing import Any

from tether.core.errors import ConfigurationError, RunNotFoundError
from tether.core.governor import GovernedCall
from tether.core.messages import Message
from tether.governance.pii_detect import PiiDetector
from tether.governance.pii_vault import KeyLike, PiiVault
from tether.governance.scope import GovernancePart, RunScope

MAX_CACHED = 4096
"""Runs whose vault id a guard remembers (then it forgets them all and reads again)."""
EGRESS_FLAG = "pii_egress"
"""The tool metadata flag that marks a tool as trusted egress."""


class PiiGuard(GovernancePart):
    """Redacts personal data from model requests; restores it for trusted egress tools."""

    def __init__(
        self,
        *,
        key: KeyLike = None,
        detector: PiiDetector | None = None,
        ner: bool = True,
        egress: Iterable[str] = (),
    ) -> None:
        if isinstance(egress, str):
            raise ConfigurationError(f"PiiGuard(egress=...) takes tool names, got {egress!r}")
        self.detector = detector if detector is not None else PiiDetector(ner=ner)
        self.egress = frozenset(egress)
        self._key_in = key
        self._vaults: dict[int, PiiVault] = {}
        self._roots: dict[str, str] = {}

    def vault(self, store: Any) -> PiiVault:
        """The vault over ``store`` this guard uses (one per store)."""
        got = self._vaults.get(id(store))
        if got is None or got.store is not store:
            got = self._vaults[id(store)] = PiiVault(store, self._key_in, detector=self.detector)
        return got

    async def vault_id(self, scope: RunScope) -> str:
        """The run tree's root run: whose vault this run's tokens live in."""
        run = scope.run
        root = self._roots.get(run.run_id)
        if root is None:
            root, parent = run.run_id, run.parent_run_id
            while parent is not None:
                try:
                    up = await scope.store.get_run(parent)
                except RunNotFoundError:
                    break  # deleted by hand: the run below it is the root, as a purge reads it
                root, parent = up.run_id, up.parent_run_id
            if len(self._roots) >= MAX_CACHED:  # a worker lives through many runs
                self._roots.clear()
            self._roots[run.run_id] = root
        return root

    def trusted(self, call: GovernedCall) -> bool:
        meta = getattr(call.contract, "metadata", None) or {}
        return call.name in self.egress or bool(meta.get(EGRESS_FLAG))

    async def before_call(self, scope: RunScope, call: GovernedCall) -> None:
        if call.kind == "model" and call.request is not None:
            await self._redact(scope, call)
        elif call.kind == "tool" and self.trusted(call):
            await self._restore(scope, call)

    async def _redact(self, scope: RunScope, call: GovernedCall) -> None:
        vault, vid = self.vault(scope.store), await self.vault_id(scope)
        found: dict[str, int] = {}

        async def text(value: str) -> str:
            out, seen = await vault.redact(vid, value)
            for k, n in seen.items():
                found[k] = found.get(k, 0) + n
            return out

        async def nested(value: Any) -> Any:
            if isinstance(value, str):
                return await text(value)
            if isinstance(value, dict):  # keys too: {"ada@example.com": "vip"}
                return {await nested(k): await nested(v) for k, v in value.items()}
            if isinstance(value, list | tuple):
                items = [await nested(v) for v in value]
                return items if isinstance(value, list) else tuple(items)
            return value

        messages: list[Message] = []
        for m in call.request.messages:
            update: dict[str, Any] = {}
            if m.content:
                update["content"] = await text(m.content)
            if m.name:  # a participant's name goes to the provider too (and into local prompts)
                name = await text(m.name)
                if name != m.name:  # providers refuse '<' and '>' in names: the bare token
                    update["name"] = name.replace("<", "").replace(">", "")
            if m.tool_calls:
                calls = []
                for tc in m.tool_calls:
                    raw = None if tc.raw_arguments is None else await text(tc.raw_arguments)
                    args = await nested(tc.arguments)
                    calls.append(tc.model_copy(update={"arguments": args, "raw_arguments": raw}))
                update["tool_calls"] = tuple(calls)
            messages.append(m.model_copy(update=update) if update else m)
        if found:
            # ModelRequest is frozen for its users; governance rewrites this one before it is sent
            object.__setattr__(call.request, "messages", tuple(messages))
            await self._report(scope, call, "pii_redacted", found)

    async def _restore(self, scope: RunScope, call: GovernedCall) -> None:
        args = call.args
        if not isinstance(args, MutableMapping):
            raise ConfigurationError(
                f"PiiGuard cannot restore the arguments of {call.name!r}: they are not a dict"
            )
        vault, vid = self.vault(scope.store), await self.vault_id(scope)
        changed = 0
        for name, value in list(args.items()):
            real = await vault.restore_value(vid, value)
            if real != value:
                args[name] = real  # a new value: the journal's copy keeps the tokens
                changed += 1
        if changed:
            await self._report(scope, call, "pii_restored", {"arguments": changed})

    async def _report(
        self, scope: RunScope, call: GovernedCall, kind: str, counts: dict[str, int]
    ) -> None:
        data = {"call": call.name, "key": call.key, "counts": counts}
        await scope.audit(kind, data)
        scope.emit(kind, data)
