"""What one execution is (:class:`LaunchSpec`) and the private work directory it runs from."""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from . import audithook as _audithook
from . import collect as _collect
from . import launcher as _launcher
from . import mounts as _mounts
from . import scratchfs as _scratchfs
from ._identity import Identity
from ._scratch import write_files
from .limits import SandboxLimits

__all__ = [
    "DISABLE_NAMESPACES_ENV",
    "SAFE_PATH",
    "LaunchSpec",
    "Workdir",
    "interpreter",
    "prepare",
    "sandbox_env",
]

SAFE_PATH = "/usr/local/bin:/usr/bin:/bin"

DISABLE_NAMESPACES_ENV = "TETHER_SANDBOX_DISABLE_NAMESPACES"
"""Set to 1 to make the launcher behave as if the kernel refused every namespace (tests)."""


@dataclass(frozen=True, slots=True)
class LaunchSpec:
    code: str
    limits: SandboxLimits
    files: dict[str, bytes]
    stdin: bytes | None
    runsc: str | None
    """Absolute path of ``runsc`` when the gVisor backend is used."""
    uid: int | None
    gid: int | None
    hidden_paths: tuple[str, ...]
    audit_hook: bool = True
    allow_weak_isolation: bool = False


@dataclass(slots=True)
class Workdir:
    base: str
    scratch: str
    launcher: str
    config: str
    stdin: str | None


def _launcher_source() -> bytes:
    return Path(_launcher.__file__).read_bytes()


def _sibling_sources() -> dict[str, bytes]:
    """The modules the launcher loads by path, copied next to it."""
    return {
        f"{m.__name__.rsplit('.', 1)[1]}.py": Path(m.__file__ or "").read_bytes()
        for m in (_audithook, _collect, _mounts, _scratchfs)
    }


def interpreter() -> str:
    return os.path.realpath(sys.executable)


def _rlimits(limits: SandboxLimits) -> dict[str, list[int]]:
    return {
        "cpu": [limits.cpu_seconds, limits.cpu_seconds + 1],
        "as": [limits.memory_bytes, limits.memory_bytes],
        "nofile": [limits.max_open_files, limits.max_open_files],
        "nproc": [limits.max_processes, limits.max_processes],
        "fsize": [limits.max_file_bytes, limits.max_file_bytes],
        "core": [0, 0],
    }


def prepare(spec: LaunchSpec, who: Identity, namespaces: bool) -> Workdir:
    """Private work directory: launcher, code, config (root-owned) and the scratch dir."""
    base = tempfile.mkdtemp(prefix="tether-sandbox-")
    try:
        os.chmod(base, 0o711)  # crossable, not listable
        scratch = os.path.join(base, "scratch")
        os.mkdir(scratch, 0o700)
        if os.geteuid() == 0:
            os.chown(scratch, who.uid, who.gid)
        write_files(scratch, spec.files, who.uid, who.gid)

        def put(name: str, data: bytes, mode: int) -> str:
            path = os.path.join(base, name)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
            return path

        launcher = put("launcher.py", _launcher_source(), 0o644)
        for name, source in _sibling_sources().items():
            put(name, source, 0o644)
        code = put("main.py", spec.code.encode("utf-8", "surrogatepass"), 0o644)
        stdin = put("stdin", spec.stdin, 0o600) if spec.stdin is not None else None
        python = interpreter()
        keep = {base, os.path.dirname(python)}
        keep.update(os.path.realpath(p) for p in (sys.base_prefix, sys.base_exec_prefix))
        hide = set(spec.hidden_paths) | {tempfile.gettempdir(), os.path.dirname(base)}
        config = {
            "python": python,
            "launcher": launcher,
            "code": code,
            "scratch": scratch,
            "uid": who.uid,
            "gid": who.gid,
            "rlimits": _rlimits(spec.limits),
            "namespaces": namespaces,
            "audit_hook": spec.audit_hook,
            "keep": sorted(keep),
            "hide": sorted(hide),
            "env": sandbox_env(scratch),
            "parent_pid": None if spec.runsc else os.getpid(),
            "gvisor": spec.runsc is not None,
            "host_release": os.uname().release,
            "collect": [spec.limits.max_collected_files, spec.limits.max_collected_bytes],
            "disk": [spec.limits.max_disk_bytes, spec.limits.max_disk_files],
            "require_isolation": spec.runsc is None and not spec.allow_weak_isolation,
            "simulate_no_namespaces": os.environ.get(DISABLE_NAMESPACES_ENV) == "1",
        }
        cfg_path = put("config.json", json.dumps(config).encode(), 0o644)
        return Workdir(base, scratch, launcher, cfg_path, stdin)
    except BaseException:
        shutil.rmtree(base, ignore_errors=True)
        raise


def sandbox_env(scratch: str) -> dict[str, str]:
    """The whole environment of the sandbox: nothing of the host's."""
    return {
        "PATH": SAFE_PATH,
        "HOME": scratch,
        "TMPDIR": scratch,
        "LANG": "C.UTF-8",
        "PYTHONIOENCODING": "utf-8",
        # glibc reserves 64 MiB of address space per thread arena; RLIMIT_AS would make a
        # handful of threads fail with MemoryError without this.
        "MALLOC_ARENA_MAX": "2",
    }
