"""Normal operation: output, exit codes, stdin, files, usage, backends, sync twins."""

from __future__ import annotations

import ast
import asyncio
import contextlib
import os
import shutil
import stat
import sys
import tempfile
import uuid
from pathlib import Path

import pytest

from tether.core import serde
from tether.core.errors import ConfigurationError
from tether.tools.sandbox import (
    Sandbox,
    SandboxError,
    SandboxResult,
    gvisor_available,
    run_python,
    run_python_sync,
    runner,
)

from .conftest import FAST, assert_group_gone


async def test_normal_code_returns_output_and_files(sandbox_backend: str) -> None:
    code = """
import os, json
print("hello", json.dumps({"n": 1}))
os.mkdir("out")
with open("out/result.txt", "w") as fh:
    fh.write(open("data/in.txt").read().upper())
open("blob.bin", "wb").write(bytes(range(4)))
"""
    result = await run_python(
        code,
        limits=FAST,
        files={"data/in.txt": "abc"},
        backend=sandbox_backend,  # type: ignore[arg-type]
    )
    assert isinstance(result, SandboxResult)
    assert result.ok, result.stderr
    assert result.exit_code == 0 and result.signal is None and result.killed_reason is None
    assert result.stdout == 'hello {"n": 1}\n'
    assert result.stderr == ""
    assert result.files["out/result.txt"] == b"ABC"
    assert result.files["blob.bin"] == bytes(range(4))
    assert result.files["data/in.txt"] == b"abc"
    assert result.network == ("gvisor" if sandbox_backend == "gvisor" else "namespace")
    assert_group_gone(result)


async def test_undecodable_file_names_come_back_as_storable_text(sandbox_backend: str) -> None:
    """A file the code named with bytes that are not UTF-8 came back under a name holding a lone
    surrogate, which no store can keep (a tool's result, a run's state)."""
    code = """
import os
open(b"\\xff.txt", "wb").write(b"x")
os.mkdir(b"d\\xfe")
open(b"d\\xfe/in", "wb").write(b"y")
open(r"\\xfe.bin", "wb").write(b"real")  # the text its escaped twin below would take
open(b"\\xfe.bin", "wb").write(b"twin")
"""
    result = await run_python(code, limits=FAST, backend=sandbox_backend)  # type: ignore[arg-type]
    assert result.exit_code == 0, result.stderr
    assert result.files == {"\\xff.txt": b"x", "d\\xfe/in": b"y", "\\xfe.bin": b"real"}
    assert result.files_truncated  # the twin is left out, said so
    serde.dumps(sorted(result.files))  # storable: raised TypeError on a lone surrogate


@pytest.mark.parametrize(
    ("code", "exit_code"),
    [
        ("import sys; sys.exit(3)", 3),
        ("raise ValueError('boom')", 1),
        ("import os; os._exit(7)", 7),
        ("def broken(:", 1),
    ],
)
async def test_exit_codes_propagate(code: str, exit_code: int, sandbox_backend: str) -> None:
    result = await run_python(code, limits=FAST, backend=sandbox_backend)  # type: ignore[arg-type]
    assert result.exit_code == exit_code
    assert result.killed_reason is None
    assert not result.ok


async def test_traceback_shows_user_source() -> None:
    result = await run_python("x = 1\nraise ValueError('boom')\n", limits=FAST)
    assert 'File "main.py", line 2' in result.stderr
    assert "raise ValueError('boom')" in result.stderr
    assert "launcher" not in result.stderr
    assert result.stderr.rstrip().endswith("ValueError: boom")


async def test_stdin_is_delivered(sandbox_backend: str) -> None:
    box = Sandbox(FAST, backend=sandbox_backend)  # type: ignore[arg-type]
    result = await box.run("import sys\nprint(sys.stdin.read()[::-1])", stdin="abc")
    assert result.stdout == "cba\n"
    no_stdin = await box.run("import sys\nprint(repr(sys.stdin.read()))")
    assert no_stdin.stdout == "''\n"


async def test_unicode_and_invalid_bytes() -> None:
    code = "import sys\nprint('héllo ✓')\nsys.stdout.buffer.write(b'\\xff\\n')"
    result = await run_python(code, limits=FAST)
    assert result.stdout == "héllo ✓\n\ufffd\n"


