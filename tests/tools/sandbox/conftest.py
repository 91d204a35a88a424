"""Shared helpers for the sandbox tests (real processes, no mocks)."""

from __future__ import annotations

import os
import sys

import pytest

from tether.tools.sandbox import Sandbox, SandboxLimits, SandboxResult
from tether.tools.sandbox._identity import SLOTS, UID_BASE
from tether.tools.sandbox.runner import execute

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


async def run_without_hook(code: str, limits: SandboxLimits = FAST) -> SandboxResult:
    """Test-only: the same sandbox minus the audit hook, to prove the kernel layers alone."""
    return await execute(Sandbox(limits)._spec(code, None, None, None, audit_hook=False))


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
    result = Sandbox(FAST).run_sync("pass")
    assert result.ok, result.stderr
    return bool(result.network == "namespace" and result.filesystem == "mount-namespace")


@pytest.fixture
def needs_kernel_isolation(kernel_isolation: bool) -> None:
    if not kernel_isolation:
        pytest.skip("namespaces are not available here: only the fallback layers apply")



@pytest.fixture(params=["process"])
def sandbox_backend(request: pytest.FixtureRequest) -> str:
    """Each available backend."""
    return str(request.param)
