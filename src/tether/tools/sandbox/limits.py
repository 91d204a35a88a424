"""Resource limits of one sandboxed execution (validated, immutable)."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

from tether.core.errors import ConfigurationError

__all__ = ["SandboxLimits"]

KiB = 1024
MiB = 1024 * KiB
GiB = 1024 * MiB

# (minimum, maximum, why the minimum) per integer field.
_INT_BOUNDS: dict[str, tuple[int, int, str]] = {
    "cpu_seconds": (1, 86_400, "RLIMIT_CPU counts whole seconds"),
    "memory_bytes": (32 * MiB, 1 << 46, "the interpreter alone maps ~15 MiB of address space"),
    "max_open_files": (16, 1 << 20, "the interpreter needs a few descriptors to start"),
    "max_processes": (1, 1 << 16, "the sandboxed interpreter itself is one task"),
    "max_output_bytes": (1, 1 * GiB, "output is captured in the parent's memory"),
    "max_file_bytes": (0, 1 << 46, "0 forbids writing any file content"),
    "max_collected_files": (0, 100_000, "0 returns no files"),
    "max_collected_bytes": (0, 1 * GiB, "0 returns no file content"),
    "max_disk_bytes": (64 * KiB, 1 << 40, "tmpfs counts whole pages; size 0 would mean no limit"),
    "max_disk_files": (1, 10_000_000, "1 lets the code create a single file"),
}


@dataclass(frozen=True, slots=True)
class SandboxLimits:
    """What one execution may consume; every limit is enforced by the kernel or by the parent.

    * ``cpu_seconds``: CPU time (user + system) of the sandboxed process, ``RLIMIT_CPU``;
      SIGXCPU at the limit, SIGKILL one second later.
    * ``memory_bytes``: address space, ``RLIMIT_AS`` (allocations beyond it fail: MemoryError).
    * ``max_open_files``: ``RLIMIT_NOFILE``.
    * ``max_processes``: ``RLIMIT_NPROC`` (tasks, threads included, of the sandbox uid).
    * ``max_output_bytes``: per stream (stdout and stderr each); beyond it the output is
      truncated, flagged, and the process group is killed (reason ``"output"``).
    * ``wall_seconds``: wall-clock limit enforced by the parent (SIGKILL, reason ``"timeout"``).
    * ``max_file_bytes``: largest file the code may write, ``RLIMIT_FSIZE``.
    * ``max_collected_files`` / ``max_collected_bytes``: how much of what the code left in its
      scratch directory is returned in :attr:`SandboxResult.files`.
    * ``max_disk_bytes`` / ``max_disk_files``: the whole scratch directory, input files
      included: space (whole 4 KiB pages per file) and entries (files, directories, links). The
      scratch directory is a tmpfs of that size in the sandbox's mount namespace (memory, never
      the host's disk or inodes): a write beyond it fails with ENOSPC, and a program that
      ends in error with it full is classified ``"disk"``. Without a mount namespace
      (``allow_weak_isolation``) the parent measures it every 50 ms and kills the code over
      either limit (``"disk"``: not a hard bound, what the code writes between two looks is
      the overshoot); under gVisor the entries are counted that way too (its tmpfs caps only
      the bytes). See the package docstring.
    """

    cpu_seconds: int = 10
    memory_bytes: int = 512 * MiB
    max_open_files: int = 64
    max_processes: int = 16
    max_output_bytes: int = 1 * MiB
    wall_seconds: float = 30.0
    max_file_bytes: int = 16 * MiB
    max_collected_files: int = 64
    max_collected_bytes: int = 8 * MiB
    max_disk_bytes: int = 64 * MiB
    max_disk_files: int = 4096

    def __post_init__(self) -> None:
        for name, (lo, hi, why) in _INT_BOUNDS.items():
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int):
                raise ConfigurationError(
                    f"SandboxLimits.{name} must be an int, got {type(value).__name__} "
                    f"{value!r}; e.g. SandboxLimits({name}={max(lo, 1)})"
                )
            if not lo <= value <= hi:
                raise ConfigurationError(
                    f"SandboxLimits.{name} must be between {lo} and {hi} ({why}); got {value}"
                )
        wall = self.wall_seconds
        if isinstance(wall, bool) or not isinstance(wall, int | float):
            raise ConfigurationError(
                f"SandboxLimits.wall_seconds must be a number of seconds, got "
                f"{type(wall).__name__} {wall!r}; e.g. SandboxLimits(wall_seconds=30)"
            )
        if not math.isfinite(wall) or not 0 < wall <= 86_400:
            raise ConfigurationError(
                f"SandboxLimits.wall_seconds must be > 0 and <= 86400; got {wall}"
            )

    def replace(self, **changes: Any) -> SandboxLimits:
        """A copy with some fields changed (validated again)."""
        unknown = set(changes) - {f.name for f in dataclasses.fields(self)}
        if unknown:
            raise ConfigurationError(
                f"unknown SandboxLimits field(s) {sorted(unknown)}; "
                f"known: {[f.name for f in dataclasses.fields(self)]}"
            )
        return dataclasses.replace(self, **changes)
