"""Identifiers: time-sortable run ids and deterministic task ids."""

from __future__ import annotations

import os
import time


def new_run_id() -> str:
    """A 26-char, lexicographically time-sortable id (millisecond prefix + 80 random bits)."""
    ms = int(time.time() * 1000)
    return f"{ms:012x}{os.urandom(7).hex()}"


def new_owner_id() -> str:
    return f"{os.uname().nodename}:{os.getpid()}:{os.urandom(3).hex()}"


def task_id(step: int, node: str, index: int) -> str:
    """Deterministic id of the ``index``-th task of ``node`` planned for ``step``."""
    return f"{step}:{node}:{index}"


def effect_key(task: str, call_index: int, kind: str) -> str:
    """Deterministic key of a journaled call: task (run step node index) + call index."""
    return f"{task}:{kind}:{call_index}"
