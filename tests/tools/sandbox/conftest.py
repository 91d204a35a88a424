"""Shared helpers for the sandbox tests (real processes, no mocks)."""

from __future__ import annotations

import os
import sys

import pytest

from tether.tools.sandbox import Sandbox, SandboxLimits, SandboxResult, gvisor_available
from tether.tools.sandbox._identity import SLOTS, UID_BASE
from tether.tools.sandbox.runner import execute
from tether.tools.sandbox.sandbox import _resolve_backend

if not sys.platform.startswith("linux"):
    pytest.skip("the sandbox is Linux-only", allow_module_level=True)

FAST = SandboxLimits(
    cpu_seconds=2,
    wall_seconds=5,
    memory_bytes=256 * 1024 * 1024,
    max_processes=8,
    max_output_bytes=64 * 1024,
    max_file_bytes=1024 * 1024,
)


async def run_without_hook(
    code: str, limits: SandboxLimits = FAST, backend: str = "process"
) -> SandboxResult:
    """Test-only: the same sandbox minus the audit hook, to prove the kernel layers (or gVisor)
    alone."""
    runsc = _resolve_backend(backend)
    return await execute(Sandbox(limits)._spec(code, None, None, None, False, runsc))


async def run_on(
    backend: str, code: str, limits: SandboxLimits = FAST, hook: bool = True
) -> SandboxResult:
    """``code`` on ``backend``, with or without the audit hook."""
    if not hook:
        return await run_without_hook(code, limits, backend)
    return await Sandbox(limits, backend=backend).run(code)  # type: ignore[arg-type]


def child_processes() -> list[int]:
    """This process's children (every thread's)."""
    found: list[int] = []
    for tid in os.listdir("/proc/self/task"):
        try:
            with open(f"/proc/self/task/{tid}/children", encoding="ascii") as fh:
                found += [int(c) for c in fh.read().split()]
        except OSError:
            pass
    return found


def processes_of_uid(uid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if os.stat(f"/proc/{entry}").st_uid == uid:
                    found.append(int(entry))
            except OSError:
                pass
    return found


def sandbox_processes() -> list[int]:
    """Processes running under a per-execution uid of *this* test process (see _identity)."""
    first = UID_BASE + ((os.getpid() & ((1 << 22) - 1)) << 7)
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if first <= os.stat(f"/proc/{entry}").st_uid < first + SLOTS:
                    found.append(int(entry))
            except OSError:
                pass
    return found


def assert_group_gone(result: SandboxResult) -> None:
    with pytest.raises(ProcessLookupError):
        os.killpg(result.pid, 0)
    if result.uid >= UID_BASE:
        assert processes_of_uid(result.uid) == []


@pytest.fixture(scope="session")
def kernel_isolation() -> bool:
    """Whether this host gives the sandbox network + mount namespaces (else: fallback mode)."""
    result = Sandbox(FAST, backend="process").run_sync("pass")
    assert result.ok, result.stderr
    return bool(result.network == "namespace" and result.filesystem == "mount-namespace")


@pytest.fixture
def needs_kernel_isolation(kernel_isolation: bool) -> None:
    if not kernel_isolation:
        pytest.skip("namespaces are not available here: only the fallback layers apply")


@pytest.fixture(params=["process", "gvisor"])
def sandbox_backend(request: pytest.FixtureRequest) -> str:
    """Each available backend (gVisor only where ``runsc`` is installed and passes its check)."""
    if request.param == "gvisor" and not gvisor_available():
        pytest.skip("gVisor (runsc) is not installed here, or failed its self-check")
    return str(request.param)
