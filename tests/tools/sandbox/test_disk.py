"""The scratch directory's disk limit (max_disk_bytes, max_disk_files) on every backend: many
files under max_file_bytes, many empty files, links, writes elsewhere, a file grown through a
mapping, the input files, and the parent's watch where no tmpfs can be mounted."""

from __future__ import annotations

import asyncio
import os
import signal
import stat
import sys
from pathlib import Path

import pytest

from tether.core.errors import ConfigurationError
from tether.tools.sandbox import Sandbox, run_python, runner
from tether.tools.sandbox._disk_watch import over_limits, watch_scratch
from tether.tools.sandbox.scratchfs import usage

from .conftest import FAST, run_on

MiB = 1024 * 1024
DISK = FAST.replace(
    max_disk_bytes=8 * MiB,
    max_disk_files=200,
    cpu_seconds=60,  # these tests are about disk: time limits only stop one lost on a loaded
    wall_seconds=300,  # machine (gVisor's start and 1,000 links took past 5 s under CI's load)
)

MANY_FILES = """
import os
n = 0
try:
    for i in range(300):  # 300 MiB, each file at max_file_bytes (1 MiB)
        with open(f"f{i}.bin", "wb") as f:
            f.write(b"x" * (1 << 20))
        n += 1
finally:
    print("wrote", n, flush=True)
"""


async def test_many_files_under_max_file_bytes_stop_at_max_disk_bytes(
    sandbox_backend: str,
) -> None:
    result = await run_on(sandbox_backend, MANY_FILES, DISK)
    assert result.killed_reason == "disk", result.stderr
    assert result.exit_code == 1
    assert "No space left on device" in result.stderr
    assert result.stdout == "wrote 8\n"  # 8 MiB: the tmpfs holds exactly the limit
    assert sum(len(v) for v in result.files.values()) <= DISK.max_disk_bytes


async def test_the_kernel_holds_the_limit_without_the_audit_hook(sandbox_backend: str) -> None:
    code = "import os; s = os.statvfs('.'); print(s.f_blocks * s.f_frsize)\n" + MANY_FILES
    result = await run_on(sandbox_backend, code, DISK, hook=False)
    assert result.stdout.split("\n")[:2] == [str(8 * MiB), "wrote 8"], result.stderr
    assert result.killed_reason == "disk"


async def test_many_empty_files_stop_at_max_disk_files(sandbox_backend: str) -> None:
    code = """
n = 0
try:
    for i in range(100_000):
        open(f"e{i}", "w").close()
        n += 1
finally:
    print("created", n, flush=True)
"""
    result = await run_on(sandbox_backend, code, DISK)
    assert result.killed_reason == "disk", (result.stdout, result.stderr[-500:])
    if sandbox_backend == "process":  # nr_inodes: the kernel refuses the 201st
        assert result.stdout == "created 200\n"
        assert result.exit_code == 1
    else:  # gVisor's tmpfs has no nr_inodes: the launcher's count kills it
        assert result.signal == "SIGKILL"


async def test_links_and_writes_elsewhere_do_not_escape_the_limit(sandbox_backend: str) -> None:
    code = """
import os
open("a", "wb").write(b"x" * 4096)
for n, target in enumerate(("/tmp/x", "/var/tmp/x", "/dev/shm/x", "/x", "/var/x", "/dev/x")):
    for how in ("open", "symlink", "link"):
        try:
            if how == "open":
                open(target, "wb").write(b"x")
            elif how == "symlink":
                os.symlink(target, f"l{n}")
                open(f"l{n}", "wb").write(b"x")
            else:
                os.link("a", target)
            print("ESCAPED", how, target)
        except OSError:
            pass
for i in range(1000):  # hard links inside scratch share one inode's pages
    os.link("a", f"h{i}")
print("done")
"""
    limits = DISK.replace(max_disk_files=2000)
    for hook in (True, False):
        result = await run_on(sandbox_backend, code, limits, hook=hook)
        assert result.stdout == "done\n", (
            hook,
            result.killed_reason,
            result.stdout,
            result.stderr[-500:],
        )


