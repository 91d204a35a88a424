"""Backend choice and weak isolation: gVisor only after a self-check, no silent fallback."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import stat
import sys
from pathlib import Path

import pytest

from tether.tools.sandbox import (
    SandboxError,
    WeakIsolationError,
    _gvisor,
    gvisor_available,
    run_python,
    run_python_sync,
    runner,
)
from tether.tools.sandbox._stream import Stream
from tether.tools.sandbox.launcher import STATUS_MARK

from .conftest import FAST, assert_group_gone

# ----------------------------------------------------------------------------- weak isolation


async def test_missing_namespaces_are_refused_without_opt_in(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(runner.DISABLE_NAMESPACES_ENV, "1")
    with pytest.raises(WeakIsolationError) as info:
        await run_python("print('ran')", limits=FAST, backend="process")
    message = str(info.value)
    assert message.startswith(
        "namespaces unavailable (unshare(CLONE_NEWNET|CLONE_NEWNS|CLONE_NEWPID"
    )
    assert "allow_weak_isolation=True" in message
    assert len(info.value.reasons) == 2  # both attempts, each with why it failed
    assert all("failed" in reason for reason in info.value.reasons)
    assert runner._namespaces_supported is not False  # a simulation does not stick


def _world_accessible(path: str) -> bool:
    head = os.path.dirname(os.path.realpath(path))
    while head != "/":
        if not os.stat(head).st_mode & stat.S_IXOTH:
            return False
        head = os.path.dirname(head)
    return True


async def test_missing_namespaces_run_weakly_with_opt_in(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(runner.DISABLE_NAMESPACES_ENV, "1")
    code = """
import socket
try:
    socket.socket().connect(("127.0.0.1", 9))
except OSError as exc:
    print("BLOCKED", type(exc).__name__)
"""
    if os.geteuid() == 0 and not _world_accessible(sys.executable):
        # Without a mount namespace the per-execution uid cannot reach this interpreter.
        with pytest.raises(SandboxError, match="must live in a directory every user can read"):
            await run_python(code, limits=FAST, backend="process", allow_weak_isolation=True)
        return
    result = await run_python(code, limits=FAST, backend="process", allow_weak_isolation=True)
    assert result.stdout == "BLOCKED PermissionError\n", result.stderr
    assert result.network == "audit-hook"
    assert_group_gone(result)


async def test_known_missing_namespaces_refused_before_spawning(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(runner, "_namespaces_supported", False)
    monkeypatch.setattr(runner, "_namespaces_failure", ["unshare(CLONE_NEWNET) failed: EPERM"])

    def no_spawn(*args: object, **kwargs: object) -> int:
        raise AssertionError("the sandbox must not start")

    monkeypatch.setattr(runner.os, "posix_spawn", no_spawn)
    with pytest.raises(WeakIsolationError, match=r"unshare\(CLONE_NEWNET\) failed: EPERM"):
        await run_python("pass", limits=FAST, backend="process")


# ----------------------------------------------------------------------------- gVisor selection

FAKE_RUNSC = {
    # Runs the command on the host, unisolated: must never pass for gVisor.
    "passthrough": '#!/bin/sh\nwhile [ "$1" != "--" ]; do shift; done\nshift\nexec "$@"\n',
    "broken": "#!/bin/sh\necho 'runsc: cannot start sandbox' >&2\nexit 1\n",
}


@pytest.mark.parametrize("kind", sorted(FAKE_RUNSC))
def test_auto_never_picks_a_runsc_that_failed_its_self_check(
    kind: str,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    kernel_isolation: bool,
) -> None:
    fake = tmp_path / "runsc"
    fake.write_text(FAKE_RUNSC[kind])
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}:/usr/bin:/bin")
    tmp_mode = os.stat("/tmp").st_mode
    with caplog.at_level(logging.WARNING, logger="tether.tools.sandbox"):
        first = run_python_sync("print('ok')", limits=FAST)
        second = run_python_sync("print('ok')", limits=FAST)
    for result in (first, second):
        assert result.ok, result.stderr
        assert result.network == ("namespace" if kernel_isolation else "audit-hook")
    warnings = [r for r in caplog.records if "failed its self-check" in r.getMessage()]
    assert len(warnings) == 1, caplog.text  # checked and logged once
    assert str(fake) in warnings[0].getMessage()
    with pytest.raises(SandboxError, match="failed its self-check"):
        run_python_sync("print('ok')", limits=FAST, backend="gvisor")
    assert os.stat("/tmp").st_mode == tmp_mode  # the gVisor-only setup never touched the host


def test_auto_picks_gvisor_once_checked() -> None:
    if not gvisor_available():
        pytest.skip("gVisor (runsc) is not installed here, or failed its self-check")
    result = run_python_sync("print('ok')", limits=FAST)
    assert result.ok, result.stderr
    assert (result.network, result.filesystem) == ("gvisor", "gvisor")


async def test_gvisor_status_lines_cannot_be_forged() -> None:
    """Under gVisor the launcher's status shares stderr with the code: a forged closing line
    (wrong nonce) must be plain output, not an exit code or files."""
    if not gvisor_available():
        pytest.skip("gVisor (runsc) is not installed here, or failed its self-check")
    code = r"""
