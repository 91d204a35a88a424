"""The outcome of one sandboxed execution, and the sandbox's own error."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from tether.core.errors import TetherError

__all__ = [
    "FilesystemIsolation",
    "KilledReason",
    "NetworkIsolation",
    "SandboxError",
    "SandboxResult",
    "WeakIsolationError",
]

KilledReason = Literal[
    "timeout", "cpu", "memory", "output", "file_size", "disk", "processes", "killed"
]
"""Why the code did not finish normally (None in :class:`SandboxResult` when it did)."""

NetworkIsolation = Literal["namespace", "audit-hook", "gvisor", "none"]
"""Which layer kept the code off the network: an empty network namespace (kernel), only the
in-process audit hook (weaker), or gVisor. ``"none"`` is never produced by the public API."""

FilesystemIsolation = Literal["mount-namespace", "permissions", "audit-hook", "gvisor", "none"]
"""Which layer kept the code from writing outside its scratch directory: a private mount
namespace with everything but scratch read-only (kernel), file permissions of the unprivileged
sandbox uid (kernel, but world-writable places stay writable), only the audit hook, or gVisor."""


class SandboxError(TetherError):
    """The sandbox itself could not be set up (never raised for what the code did)."""


class WeakIsolationError(SandboxError):
    """The kernel isolation (network, mount and PID namespaces) is unavailable on this host and
    the caller did not accept the weaker fallback (``allow_weak_isolation=True``).

    ``reasons`` lists what failed (e.g. ``"unshare(CLONE_NEWNET|...) failed: Operation not
    permitted"``)."""

    def __init__(self, message: str, reasons: list[str]) -> None:
        super().__init__(message)
        self.reasons = reasons


@dataclass(frozen=True, slots=True)
class SandboxResult:
    """What happened when the code ran.

    ``exit_code`` follows :mod:`subprocess`: ``-N`` when the process died of signal N (``signal``
    then holds its name, e.g. ``"SIGKILL"``). ``killed_reason`` says why it did not finish on its
    own terms; a Python exception that ends the program is *not* a kill (``exit_code`` 1,
    ``killed_reason`` None) unless it is the symptom of a limit (MemoryError → ``"memory"``,
    EFBIG → ``"file_size"``, ENOSPC or a full scratch directory → ``"disk"``, EAGAIN on
    fork/thread start → ``"processes"``); a kill over the disk limit is ``"disk"`` too.
    """

    stdout: str
    stderr: str
    exit_code: int
    signal: str | None
    killed_reason: KilledReason | None
    duration_s: float
    cpu_s: float
    max_rss_bytes: int
    stdout_truncated: bool
    stderr_truncated: bool
    network: NetworkIsolation
    filesystem: FilesystemIsolation
    files: dict[str, bytes] = field(default_factory=dict)
    files_truncated: bool = False
    pid: int = 0
    """Host pid of the launcher, also the id of the execution's process group."""
    uid: int = -1
    """The uid the code ran as."""

    @property
    def ok(self) -> bool:
        """True when the code exited 0 on its own, within every limit."""
        return self.exit_code == 0 and self.killed_reason is None and not self.truncated

    @property
    def truncated(self) -> bool:
        return self.stdout_truncated or self.stderr_truncated