async def test_scratch_is_cwd_home_tmpdir_and_removed_afterwards(sandbox_backend: str) -> None:
    code = """
import os, tempfile
print(os.getcwd()); print(os.environ["HOME"]); print(tempfile.gettempdir())
with tempfile.NamedTemporaryFile(delete=False) as fh:
    fh.write(b"t")
"""
    result = await run_python(code, limits=FAST, backend=sandbox_backend)  # type: ignore[arg-type]
    assert result.ok, result.stderr
    cwd, home, tmp = result.stdout.split()
    assert cwd == home == tmp
    assert len(result.files) == 1
    assert not os.path.exists(cwd)
    assert not os.path.exists(os.path.dirname(cwd))


async def test_resource_usage_is_reported() -> None:
    code = "import time\nend = time.process_time() + 0.3\nwhile time.process_time() < end: pass"
    result = await run_python(code, limits=FAST)
    assert result.ok
    assert result.cpu_s >= 0.25
    assert result.duration_s >= 0.25
    assert result.max_rss_bytes > 1024 * 1024


async def test_peak_rss_is_the_sandbox_s_not_the_parent_s() -> None:
    # posix_spawn is a vfork-style clone, and Linux carries the spawner's high-water RSS across
    # exec: a big parent must not show up as the sandbox's peak memory.
    ballast = bytearray(400 * 1024 * 1024)
    for i in range(0, len(ballast), 4096):
        ballast[i] = 1
    result = await run_python("x = bytearray(20 * 1024 * 1024)", limits=FAST)
    del ballast
    assert result.ok
    assert 20 * 1024 * 1024 < result.max_rss_bytes < 200 * 1024 * 1024, result.max_rss_bytes


async def test_asyncio_and_threads_work_inside() -> None:
    code = """
import asyncio, threading
async def main():
    await asyncio.sleep(0.01)
    return 42
t = threading.Thread(target=lambda: None); t.start(); t.join()
print(asyncio.run(main()))
"""
    result = await run_python(code, limits=FAST)
    assert result.stdout == "42\n", result.stderr


async def test_filesystem_view(kernel_isolation: bool) -> None:
    if not kernel_isolation:
        pytest.skip("no mount namespace here")
    code = """
import os
print(sorted(p for p in os.listdir("/proc") if p.isdigit()))
print(os.listdir("/tmp"))
print(os.listdir("/dev/shm"), os.path.exists("/root/.bashrc"))
"""
    result = await run_python(code, limits=FAST, backend="process")
    assert result.ok, result.stderr
    pids, tmp, rest = result.stdout.splitlines()
    assert pids == "['1']"  # only itself: a fresh /proc in its own PID namespace
    # /tmp is an empty tmpfs with only this execution's work directory bound back into it.
    names = ast.literal_eval(tmp)
    assert len(names) == 1 and names[0].startswith("tether-sandbox-")
    assert rest == "[] False"


async def test_gvisor_filesystem_view() -> None:
    """gVisor has no bind mounts: hidden directories on the way to the interpreter or the work
    directory are pruned in gVisor's overlay instead of masked (and the host never changes)."""
    if not gvisor_available():
        pytest.skip("gVisor (runsc) is not installed here, or failed its self-check")
    secret_dir = Path(tempfile.mkdtemp(prefix="tether-test-", dir="/tmp"))
    try:
        secret_dir.chmod(0o755)
        secret = secret_dir / "secret.txt"
        secret.write_text("s3cr3t")
        secret.chmod(0o644)
        loose = Path("/tmp") / f"tether-test-{uuid.uuid4().hex}.txt"
        loose.write_text("loose")
        loose.chmod(0o644)
        code = f"""
import os
print(sorted(p for p in os.listdir("/proc") if p.isdigit()))
for probe in (lambda: os.listdir("/tmp"), lambda: open({str(secret)!r}).read(),
              lambda: open({str(loose)!r}).read(), lambda: open("/tmp/new", "w")):
    try:
        print("VISIBLE", probe())
    except OSError as exc:
        print("hidden", type(exc).__name__)
print(os.listdir("/dev/shm"))
"""
        result = await run_python(code, limits=FAST, backend="gvisor")
        assert result.ok, result.stderr
        lines = result.stdout.splitlines()
        assert lines[0] == "['1']"  # its own PID namespace inside gVisor
        assert all(line.startswith("hidden") for line in lines[1:5]), result.stdout
        assert lines[5] == "[]"
        assert secret.read_text() == "s3cr3t" and loose.exists()  # the host is untouched
        assert oct(Path("/tmp").stat().st_mode & 0o7777) == "0o1777"
    finally:
        shutil.rmtree(secret_dir, ignore_errors=True)
        with contextlib.suppress(NameError, OSError):
            loose.unlink()


