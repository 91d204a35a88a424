"""Owner incarnations and the dead-owner check, with a fake /proc (pid reuse, zombies, other
boots and pid namespaces) and the real one."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tether.core.errors import ConfigurationError
from tether.core.ids import new_owner_id
from tether.core.liveness import (
    LINUX_PROC,
    Incarnation,
    LinuxProc,
    ProcessInfo,
    current_incarnation,
    dead_owners,
    is_dead,
    parse_stat,
    worker_id,
)

BOOT, NS = "b" * 32, "4026531836"


class FakeProc:
    def __init__(self, procs: dict[int, ProcessInfo], boot: str = BOOT, ns: str = NS) -> None:
        self.procs, self.boot, self.ns = procs, boot, ns

    def boot_id(self) -> str:
        return self.boot

    def pid_namespace(self) -> str:
        return self.ns

    def process(self, pid: int) -> ProcessInfo | None:
        return self.procs.get(pid)


HERE = Incarnation("w", "host", BOOT, NS, 10, 500, "n0")


def _owner(pid: int, start: int, *, boot: str = BOOT, ns: str = NS) -> Incarnation:
    return Incarnation("w", "host", boot, ns, pid, start, "n1")


def test_an_owner_string_round_trips_and_legacy_owners_are_not_incarnations() -> None:
    inc = Incarnation("billing|x", "h", BOOT, NS, 42, 7, "ab")  # rsplit: the worker keeps its |
    assert Incarnation.parse(inc.encode()) == inc
    assert Incarnation.parse("host:123:abcdef") is None  # written by an older tether
    assert Incarnation.parse("w|h|b|n|pid|7|x") is None
    assert Incarnation.parse("A") is None


def test_a_gone_pid_or_a_zombie_is_dead_and_a_live_one_is_not() -> None:
    proc = FakeProc({10: ProcessInfo("S", 500), 20: ProcessInfo("S", 900)})
    assert not is_dead(_owner(20, 900), HERE, proc)  # running: never robbed
    assert is_dead(_owner(30, 900), HERE, proc)  # no such pid
    proc.procs[30] = ProcessInfo("Z", 900)  # killed, not reaped yet
    assert is_dead(_owner(30, 900), HERE, proc)
    assert not is_dead(_owner(10, 500), HERE, proc)  # this very process (another Runtime)


def test_a_reused_pid_does_not_keep_a_dead_owner_alive() -> None:
    proc = FakeProc({20: ProcessInfo("S", 1234)})  # pid 20 now names a later process
    assert is_dead(_owner(20, 900), HERE, proc)
    assert not is_dead(_owner(20, 1234), HERE, proc)
    # an owner whose start time was not known is only dead when its pid is gone
    assert not is_dead(_owner(20, 0), HERE, proc)
    assert is_dead(_owner(21, 0), HERE, proc)


def test_owners_of_another_boot_or_pid_namespace_are_never_judged_dead() -> None:
    proc = FakeProc({})  # no pid exists here at all
    assert not is_dead(_owner(20, 900, boot="c" * 32), HERE, proc)  # before a reboot / elsewhere
    assert not is_dead(_owner(20, 900, ns="4026532000"), HERE, proc)  # another container
    assert not is_dead(_owner(20, 900, boot=""), HERE, proc)  # no /proc where it ran
    unknown_here = Incarnation("w", "host", "", "", 10, 500, "n0")
    assert not is_dead(_owner(20, 900, boot=""), unknown_here, proc)
    owners = [_owner(20, 900).encode(), _owner(21, 1, ns="1").encode(), "legacy:1:ab"]
    assert dead_owners(owners, HERE, proc) == [owners[0]]


def test_stat_is_parsed_after_the_command_name(tmp_path: Path) -> None:
    rest = " ".join(["S", *["0"] * 18, "777", "0", "0"])
    assert parse_stat(f"42 (a) (b c) {rest}") == ProcessInfo("S", 777)
    assert parse_stat("42 (x) S 1") is None
    (tmp_path / "sys/kernel/random").mkdir(parents=True)
    (tmp_path / "sys/kernel/random/boot_id").write_text("0123-abcd\n")
    (tmp_path / "42").mkdir()
    (tmp_path / "42/stat").write_text(f"42 (py) {rest}\n")
    fake = LinuxProc(tmp_path)
    assert fake.boot_id() == "0123abcd"
    assert fake.process(42) == ProcessInfo("S", 777)
    assert fake.process(43) is None
    assert fake.pid_namespace() == ""  # no self/ns/pid under this root: never judged dead


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs Linux /proc")
def test_the_real_proc_tells_a_killed_child_from_a_live_one() -> None:
    here = current_incarnation("w")
    assert here.boot and here.pidns and here.start > 0 and here.pid == os.getpid()
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        info = LINUX_PROC.process(child.pid)
        assert info is not None
        owner = Incarnation("w", here.host, here.boot, here.pidns, child.pid, info.start, "c")
        assert not is_dead(owner, here)
        child.kill()
        assert child.wait(timeout=30) != 0
        assert is_dead(owner, here)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait(timeout=30)


def test_worker_ids_come_from_owner_then_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TETHER_WORKER_ID", "from-env")
    assert worker_id("given") == "given"
    assert worker_id() == "from-env"
    assert Incarnation.parse(new_owner_id()) is not None
    assert new_owner_id().startswith("from-env|")
    monkeypatch.delenv("TETHER_WORKER_ID")
    assert worker_id() == os.uname().nodename
    for bad in ("", "a|b", "x" * 200, "tab\there"):
        with pytest.raises(ConfigurationError, match="worker id"):
            worker_id(bad)
    monkeypatch.setenv("TETHER_WORKER_ID", "a|b")
    with pytest.raises(ConfigurationError, match="TETHER_WORKER_ID"):
        worker_id()


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_process_reads_its_own_facts_once_and_a_forked_child_reads_its_own() -> None:
    first, second = current_incarnation("w"), current_incarnation("w")
    assert first.nonce != second.nonce  # each runtime its own owner string ...
    assert (first.boot, first.pidns, first.pid, first.start) == (
        second.boot,
        second.pidns,
        second.pid,
        second.start,
    )  # ... over the same process facts
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: its own pid and start time, not the parent's remembered ones
        try:
            child = current_incarnation("w")
            os.write(write, f"{child.pid} {child.start} {child.boot}".encode())
        finally:
            os._exit(0)
    os.close(write)
    try:
        got = os.read(read, 1024).decode().split()
    finally:
        os.close(read)
        os.waitpid(pid, 0)
    assert int(got[0]) == pid and got[2] == first.boot
    if first.start > 0:  # a real /proc: the child read its own start, later than ours
        assert int(got[1]) >= first.start
