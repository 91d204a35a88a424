"""Deferred settles: a live model call's settle, held in this process and written with the next
write to the same ledger (a reservation, a charge, another settle), or when a run's execution
here ends; one ledger write per model call instead of two. A run tree's envelope (``Budget``)
and a tenant's quota window (``Quota``) defer theirs alike.

Why it is safe: a settle only moves a call's reservation into ``used`` with what the call
actually used. ``Budget`` defers it only when the call used no more than it held in every
dimension, so until it is written the ledger shows at least what was spent or held (it holds
the projection a little longer: conservative, never an understatement). A folded write checks
its limits on the row as the settle leaves it, so no call in this process is refused for budget
a deferred settle still holds. What is pending is keyed by store object and ledger key, so
every run of this process drawing on one envelope (a parent, its children, parallel tasks)
folds and flushes the same settles.

A crash (SIGKILL) with a settle pending leaves the ledger as a crash between reserve and settle
always did: the call's projection stays held and its use is not counted (the ledger overstates
what is spent; nothing in it understates).
"""

from __future__ import annotations

import weakref
from collections.abc import Mapping
from typing import cast

from tether.core.capabilities import has_capability
from tether.store.budget import BudgetStore, Fold, Ledger, LedgerCalm, LedgerFit, LedgerTake

_PENDING: weakref.WeakKeyDictionary[BudgetStore, dict[str, Fold]] = weakref.WeakKeyDictionary()


def _add(a: Mapping[str, float], b: Mapping[str, float]) -> dict[str, float]:
    out = dict(a)
    for d, v in b.items():
        out[d] = out.get(d, 0.0) + v
    return out


def merge(a: Fold | None, b: Fold | None) -> Fold | None:
    """Two settles as one (their parts add up)."""
    if a is None:
        return b
    if b is None:
        return a
    return _add(a[0], b[0]), _add(a[1], b[1])


def defer(
    store: BudgetStore, key: str, release: Mapping[str, float], used: Mapping[str, float]
) -> bool:
    """Keep a settle for the next write to ``key``; False when ``store`` cannot be tracked
    (write it now)."""
    try:
        by_key = _PENDING.setdefault(store, {})
    except TypeError:  # a store that takes no weak reference
        return False
    by_key[key] = merge(by_key.get(key), (dict(release), dict(used))) or ({}, {})
    return True


def take(store: BudgetStore, key: str) -> Fold | None:
    """The settles pending on ``key``, removed: the caller writes them (or ``put_back``)."""
    try:
        by_key = _PENDING.get(store)
    except TypeError:
        return None
    return by_key.pop(key, None) if by_key else None


def put_back(store: BudgetStore, key: str, fold: Fold | None) -> None:
    """A write carrying ``fold`` failed: keep it pending."""
    if fold is not None:
        defer(store, key, *fold)


def has_pending(store: BudgetStore) -> bool:
    try:
        return bool(_PENDING.get(store))
    except TypeError:
        return False


async def settle(
    store: BudgetStore, key: str, release: Mapping[str, float], used: Mapping[str, float]
) -> Ledger | None:
    """Write a settle now, with whatever is pending on ``key`` folded in."""
    fold = take(store, key)
    both = merge(fold, (release, used))
    assert both is not None
    try:
        return await store.settle_ledger(key, *both)
    except BaseException:
        put_back(store, key, fold)
        raise


async def flush(store: BudgetStore, key: str) -> None:
    """Write what is pending on ``key`` (the end of a run's execution here)."""
    fold = take(store, key)
    if fold is None:
        return
    try:
        await store.settle_ledger(key, *fold)
    except BaseException:
        put_back(store, key, fold)
        raise


async def flush_prefix(store: BudgetStore, prefix: str) -> None:
    """Write what is pending on every key under ``prefix`` (a tenant's quota windows: the
    window a settle waits on may have rolled over since)."""
    try:
        by_key = _PENDING.get(store)
    except TypeError:
        return
    for key in [k for k in by_key or () if k.startswith(prefix)]:
        await flush(store, key)


async def take_with(
    store: BudgetStore, key: str, amounts: Mapping[str, float], exact: bool
) -> Ledger | None:
    """Reserve (or charge, ``exact``) ``amounts`` with the pending settles folded in. When it
    does not fit, the settles are written alone and None is returned (a trip follows)."""
    fold = take(store, key)
    write = store.charge_ledger if exact else store.reserve_ledger
    try:
        row = await write(key, amounts, fold) if fold is not None else await write(key, amounts)
        if row is None and fold is not None:
            await store.settle_ledger(key, *fold)
    except BaseException:
        put_back(store, key, fold)
        raise
    return row


async def take_lean(
    store: BudgetStore,
    key: str,
    amounts: Mapping[str, float],
    exact: bool,
    limited: tuple[str, ...],
) -> Ledger | None:
    """``take_with`` reading back only what a budget checks after it (``LedgerTake``: the
    limits, the limited counters, the marks), when the store can; ``limited``: the dimensions
    expected limited."""
    if not has_capability(store, LedgerTake):
        return await take_with(store, key, amounts, exact)
    taker = cast(LedgerTake, store)
    fold = take(store, key)
    try:
        row = await taker.take_ledger(key, amounts, fold, exact=exact, limited=limited)
        if row is None and fold is not None:
            await store.settle_ledger(key, *fold)
    except BaseException:
        put_back(store, key, fold)
        raise
    return row


async def fit_with(store: BudgetStore, key: str, amounts: Mapping[str, float], exact: bool) -> bool:
    """``take_with`` for a caller that needs only whether it fit: the store does not read the
    ledger back when it can (``LedgerFit``)."""
    if not has_capability(store, LedgerFit):
        return await take_with(store, key, amounts, exact) is not None
    fitter = cast(LedgerFit, store)
    fold = take(store, key)
    try:
        fits = await fitter.fit_ledger(key, amounts, fold, exact=exact)
        if not fits and fold is not None:
            await store.settle_ledger(key, *fold)
    except BaseException:
        put_back(store, key, fold)
        raise
    return fits


async def charge_calm(
    store: BudgetStore,
    key: str,
    amounts: Mapping[str, float],
    limited: tuple[str, ...],
    soft: float,
) -> bool:
    """``LedgerCalm.charge_calm`` when the store can and no settle is pending on ``key`` (it
    rides on the usual write); False: nothing was written, take the usual way."""
    if not has_capability(store, LedgerCalm):
        return False
    try:
        by_key = _PENDING.get(store)
    except TypeError:
        return False
    if by_key and key in by_key:
        return False
    return await cast(LedgerCalm, store).charge_calm(key, amounts, limited=limited, soft=soft)