async def test_each_execution_gets_its_own_uid() -> None:
    if os.geteuid() != 0:
        pytest.skip("per-execution uids need root")
    results = await asyncio.gather(*(run_python("print('x')", limits=FAST) for _ in range(4)))
    assert all(r.ok for r in results)
    assert len({r.uid for r in results}) == 4
    assert all(r.uid not in (0, os.getuid()) for r in results)


async def test_sandbox_holds_defaults_and_calls_override() -> None:
    box = Sandbox(FAST.replace(max_output_bytes=10))
    small = await box.run("print('x' * 100)")
    assert small.stdout_truncated and len(small.stdout) == 10
    big = await box.run("print('x' * 100)", limits=FAST)
    assert big.ok and len(big.stdout) == 101


def test_sync_twin_outside_a_loop() -> None:
    result = run_python_sync("print(6 * 7)", limits=FAST)
    assert result.stdout == "42\n"
    assert Sandbox(FAST).run_sync("print(1)").stdout == "1\n"


async def test_sync_twin_inside_a_running_loop() -> None:
    result = run_python_sync("print('nested')", limits=FAST)
    assert result.stdout == "nested\n"


def test_gvisor_backend_without_runsc_raises(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(ConfigurationError, match="runsc"):
        Sandbox(backend="gvisor")
    with pytest.raises(ConfigurationError, match=r"gvisor\.dev"):
        run_python_sync("pass", backend="gvisor")


def test_auto_backend_falls_back_to_process(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, kernel_isolation: bool
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    result = run_python_sync("print('ok')", backend="auto", limits=FAST)
    assert result.ok
    assert result.network == ("namespace" if kernel_isolation else "audit-hook")


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"backend": "docker"}, "unknown sandbox backend"),
        ({"hidden_paths": "/tmp"}, "absolute paths"),
        ({"limits": {"cpu_seconds": 1}}, "SandboxLimits"),
    ],
)
def test_bad_sandbox_settings(kwargs: dict[str, object], match: str) -> None:
    with pytest.raises(ConfigurationError, match=match):
        Sandbox(**kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("files", "match"),
    [
        ({"/etc/passwd": "x"}, "relative path"),
        ({"../up.txt": "x"}, "relative path"),
        ({"ok.txt": 3}, "str or bytes"),
        ({"": "x"}, "non-empty"),
        ({"a\x00b": "x"}, "holds a NUL character"),
        ({3: "x"}, "must be a str"),
    ],
)
async def test_bad_input_files(files: dict[str, object], match: str) -> None:
    with pytest.raises(ConfigurationError, match=match):
        await run_python("pass", files=files)  # type: ignore[arg-type]


async def test_bad_code_type() -> None:
    with pytest.raises(ConfigurationError, match="str of Python source"):
        await run_python(b"print(1)")  # type: ignore[arg-type]


async def test_writes_to_dev_null_and_stdout_are_allowed() -> None:
    code = "open('/dev/null', 'w').write('x')\nopen('/dev/stdout', 'w').write('via dev\\n')"
    result = await run_python(code, limits=FAST, backend="process")
    assert result.ok, result.stderr
    assert result.stdout == "via dev\n"


def _world_accessible(path: str) -> bool:
    head = os.path.dirname(os.path.realpath(path))
    while head != "/":
        if not os.stat(head).st_mode & stat.S_IXOTH:
            return False
        head = os.path.dirname(head)
    return True


async def test_fallback_without_namespaces(monkeypatch: pytest.MonkeyPatch) -> None:
    """What a host without namespaces gets: the audit hook for the network, permissions for
    files, or (interpreter unreadable by the sandbox uid) an actionable setup error."""
    monkeypatch.setattr(runner, "_namespaces_supported", False)
    code = """
import socket
try:
    socket.socket().connect(("127.0.0.1", 9))
except OSError as exc:
    print("BLOCKED", type(exc).__name__)
"""
    if os.geteuid() == 0 and not _world_accessible(sys.executable):
        with pytest.raises(SandboxError, match="must live in a directory every user can read"):
            await run_python(code, limits=FAST, backend="process", allow_weak_isolation=True)
        return
    result = await run_python(code, limits=FAST, backend="process", allow_weak_isolation=True)
    assert result.stdout == "BLOCKED PermissionError\n", result.stderr
    assert result.network == "audit-hook"
    assert result.filesystem in ("permissions", "audit-hook")
    assert_group_gone(result)
