"""Identifiers: time-sortable run ids, deterministic task ids and effect keys."""

from __future__ import annotations

import hashlib
import os
import re
import time

from tether.core.liveness import current_incarnation, worker_id


def new_run_id() -> str:
    """A 26-char, lexicographically time-sortable id (millisecond prefix + 80 random bits)."""
    ms = int(time.time() * 1000)
    return f"{ms:012x}{os.urandom(7).hex()}"


def new_owner_id(worker: str | None = None) -> str:
    """A lease owner string for one runtime: its worker id (``worker``, else
    ``$TETHER_WORKER_ID``, else the host name) and this process's incarnation (host, boot id,
    pid namespace, pid, start time, random nonce), so that another process on this host can
    tell when the owner died (see :mod:`tether.core.liveness`)."""
    return current_incarnation(worker_id(worker)).encode()


def task_id(step: int, node: str, index: int) -> str:
    """Deterministic id of the ``index``-th task of ``node`` planned for ``step``."""
    return f"{step}:{node}:{index}"


ID_CHARS = "A-Za-z0-9_.:@-"
"""What a run id tether makes is written with: one URL path segment, no escaping
(``/v1/runs/{id}``, a shell argument, a file name)."""
MAX_ID = 200
_UNSAFE = re.compile(f"[^{ID_CHARS}]")
_RUN_ID = re.compile(f"[{ID_CHARS}]{{1,{MAX_ID}}}")


def is_run_id(value: object) -> bool:
    """Whether ``value`` is written as the run ids tether makes (``ID_CHARS``, at most
    ``MAX_ID`` characters, not only dots): one path segment, ``/v1/runs/{id}`` reaches it as
    it is (URLs fold a ``.`` or ``..`` segment away, even written ``%2e``)."""
    return (
        isinstance(value, str) and _RUN_ID.fullmatch(value) is not None and bool(value.strip("."))
    )


def child_run_id(parent: str, *parts: object) -> str:
    """The id of ``parent``'s child run for ``parts`` (the task that starts it, a branch
    number): the same for the same parts, so a task run again finds its child. Characters
    outside ``ID_CHARS`` (a node named "review draft") become ``_`` plus a digest of the
    original, and an id that would pass ``MAX_ID`` characters is shortened to a digest, so
    every child is reachable at ``/v1/runs/{id}`` like any run."""
    tail = ".".join(str(p) for p in parts)
    safe = _UNSAFE.sub("_", tail)
    if safe != tail:
        safe += "-" + _digest(tail)[:8]
    child = f"{parent}.{safe}"
    if len(child) <= MAX_ID:
        return child
    return f"{parent[: MAX_ID - 34]}.{_digest(child)}"


def legacy_child_run_id(parent: str, *parts: object) -> str:
    """The id tether before URL-safe child ids gave the same child (``{parent}/{task}/...``):
    a run started then finds its children under it after an upgrade."""
    return "/".join([parent, *(str(p) for p in parts)])


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:32]


def effect_key(run_id: str, task: str, call_index: int, kind: str) -> str:
    """Key of a journaled call: ``{run}:{step}:{node}:{index}:{kind}:{call index}``.

    It is the call's journal key and, by default, the idempotency key handed to the tool, the
    MCP server (``_meta``) or the model journal, so it must be

    * unique across runs: two runs of one workflow (or a fork of a run, or a subgraph's child
      run, whose id is ``{parent run}.{task}``) never share a key, so a service that dedupes
      on it never drops another run's call;
    * stable within a run: a resumed, crash-recovered or retried run re-runs its task with the
      same run id, step, task and call order, so it makes the same keys and finds its journal.
    """
    return f"{run_id}:{task}:{kind}:{call_index}"


KEY_FORMAT_KEY = "effect_keys"
"""Run metadata entry naming the effect-key format a run was created with (value
:data:`KEY_FORMAT` now); a run with an older one (or none) can hold journal entries under
:func:`legacy_effect_key` keys."""
KEY_FORMAT = "tool-scoped"
"""Default keys hold the run id (``"run-scoped"``, and no marker before that) and a tool's
rule-derived key is journaled as ``tool:{name}:{key}`` (``"tool-scoped"``, before which it was
the bare key: two tools deriving one key shared an entry)."""
RUN_SCOPED = "run-scoped"


def legacy_effect_key(run_id: str, key: str, key_format: str | None = None) -> str | None:
    """The key that the tether which wrote a run of ``key_format`` gave the call now keyed
    ``key``, or None when it gave the same key. Before ``"tool-scoped"`` a tool's rule key
    ``tool:{name}:{key}`` was the bare ``key``; before ``"run-scoped"`` (no format) a default
    key had no run id in front.

    Journal entries are stored per run, so a run started before a change keeps its entries
    under these keys; a journal looks there when the new key is not found, so such a run
    resumed after an upgrade replays its recorded calls instead of making them again.
    """
    if key_format == KEY_FORMAT:
        return None
    if key.startswith("tool:"):  # a rule-derived key, named by its tool since tool-scoped
        parts = key.split(":", 2)
        return parts[2] if len(parts) == 3 and parts[1] and parts[2] else None
    prefix = f"{run_id}:"
    if key_format is None and key.startswith(prefix) and len(key) > len(prefix):
        return key[len(prefix) :]
    return None


def one_off_key() -> str:
    """An idempotency key for a tool call made outside any run: random, shared by that call's
    retries (so a service that dedupes on it applies the call once) and by nothing else."""
    return f"call-{os.urandom(12).hex()}"
