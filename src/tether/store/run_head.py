"""A step commit reads back only the run's small columns, never its input or result.

A run loop commits once per step. Reading the whole run row back each time (and decoding its
``input``, ``result`` and ``metadata``) makes every step cost as much as the run's input: a
1 MB input made each step several times slower. The writer passes its own copy of the run as
``Commit.base``; the store reads (or returns) just ``HEAD_COLUMNS`` and rebuilds the record from
``base`` with ``merge``. ``usable`` says when ``base`` can stand in for the stored large values.
"""

from __future__ import annotations

from dataclasses import fields
from operator import attrgetter
from typing import Any

from tether.core.serde import loads
from tether.store.rows import STATUS, Row, enc, enc_record
from tether.store.types import Commit, RunRecord

HEAD_COLUMNS = (
    "status", "step", "owner", "lease_token", "lease_expires_at", "updated_at", "event_seq",
    "available_at",
)  # fmt: skip
"""The run's small columns that commits and leases change, in the order ``merge`` reads."""

_all_fields = attrgetter(*(f.name for f in fields(RunRecord)))
"""Every field of a run, in ``RunRecord``'s positional order (all are ``__init__`` ones)."""


def usable(commit: Commit, token: int | None) -> RunRecord | None:
    """``commit.base`` when it may stand in for the run's large columns: a fenced commit whose
    base was read under the same token. Only the lease holder writes under its token (an
    admin write bumps it), so the stored input, result, error, escalation and metadata are the
    ones the holder saw last, which the store double-checks against ``event_seq``."""
    base = commit.base
    if base is None or token is None or base.lease_token != token:
        return None
    return base


def head_sql(prefix: str) -> str:
    """Select the run's head by ``run_id`` (``?`` placeholder)."""
    return f"SELECT {', '.join(HEAD_COLUMNS)} FROM {prefix}runs WHERE run_id = ?"


def merge(base: RunRecord, head: Row) -> RunRecord:
    """A new record: ``base``'s large values with the small columns of ``head`` (in
    ``HEAD_COLUMNS`` order). The large values are shared, not copied.

    Once per step: the record is built positionally (``dataclasses.replace`` looks the fields
    up and calls ``__init__`` by keyword, several times slower)."""
    run = RunRecord(*_all_fields(base))
    (
        run.status, run.step, run.owner, run.lease_token, run.lease_expires_at, run.updated_at,
        run.event_seq, run.available_at,
    ) = (STATUS[head[0]], *head[1:8])  # fmt: skip
    return run


def apply_fields(run: RunRecord, commit: Commit, merged_metadata: dict[str, Any] | None) -> None:
    """Set on ``run`` the large fields ``commit`` writes, as stored (a serde round trip:
    what reading the run back would give; it costs what the commit writes)."""
    if commit.set_result:
        run.result = loads(enc(commit.result))
    if commit.set_error:
        run.error = loads(enc_record(commit.error))
    if commit.set_escalation:
        run.escalation = loads(enc_record(commit.escalation))
    if merged_metadata is not None:
        run.metadata = merged_metadata