async def test_a_file_grown_through_a_mapping_after_the_check(sandbox_backend: str) -> None:
    # A sparse file takes no space when created; its pages are only allocated as they are
    # touched, long after any check of its size: the tmpfs refuses the page (SIGBUS).
    code = """
import mmap
with open("sparse.bin", "w+b") as f:
    f.truncate(64 << 20)
    m = mmap.mmap(f.fileno(), 64 << 20)
    for off in range(0, 64 << 20, 4096):
        m[off] = 1
print("filled")
"""
    limits = DISK.replace(max_file_bytes=128 * MiB)
    result = await run_on(sandbox_backend, code, limits, hook=False)
    assert result.stdout == "", result.stderr[-500:]
    assert result.killed_reason == "disk", (result.signal, result.stderr[-500:])
    assert result.signal == "SIGBUS"


async def test_input_files_count_and_are_copied_in(sandbox_backend: str) -> None:
    code = """
print(open("data/in.txt").read(), len(open("big.bin", "rb").read()))
open("out.bin", "wb").write(b"y" * (1 << 20))
open("out2.bin", "wb").write(b"y" * (1 << 20))
"""
    files = {"data/in.txt": "hello", "big.bin": b"z" * (7 * MiB)}
    box = Sandbox(DISK, backend=sandbox_backend)  # type: ignore[arg-type]
    result = await box.run(code, files=files)
    assert result.stdout == f"hello {7 * MiB}\n", result.stderr
    assert result.killed_reason == "disk"  # 7 MiB + 4 KiB in, 1 MiB more does not fit
    assert result.files["data/in.txt"] == b"hello"


async def test_input_files_over_the_limit_are_refused_before_running() -> None:
    with pytest.raises(ConfigurationError, match=r"over SandboxLimits\.max_disk_bytes"):
        await run_python("pass", limits=DISK, files={"big.bin": b"z" * (9 * MiB)})
    many = {f"d/f{i}": b"" for i in range(200)}  # 200 files + the directory d
    with pytest.raises(ConfigurationError, match=r"over SandboxLimits\.max_disk_files=200"):
        await run_python("pass", limits=DISK, files=many)


def _world_accessible(path: str) -> bool:
    head = os.path.dirname(os.path.realpath(path))
    while head != "/":
        if not os.stat(head).st_mode & stat.S_IXOTH:
            return False
        head = os.path.dirname(head)
    return True


WEAK_CODE = {  # bounded: a watch that fails lets them end on their own (exit 0), not fill /
    "bytes": "for i in range(400): open(f'f{i}', 'wb').write(b'x' * (1 << 20))",
    "files": "for i in range(100_000): open(f'e{i}', 'w').close()",
}


@pytest.mark.parametrize("code", WEAK_CODE.values(), ids=WEAK_CODE.keys())
async def test_without_a_mount_namespace_the_parent_kills_over_the_limit(
    monkeypatch: pytest.MonkeyPatch, code: str
) -> None:
    if os.geteuid() == 0 and not _world_accessible(sys.executable):
        pytest.skip("without a mount namespace the per-execution uid cannot reach this Python")
    monkeypatch.setenv(runner.DISABLE_NAMESPACES_ENV, "1")
    limits = DISK.replace(wall_seconds=60, cpu_seconds=30)
    result = await run_python(code, limits=limits, backend="process", allow_weak_isolation=True)
    assert result.filesystem != "mount-namespace"
    assert result.killed_reason == "disk", (result.exit_code, result.stderr[-500:])


@pytest.mark.parametrize("code", WEAK_CODE.values(), ids=WEAK_CODE.keys())
async def test_the_parent_watch_kills_a_writer_over_the_limit(tmp_path: Path, code: str) -> None:
    """The watch of the weak mode, on a real writer (any interpreter may run it)."""
    proc = await asyncio.create_subprocess_exec(sys.executable, "-c", code, cwd=tmp_path)
    killed: list[bool] = []

    def kill() -> None:
        killed.append(True)
        proc.kill()

    watch = asyncio.ensure_future(watch_scratch(str(tmp_path), DISK, lambda: False, kill))
    await proc.wait()
    watch.cancel()
    assert killed == [True] and proc.returncode == -signal.SIGKILL


def test_usage_counts_hard_links_once_and_follows_no_link(tmp_path: Path) -> None:
    (tmp_path / "a").write_bytes(b"x" * 65536)
    (tmp_path / "d").mkdir()
    os.link(tmp_path / "a", tmp_path / "d" / "b")
    os.symlink("/usr", tmp_path / "usr")
    used, entries = usage(str(tmp_path), 100)
    assert entries == 4  # a, d, d/b, usr
    assert 65536 <= used < 65536 + 3 * 8192  # a's blocks once, d's, the link's
    assert over_limits(str(tmp_path), DISK.replace(max_disk_files=3))
    assert not over_limits(str(tmp_path), DISK)
