"""Why a sandboxed process died: a pure function of what the parent observed."""

from __future__ import annotations

import re
import signal

from .result import KilledReason

__all__ = ["classify", "gvisor_exit_code"]

_TAIL = 4096
_MEMORY = re.compile(r"^MemoryError\b|Cannot allocate memory|out of memory", re.M | re.I)
_FILE_SIZE = re.compile(r"File too large|\[Errno 27\]|EFBIG")
_DISK = re.compile(r"No space left on device|\[Errno 28\]|ENOSPC")
_PROCESSES = re.compile(
    r"^BlockingIOError\b.*Resource temporarily unavailable|can't start new thread|"
    r"\[Errno 11\] Resource temporarily unavailable",
    re.M,
)


def classify(
    *,
    killed_by_parent: KilledReason | None,
    exit_code: int,
    signum: int | None,
    cpu_s: float,
    cpu_limit: int,
    stderr_tail: str,
    disk_full: bool = False,
) -> KilledReason | None:
    """Map an exit to a :data:`KilledReason`.

    ``disk_full``: the launcher found the scratch tmpfs full once the code had ended (measured
    outside the code's reach). The stderr tail is written by the untrusted code itself, so it
    can only make the code's own result look different; it is never used to decide anything on
    the parent's side.
    """
    if killed_by_parent is not None:
        return killed_by_parent
    tail = stderr_tail[-_TAIL:]
    if signum is not None:
        if signum == signal.SIGXCPU:
            return "cpu"
        if signum == signal.SIGXFSZ:
            return "file_size"
        if signum == signal.SIGBUS and disk_full:
            return "disk"  # a page of a mapped file the full tmpfs could not supply
        if signum == signal.SIGKILL and cpu_s >= cpu_limit * 0.5:
            # The hard RLIMIT_CPU (SIGXCPU is ignored by a PID-namespace init, which nothing
            # inside its namespace can SIGKILL). On a loaded virtual machine the kernel was seen
            # to fire it when the usage it reports (rusage and schedstat alike) read only
            # 77-90% of the limit, hence the margin.
            return "cpu"
        if signum in (signal.SIGKILL, signal.SIGSEGV, signal.SIGABRT, signal.SIGBUS) and (
            _MEMORY.search(tail)
        ):
            return "memory"
        return "killed"
    if exit_code == 0:
        return None
    last = _last_exception_line(tail)
    if last.startswith("MemoryError") or (not last and _MEMORY.search(tail)):
        return "memory"
    if _FILE_SIZE.search(last):
        return "file_size"
    if _PROCESSES.search(last):
        return "processes"
    if disk_full or _DISK.search(last):
        return "disk"
    return None


def gvisor_exit_code(closing: dict[str, object], runsc_exit: int) -> int:
    """The code's exit status under gVisor: ``-N`` for a death by signal N, as elsewhere.

    The launcher inside the sandbox reports the code's own status in its closing line. Without
    that line (the kill reached the sandbox before its launcher could report, e.g. a wall-clock
    kill during a slow gVisor start), only runsc's status is left, and runsc reports a death by
    signal N as ``128 + N``.
    """
    reported = closing.get("exit")
    if isinstance(reported, int):
        return reported
    if 128 < runsc_exit < 128 + signal.NSIG:
        return 128 - runsc_exit
    return runsc_exit


def _last_exception_line(tail: str) -> str:
    for line in reversed(tail.splitlines()):
        if line and not line[0].isspace():
            return line
    return ""
