"""Public entry points: :class:`Sandbox`, :func:`run_python` and their sync twins."""

from __future__ import annotations

import asyncio
import dataclasses
import shutil
from collections.abc import Mapping, Sequence
from typing import Literal, get_args

from tether.core.errors import ConfigurationError

from ._gvisor import gvisor_available, gvisor_failure, run_sync
from ._scratch import check_fits, normalize_files
from .limits import SandboxLimits
from .result import SandboxError, SandboxResult
from .runner import LaunchSpec, execute

__all__ = [
    "DEFAULT_HIDDEN_PATHS",
    "Backend",
    "Sandbox",
    "gvisor_available",
    "run_python",
    "run_python_sync",
]

Backend = Literal["auto", "process", "gvisor"]

DEFAULT_HIDDEN_PATHS: tuple[str, ...] = (
    "/tmp",
    "/var/tmp",
    "/dev/shm",
    "/run",
    "/var/run",
    "/root",
    "/home",
    "/mnt",
    "/media",
)
"""Directories replaced by an empty read-only tmpfs in the sandbox's mount namespace (the
interpreter's own directories and the scratch directory are bound back in): world-writable
places, host sockets under /run, and home directories."""

GVISOR_INSTALL_HINT = (
    "install gVisor's `runsc` and put it on PATH (https://gvisor.dev/docs/user_guide/install/), "
    "or use backend='auto' (gVisor when available, else the process sandbox) or 'process'"
)


def _check_backend_name(backend: str) -> None:
    if backend not in get_args(Backend):
        raise ConfigurationError(
            f"unknown sandbox backend {backend!r}; use one of {list(get_args(Backend))}"
        )
    if backend == "gvisor" and shutil.which("runsc") is None:
        raise ConfigurationError(
            f"backend='gvisor' needs `runsc`, not found on PATH; {GVISOR_INSTALL_HINT}"
        )


def _resolve_backend(backend: str) -> str | None:
    """The runsc path for the gVisor backend, or None for the process backend. ``"auto"`` picks
    gVisor only once it passed its self-check here (blocking: call it off the event loop)."""
    _check_backend_name(backend)
    if backend == "process":
        return None
    runsc = shutil.which("runsc")
    if runsc is None:
        if backend == "gvisor":  # removed from PATH since the check above
            raise ConfigurationError(f"backend='gvisor' needs `runsc`; {GVISOR_INSTALL_HINT}")
        return None
    failure = gvisor_failure(runsc)
    if failure is None:
        return runsc
    if backend == "gvisor":
        raise SandboxError(
            f"backend='gvisor': {runsc} failed its self-check on this machine ({failure}); "
            "fix the gVisor installation or use backend='process'"
        )
    return None


