"""Hear at once when a lease owner on this host exits, instead of at the next scan.

The claim loop finds dead owners by a scan of the lease owners (``ClaimLoop._dead_owners``,
at most once a second): a worker killed on this host has its runs taken over up to a second
later, plus the claim. ``DeathWatch`` closes that gap on Linux: for every owner the scan names
that ran under this kernel boot and in this pid namespace (``tether.core.liveness``), it opens a
pidfd (``os.pidfd_open``) and has the event loop read it; the kernel makes a pidfd readable when
its process exits, SIGKILL included, so the runtime hears of the death with the next turn of its
loop and claims the owner's runs at once.

A pidfd names the process alive when it was opened, never a later one given the same pid, so the
start time in the owner string is compared *after* opening: a process already gone, or a pid now
naming another process, is reported dead there and then. Where pidfds are not available (not
Linux, a kernel before 5.3, a sandbox that refuses the call) nothing is watched and the scan
alone finds dead owners, as before.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import os
from collections.abc import Callable, Iterable

from tether.core.liveness import LINUX_PROC, Incarnation, ProcReader, is_dead

log = logging.getLogger("tether.runtime")

MAX_WATCHED = 256
"""Owners watched at most at once (a file descriptor each); the scan finds the rest."""

PidfdOpen = Callable[[int], int]


def _pidfd_open(pid: int) -> int:
    opener: PidfdOpen | None = getattr(os, "pidfd_open", None)
    if opener is None:
        raise OSError(f"os.pidfd_open is not available on this platform ({os.name})")
    return opener(pid)


class DeathWatch:
    """pidfds of the live lease owners on this host, read by the runtime's event loop.

    ``on_exit(owner)`` is called on the loop thread, once per owner, when its process exits.
    """

    def __init__(
        self,
        here: Incarnation,
        on_exit: Callable[[str], None],
        *,
        proc: ProcReader = LINUX_PROC,
        pidfd_open: PidfdOpen = _pidfd_open,
    ) -> None:
        self.here = here
        self.on_exit = on_exit
        self.proc = proc
        self.pidfd_open = pidfd_open
        self.available = bool(here.boot and here.pidns)
        """False once pidfds turned out not to work here (or this host's identity is unknown):
        then ``watch`` does nothing and the scan alone finds dead owners."""
        self._fds: dict[str, int] = {}
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def watched(self) -> frozenset[str]:
        """The owners watched now."""
        return frozenset(self._fds)

    def watch(self, owners: Iterable[str]) -> list[str]:
        """Watch the owners among ``owners`` that run on this host (and stop watching the ones
        no longer named: they hold no lease now). Call it on the runtime's event loop with the
        scan's owners. Returns the owners found dead while opening their pidfds (sorted): gone
        already, or their pid now names a process that started at another time."""
        if not self.available:
            return []
        loop = asyncio.get_running_loop()
        if self._loop is not loop:  # a runtime reopened on another loop: start afresh
            self.close()
            self._loop = loop
        named = set(owners)
        for owner in [o for o in self._fds if o not in named]:
            self._forget(owner)
        dead = []
        for owner in sorted(named - self._fds.keys()):
            inc = self._on_this_host(owner)
            if inc is None:
                continue
            if len(self._fds) >= MAX_WATCHED:
                break
            try:
                fd = self.pidfd_open(inc.pid)
            except ProcessLookupError:
                dead.append(owner)
                continue
            except OSError as exc:
                if exc.errno in (errno.EMFILE, errno.ENFILE):
                    break  # out of file descriptors: the scan finds the rest
                self.available = False  # ENOSYS, or EPERM from a sandbox: never again
                log.info("no pidfds here (%s): dead lease owners are found by the scan", exc)
                return dead
            # after opening: the pidfd names the process that held the pid then, so a verdict
            # of alive now (an unreadable start time proves nothing) means that one is ours
            if is_dead(inc, self.here, self.proc):
                os.close(fd)
                dead.append(owner)
                continue
            try:
                loop.add_reader(fd, self._exited, owner)
            except (NotImplementedError, OSError, ValueError) as exc:  # a loop without readers
                os.close(fd)
                self.available = False
                log.info(
                    "this event loop cannot watch pidfds (%s): the scan finds dead owners", exc
                )
                return dead
            self._fds[owner] = fd
        return dead

    def _on_this_host(self, owner: str) -> Incarnation | None:
        inc = Incarnation.parse(owner)
        here = self.here
        if inc is None or inc.boot != here.boot or inc.pidns != here.pidns:
            return None
        if inc.pid == here.pid:  # another runtime of this process: alive while we are
            return None
        return inc

    def _exited(self, owner: str) -> None:
        if owner not in self._fds:
            return
        self._forget(owner)
        self.on_exit(owner)

    def _forget(self, owner: str) -> None:
        fd = self._fds.pop(owner)
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.remove_reader(fd)
        with contextlib.suppress(OSError):
            os.close(fd)

    def close(self) -> None:
        """Stop watching (the runtime closes)."""
        for owner in list(self._fds):
            self._forget(owner)
