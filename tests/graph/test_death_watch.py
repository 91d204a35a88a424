"""``DeathWatch``: the exit of a lease owner on this host is heard through a pidfd, at once.

Real processes, killed with SIGKILL; the owner strings are built as a runtime builds its own.
"""

from __future__ import annotations

import asyncio
import errno
import os
import signal
import subprocess
import sys
from collections.abc import Iterator

import pytest

from tether.core.liveness import LINUX_PROC, Incarnation, ProcessInfo, current_incarnation
from tether.graph.death_watch import DeathWatch

pytestmark = pytest.mark.skipif(
    not hasattr(os, "pidfd_open") or not LINUX_PROC.boot_id(), reason="needs Linux pidfds"
)
GUARD = 60.0
"""Hang guard for an exit the test waits on (a failure bound, never a race)."""


@pytest.fixture
def sleeper() -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    yield proc
    if proc.poll() is None:
        proc.kill()
    proc.wait()


def owner_of(pid: int, *, start: int | None = None, boot: str | None = None) -> str:
    info = LINUX_PROC.process(pid)
    assert info is not None
    return Incarnation(
        worker="w",
        host="h",
        boot=LINUX_PROC.boot_id() if boot is None else boot,
        pidns=LINUX_PROC.pid_namespace(),
        pid=pid,
        start=info.start if start is None else start,
        nonce="abcd1234",
    ).encode()


class Heard:
    def __init__(self) -> None:
        self.owners: list[str] = []
        self.event = asyncio.Event()

    def __call__(self, owner: str) -> None:
        self.owners.append(owner)
        self.event.set()


def here() -> Incarnation:
    return current_incarnation("me")


async def test_a_killed_owner_is_heard_at_once(sleeper: subprocess.Popen[bytes]) -> None:
    heard = Heard()
    watch = DeathWatch(here(), heard)
    owner = owner_of(sleeper.pid)
    assert watch.watch([owner]) == []
    assert watch.watched == {owner}
    assert watch.watch([owner]) == []  # watched once, not twice
    sleeper.send_signal(signal.SIGKILL)
    await asyncio.wait_for(heard.event.wait(), GUARD)
    assert heard.owners == [owner]
    assert watch.watched == frozenset()
    watch.close()


async def test_an_owner_not_reaped_yet_is_heard_too(sleeper: subprocess.Popen[bytes]) -> None:
    """The kernel makes the pidfd readable at exit: a zombie nobody reaped counts as gone."""
    heard = Heard()
    watch = DeathWatch(here(), heard)
    watch.watch([owner_of(sleeper.pid)])
    os.kill(sleeper.pid, signal.SIGKILL)  # not waited for: a zombie until the fixture reaps it
    await asyncio.wait_for(heard.event.wait(), GUARD)
    watch.close()


async def test_a_pid_that_names_another_process_is_dead_at_once(
    sleeper: subprocess.Popen[bytes],
) -> None:
    """The start time is compared after the pidfd is open: a reused pid is no live owner."""
    heard = Heard()
    watch = DeathWatch(here(), heard)
    real = LINUX_PROC.process(sleeper.pid)
    assert real is not None
    reused = owner_of(sleeper.pid, start=real.start + 1)
    assert watch.watch([reused]) == [reused]
    assert watch.watched == frozenset() and heard.owners == []
    watch.close()


async def test_a_gone_pid_is_dead_at_once(sleeper: subprocess.Popen[bytes]) -> None:
    owner = owner_of(sleeper.pid)
    sleeper.kill()
    sleeper.wait()  # reaped: the pid names nothing now (or, reused, a younger process)
    watch = DeathWatch(here(), Heard())
    assert watch.watch([owner]) == [owner]
    assert watch.watched == frozenset()


async def test_owners_elsewhere_are_left_to_the_scan(sleeper: subprocess.Popen[bytes]) -> None:
    me = here()
    watch = DeathWatch(me, Heard())
    other_boot = owner_of(sleeper.pid, boot="0" * 32)
    other_ns = Incarnation.parse(owner_of(sleeper.pid))
    assert other_ns is not None
    other_ns_owner = Incarnation(**{**other_ns.__dict__, "pidns": "1"}).encode()
    same_process = Incarnation(**{**me.__dict__, "nonce": "ffff0000"}).encode()
    named = [other_boot, other_ns_owner, same_process, "an-owner-written-by-hand"]
    assert watch.watch(named) == []
    assert watch.watched == frozenset()


async def test_an_owner_no_longer_named_is_unwatched(sleeper: subprocess.Popen[bytes]) -> None:
    heard = Heard()
    watch = DeathWatch(here(), heard)
    owner = owner_of(sleeper.pid)
    watch.watch([owner])
    fd = watch._fds[owner]
    watch.watch([])  # it holds no lease any more
    assert watch.watched == frozenset()
    assert not asyncio.get_running_loop().remove_reader(fd)  # the loop no longer reads it
    sleeper.kill()
    sleeper.wait()
    await asyncio.sleep(0)  # a reader left behind would fire now
    await asyncio.sleep(0)
    assert heard.owners == []


async def test_close_stops_watching(sleeper: subprocess.Popen[bytes]) -> None:
    heard = Heard()
    watch = DeathWatch(here(), heard)
    watch.watch([owner_of(sleeper.pid)])
    watch.close()
    assert watch.watched == frozenset()
    sleeper.kill()
    sleeper.wait()
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    assert heard.owners == []


async def test_without_pidfds_nothing_is_watched(sleeper: subprocess.Popen[bytes]) -> None:
    def refuse(pid: int) -> int:
        raise OSError(errno.ENOSYS, "Function not implemented")

    watch = DeathWatch(here(), Heard(), pidfd_open=refuse)
    assert watch.watch([owner_of(sleeper.pid)]) == []
    assert not watch.available and watch.watched == frozenset()


async def test_out_of_descriptors_leaves_the_rest_to_the_scan(
    sleeper: subprocess.Popen[bytes],
) -> None:
    def full(pid: int) -> int:
        raise OSError(errno.EMFILE, "Too many open files")

    watch = DeathWatch(here(), Heard(), pidfd_open=full)
    assert watch.watch([owner_of(sleeper.pid)]) == []
    assert watch.available  # tried again with the next scan


class Unreadable:
    """``/proc/PID/stat`` present but unreadable (``LinuxProc`` answers state "?", start -1)."""

    def boot_id(self) -> str:
        return LINUX_PROC.boot_id()

    def pid_namespace(self) -> str:
        return LINUX_PROC.pid_namespace()

    def process(self, pid: int) -> ProcessInfo | None:
        return ProcessInfo("?", -1)


async def test_an_unreadable_process_is_watched_not_judged(
    sleeper: subprocess.Popen[bytes],
) -> None:
    heard = Heard()
    watch = DeathWatch(here(), heard, proc=Unreadable())
    owner = owner_of(sleeper.pid)
    assert watch.watch([owner]) == []  # not provably dead
    assert watch.watched == {owner}
    sleeper.kill()
    await asyncio.wait_for(heard.event.wait(), GUARD)
    assert heard.owners == [owner]


async def test_a_loop_that_cannot_watch_descriptors_leaves_it_to_the_scan(
    sleeper: subprocess.Popen[bytes], monkeypatch: pytest.MonkeyPatch
) -> None:
    loop = asyncio.get_running_loop()

    def no_readers(*args: object) -> None:
        raise NotImplementedError

    monkeypatch.setattr(loop, "add_reader", no_readers)
    watch = DeathWatch(here(), Heard())
    assert watch.watch([owner_of(sleeper.pid)]) == []
    assert not watch.available and watch.watched == frozenset()
