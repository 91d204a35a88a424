"""Which uid/gid an execution runs as.

As root, each execution gets its own otherwise unused uid (and the same gid) from
``UID_BASE``: ``RLIMIT_NPROC`` then counts only that execution's tasks, files it leaves are
owned by nobody else, and no two concurrent executions can read each other's scratch. The uid
is ``UID_BASE + (pid << 7) + slot``, unique among the processes of this host (pids are unique)
and among the ``SLOTS`` concurrent executions of one process. Where the user namespace we run
in cannot map that range (a container with a narrow uid_map), 65534 ("nobody") is used, shared
by every execution. Not root: the caller's own uid (no privilege to drop).
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass

from tether.core.errors import ConfigurationError

__all__ = ["NOBODY", "SLOTS", "UID_BASE", "Identity", "acquire"]

UID_BASE = 0x6000_0000
SLOTS = 128
NOBODY = 65534
_PID_BITS = 22  # Linux pid_max is at most 2**22

_lock = threading.Lock()
_in_use: set[int] = set()


@dataclass(frozen=True, slots=True)
class Identity:
    uid: int
    gid: int
    unique: bool
    """True when no other process of the host runs as this uid (a per-execution uid)."""
    slot: int = -1

    def release(self) -> None:
        if self.slot >= 0:
            with _lock:
                _in_use.discard(self.slot)


def _mapped(ident: int, map_file: str) -> bool:
    try:
        with open(map_file, encoding="ascii") as fh:
            for line in fh:
                inside, _, count = (int(x) for x in line.split())
                if inside <= ident < inside + count:
                    return True
    except (OSError, ValueError):
        return False
    return False


def _mappable(ident: int) -> bool:
    return _mapped(ident, "/proc/self/uid_map") and _mapped(ident, "/proc/self/gid_map")


def acquire(uid: int | None = None, gid: int | None = None) -> Identity:
    """The identity for one execution; call :meth:`Identity.release` when it is over."""
    root = os.geteuid() == 0
    if uid is not None or gid is not None:
        for name, value in (("uid", uid), ("gid", gid)):
            if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
                raise ConfigurationError(f"sandbox {name} must be an int, got {value!r}")
        u = uid if uid is not None else (gid if gid is not None else NOBODY)
        g = gid if gid is not None else u
        if not root and (u, g) != (os.getuid(), os.getgid()):
            raise ConfigurationError(
                f"running the sandbox as uid={u} gid={g} needs root; run tether as root or "
                "leave uid/gid unset to use the current user"
            )
        if root and u == 0:
            raise ConfigurationError(
                "the sandbox must not run as uid 0; pick an unprivileged uid (e.g. 65534) or "
                "leave it unset for a per-execution uid"
            )
        return Identity(u, g, unique=False)
    if not root:
        return Identity(os.getuid(), os.getgid(), unique=False)
    pid_part = (os.getpid() & ((1 << _PID_BITS) - 1)) << 7
    if _mappable(UID_BASE) and _mappable(UID_BASE + (1 << (_PID_BITS + 7)) - 1):
        with _lock:
            free = next((s for s in range(SLOTS) if s not in _in_use), None)
            if free is not None:
                _in_use.add(free)
                ident = UID_BASE + pid_part + free
                return Identity(ident, ident, unique=True, slot=free)
    if _mappable(NOBODY):
        return Identity(NOBODY, NOBODY, unique=False)
    raise ConfigurationError(
        "no unprivileged uid is mappable in this user namespace (neither the per-execution "
        f"range at {UID_BASE:#x} nor {NOBODY}); pass uid=/gid= explicitly"
    )