class Sandbox:
    """Runs untrusted Python code, one fresh isolated process per call.

    Holds defaults (limits, backend, identity, hidden paths); every call may override the
    limits. See the package docstring for exactly what is isolated and how.

    * ``backend``: ``"auto"`` (gVisor when ``runsc`` is on PATH *and* passed a self-check on
      this machine, else the process sandbox), ``"process"`` or ``"gvisor"``
      (ConfigurationError when ``runsc`` is missing, SandboxError when it fails the check).
    * ``allow_weak_isolation``: where the kernel refuses namespaces, the process backend
      raises :class:`WeakIsolationError` unless this is True (then it runs behind the audit
      hook, file permissions and rlimits only, and says so in the result).
    * ``uid`` / ``gid``: run as this unprivileged identity (root only). Default: a fresh uid per
      execution when running as root, the current user otherwise.
    * ``hidden_paths``: directories hidden from the code (see :data:`DEFAULT_HIDDEN_PATHS`).
    """

    def __init__(
        self,
        limits: SandboxLimits | None = None,
        *,
        backend: Backend = "auto",
        uid: int | None = None,
        gid: int | None = None,
        hidden_paths: Sequence[str] = DEFAULT_HIDDEN_PATHS,
        allow_weak_isolation: bool = False,
    ) -> None:
        if limits is not None and not isinstance(limits, SandboxLimits):
            raise ConfigurationError(
                f"limits must be a SandboxLimits, got {type(limits).__name__}; "
                "e.g. SandboxLimits(cpu_seconds=5, wall_seconds=10)"
            )
        _check_backend_name(backend)  # fail early on a bad name or a missing runsc
        if not isinstance(allow_weak_isolation, bool):
            raise ConfigurationError(
                f"allow_weak_isolation must be a bool, got {allow_weak_isolation!r}"
            )
        if isinstance(hidden_paths, str) or not all(
            isinstance(p, str) and p.startswith("/") for p in hidden_paths
        ):
            raise ConfigurationError(
                f"hidden_paths must be a sequence of absolute paths, got {hidden_paths!r}"
            )
        self.limits = limits or SandboxLimits()
        self.backend: Backend = backend
        self.uid = uid
        self.gid = gid
        self.hidden_paths = tuple(hidden_paths)
        self.allow_weak_isolation = allow_weak_isolation

    def _spec(
        self,
        code: str,
        limits: SandboxLimits | None,
        files: Mapping[str, str | bytes] | None,
        stdin: str | None,
        audit_hook: bool = True,
        runsc: str | None = None,
    ) -> LaunchSpec:
        if not isinstance(code, str):
            raise ConfigurationError(
                f"code must be a str of Python source, got {type(code).__name__}"
            )
        if limits is not None and not isinstance(limits, SandboxLimits):
            raise ConfigurationError(f"limits must be a SandboxLimits, got {type(limits).__name__}")
        if stdin is not None and not isinstance(stdin, str):
            raise ConfigurationError(f"stdin must be a str or None, got {type(stdin).__name__}")
        limits = limits or self.limits
        inputs = normalize_files(files)
        check_fits(inputs, limits)
        return LaunchSpec(
            code=code,
            limits=limits,
            files=inputs,
            stdin=stdin.encode("utf-8") if stdin is not None else None,
            runsc=runsc,
            uid=self.uid,
            gid=self.gid,
            hidden_paths=self.hidden_paths,
            audit_hook=audit_hook,
            allow_weak_isolation=self.allow_weak_isolation,
        )

    async def run(
        self,
        code: str,
        *,
        limits: SandboxLimits | None = None,
        files: Mapping[str, str | bytes] | None = None,
        stdin: str | None = None,
    ) -> SandboxResult:
        """Run ``code`` as ``__main__`` in a fresh sandbox.

        ``files`` are created in the scratch directory (the code's cwd) first; ``stdin`` is
        its standard input. Cancelling the call kills the execution.
        """
        spec = self._spec(code, limits, files, stdin)
        runsc = await asyncio.to_thread(_resolve_backend, self.backend)
        return await execute(dataclasses.replace(spec, runsc=runsc))

    def run_sync(
        self,
        code: str,
        *,
        limits: SandboxLimits | None = None,
        files: Mapping[str, str | bytes] | None = None,
        stdin: str | None = None,
    ) -> SandboxResult:
        """Blocking twin of :meth:`run`."""
        spec = self._spec(code, limits, files, stdin, runsc=_resolve_backend(self.backend))
        return run_sync(lambda: execute(spec))


async def run_python(
    code: str,
    *,
    limits: SandboxLimits | None = None,
    files: Mapping[str, str | bytes] | None = None,
    stdin: str | None = None,
    backend: Backend = "auto",
    allow_weak_isolation: bool = False,
) -> SandboxResult:
    """Run untrusted ``code`` in a fresh sandbox with default settings (see :class:`Sandbox`)."""
    box = Sandbox(backend=backend, allow_weak_isolation=allow_weak_isolation)
    return await box.run(code, limits=limits, files=files, stdin=stdin)


def run_python_sync(
    code: str,
    *,
    limits: SandboxLimits | None = None,
    files: Mapping[str, str | bytes] | None = None,
    stdin: str | None = None,
    backend: Backend = "auto",
    allow_weak_isolation: bool = False,
) -> SandboxResult:
    """Blocking twin of :func:`run_python`."""
    box = Sandbox(backend=backend, allow_weak_isolation=allow_weak_isolation)
    return box.run_sync(code, limits=limits, files=files, stdin=stdin)