import json, sys
mark = "\x1etether-status "
sys.stderr.write(mark + json.dumps({"stage": "user", "fatal": "forged"}) + "\n")
for nonce in ("0" * 32, ""):
    forged = {"exit": 0, "cpu_s": 99.0, "files": {"forged.txt": "eA=="}}
    sys.stderr.write("\n" + mark + nonce + " " + json.dumps(forged) + "\n")
sys.stderr.flush()
open("real.txt", "w").write("real")
raise SystemExit(3)
"""
    result = await run_python(code, limits=FAST, backend="gvisor")
    assert result.exit_code == 3
    assert result.files == {"real.txt": b"real"}
    assert result.cpu_s < 99
    assert result.stderr.count("tether-status") == 3  # shown as the code's own output


def test_a_runsc_that_stops_working_raises(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Checked once, broken later: a typed error, not an empty result."""
    fake = tmp_path / "runsc"
    fake.write_text(FAKE_RUNSC["broken"])
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}:/usr/bin:/bin")
    monkeypatch.setitem(_gvisor._gvisor_checks, str(fake), None)  # as if it had passed
    with pytest.raises(SandboxError, match=r"did not start the sandbox.*cannot start sandbox"):
        run_python_sync("print('ok')", limits=FAST, backend="gvisor")


async def test_stderr_demultiplexing() -> None:
    """The gVisor stderr protocol on a real pipe: runsc's own lines and the code's output are
    output; status lines before the user stage are the header; only the closing line with the
    announced nonce (and what follows it) is the trailer."""
    mark = STATUS_MARK
    nonce = "ab" * 16
    chunks = [
        b"runsc: a warning of runsc's own\n",
        mark + json.dumps({"stage": "outer", "nonce": nonce}).encode() + b"\n",
        mark + b'{"stage": "inner"}\n' + mark + b'{"stage": "user"}\n',
        b"code output\n" + mark + b'{"stage": "user", "fatal": "forged"}\n',
        b"\n" + mark + b"0" * 32 + b' {"exit": 0}\n',
        b"tail\n" + b"\n" + mark + nonce.encode()[:10],
        nonce.encode()[10:] + b' {"exit": -9, "files": {}}\n',
    ]
    r, w = os.pipe()
    loop = asyncio.get_running_loop()
    stream = Stream(loop, r, 1024, None, demux=True, trailer_limit=4096)
    for chunk in chunks:
        os.write(w, chunk)
        await asyncio.sleep(0)  # let the reader take each chunk separately
    os.close(w)
    await asyncio.wait_for(stream.done, 30)
    assert [json.loads(line)["stage"] for line in stream.header.splitlines()] == [
        "outer",
        "inner",
        "user",
    ]
    text = stream.buf.decode()
    assert text.startswith("runsc: a warning of runsc's own\ncode output\n")
    assert '"fatal": "forged"' in text and "0" * 32 in text and text.endswith("tail\n")
    assert stream.closing_status() == {"exit": -9, "files": {}}
