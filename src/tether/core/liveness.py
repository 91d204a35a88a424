"""Lease owners as process incarnations, and whether a recorded incarnation is provably dead.

A runtime holds leases under an owner string that names its *worker id* (a stable identity:
``Runtime(owner=...)``, else ``TETHER_WORKER_ID``, else the host name) and the incarnation of
the process running it::

    {worker}|{host}|{boot id}|{pid namespace}|{pid}|{start time}|{nonce}

The boot id (``/proc/sys/kernel/random/boot_id``) and pid namespace name the kernel and the pid
space the pid lives in; the start time (clock ticks since boot, field 22 of ``/proc/PID/stat``)
tells a reused pid from the recorded process; the random nonce makes each ``Runtime`` unique even
inside one process. Two live processes given one worker id hold different owner strings, so
neither ever takes the other's leases for its own.

An incarnation is *provably dead* only when it ran under this kernel boot and in this pid
namespace, and its pid is gone, a zombie, or now names a process that started at another time.
Anything else (another host, another boot, another container's pid namespace, an owner string
written by an older tether, a platform without ``/proc``) is never judged dead here: its lease is
left to expire.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

from tether.core.errors import ConfigurationError

SEP = "|"
WORKER_ENV = "TETHER_WORKER_ID"
MAX_WORKER_LEN = 128


@dataclass(frozen=True)
class Incarnation:
    """One process's identity as recorded with its leases (see the module docstring)."""

    worker: str
    host: str
    boot: str
    pidns: str
    pid: int
    start: int
    nonce: str

    def encode(self) -> str:
        fields = (self.worker, self.host, self.boot, self.pidns, self.pid, self.start, self.nonce)
        return SEP.join(str(f) for f in fields)

    @classmethod
    def parse(cls, owner: str) -> Incarnation | None:
        """The incarnation an owner string records, or None when it is not one (an owner
        written by an older tether, or by hand): such an owner is never judged dead."""
        parts = owner.rsplit(SEP, 6)
        if len(parts) != 7:
            return None
        worker, host, boot, pidns, pid, start, nonce = parts
        if not (pid.isdigit() and start.isdigit()):
            return None
        return cls(worker, host, boot, pidns, int(pid), int(start), nonce)


@dataclass(frozen=True)
class ProcessInfo:
    state: str
    """One letter, as in ``/proc/PID/stat`` (``Z`` a zombie, ``X`` dead)."""
    start: int
    """Clock ticks from boot to the process's start."""


class ProcReader(Protocol):
    """Reads what liveness needs from the kernel (``LinuxProc``; a fake in tests)."""

    def boot_id(self) -> str: ...

    def pid_namespace(self) -> str: ...

    def process(self, pid: int) -> ProcessInfo | None:
        """The process ``pid`` in this pid namespace, or None when there is none."""
        ...


class LinuxProc:
    """Reads ``/proc``; on a platform without it every answer is empty (nothing is ever
    judged dead). Paths are joined as strings: a fresh process's first ``pathlib`` joins cost
    a resume's runtime some 100 us."""

    def __init__(self, root: str | os.PathLike[str] = "/proc") -> None:
        self.root = os.fspath(root)

    def boot_id(self) -> str:
        try:
            raw = _read(f"{self.root}/sys/kernel/random/boot_id")
        except OSError:
            return ""
        return raw.strip().replace("-", "")

    def pid_namespace(self) -> str:
        try:
            link = os.readlink(f"{self.root}/self/ns/pid")  # "pid:[4026531836]"
        except OSError:
            return ""
        return "".join(c for c in link if c.isdigit())

    def process(self, pid: int) -> ProcessInfo | None:
        try:
            raw = _read(f"{self.root}/{pid}/stat")
        except (FileNotFoundError, ProcessLookupError):
            return None
        except OSError:  # unreadable but present: treat it as the live process it may be
            return ProcessInfo("?", -1)
        return parse_stat(raw)


def _read(path: str) -> str:
    """A small ``/proc`` file in one read (``/proc/PID/stat`` is under 1 KB: its command name
    is cut to 15 bytes), without ``read_text``'s buffered text layer."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        return os.read(fd, 4096).decode("utf-8", "replace")
    finally:
        os.close(fd)


def parse_stat(raw: str) -> ProcessInfo | None:
    """State and start time from a ``/proc/PID/stat`` line. The command name (field 2) is in
    parentheses and may itself hold spaces and parentheses, so fields are counted after the
    last ``)``."""
    fields = raw[raw.rfind(")") + 1 :].split()
    if len(fields) < 20 or not fields[19].isdigit():
        return None
    return ProcessInfo(fields[0], int(fields[19]))


LINUX_PROC = LinuxProc()


def worker_id(owner: str | None = None) -> str:
    """The worker id a runtime runs under: ``owner``, else ``$TETHER_WORKER_ID``, else the host
    name. Raises ConfigurationError when it is empty, too long or holds a ``|``."""
    source = "owner=" if owner is not None else WORKER_ENV
    wid = owner if owner is not None else os.environ.get(WORKER_ENV) or os.uname().nodename
    if not wid or len(wid) > MAX_WORKER_LEN or SEP in wid or not wid.isprintable():
        raise ConfigurationError(
            f"worker id {wid!r} (from {source}) is not usable: give a non-empty, printable name "
            f"of at most {MAX_WORKER_LEN} characters without {SEP!r}, e.g. 'billing-worker-1'"
        )
    return wid


def current_incarnation(worker: str, proc: ProcReader = LINUX_PROC) -> Incarnation:
    """This process's incarnation under ``worker``, with a fresh nonce."""
    host, boot, pidns, pid, start = _this_process(proc)
    return Incarnation(worker, host, boot, pidns, pid, start, os.urandom(4).hex())


_SELF: tuple[str, str, str, int, int] | None = None
"""What ``LINUX_PROC`` said of this process (host, boot id, pid namespace, pid, start time): a
process's own never change, and a fresh process's first resume should not read them again for
each runtime (a forked child has another pid, and reads its own)."""


def _this_process(proc: ProcReader) -> tuple[str, str, str, int, int]:
    global _SELF
    pid = os.getpid()
    if proc is LINUX_PROC and _SELF is not None and _SELF[3] == pid:
        return _SELF
    me = proc.process(pid)
    found = (
        os.uname().nodename.replace(SEP, "_"),
        proc.boot_id(),
        proc.pid_namespace(),
        pid,
        me.start if me is not None and me.start >= 0 else 0,
    )
    if proc is LINUX_PROC:
        _SELF = found
    return found


def is_dead(owner: Incarnation, here: Incarnation, proc: ProcReader = LINUX_PROC) -> bool:
    """True only when ``owner`` provably no longer runs: it ran under this kernel boot and in
    this pid namespace (both known), and its pid is gone, a zombie, or a later process."""
    if not owner.boot or owner.boot != here.boot or not owner.pidns or owner.pidns != here.pidns:
        return False
    info = proc.process(owner.pid)
    if info is None or info.state in ("Z", "X"):
        return True
    return owner.start > 0 and info.start >= 0 and info.start != owner.start


def dead_owners(
    owners: Iterable[str], here: Incarnation, proc: ProcReader = LINUX_PROC
) -> list[str]:
    """The owner strings among ``owners`` whose incarnation is provably dead (sorted)."""
    dead = []
    for owner in set(owners):
        inc = Incarnation.parse(owner)
        if inc is not None and is_dead(inc, here, proc):
            dead.append(owner)
    return sorted(dead)
