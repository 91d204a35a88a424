"""In-child bootstrap of the tether sandbox.

This file is copied next to each execution and run by a fresh interpreter
(``python -I -S -B -u launcher.py CONFIG``). It imports only the standard library and nothing of
tether, so it works with no site-packages at all. It has three stages:

``outer`` (root, or the caller's uid)
    Closes inherited descriptors, arms ``PR_SET_PDEATHSIG``, unshares the network, mount and PID
    namespaces (plus a user namespace when not root), forks the ``inner`` stage, waits for it
    and mirrors its death (same exit code, same signal). On SIGTERM from the parent it SIGKILLs
    the inner stage, which takes the whole PID namespace down with it.

``inner`` (PID 1 of the new PID namespace, still privileged)
    Builds the filesystem view (tmpfs over hidden directories, the interpreter and the scratch
    directory bound back, everything read-only but scratch, a fresh read-only ``/proc``), sets
    the rlimits, drops to the sandbox uid/gid with no supplementary groups, sets
    ``no_new_privs``, and ``execve``\\ s the ``user`` stage: the unprivileged interpreter is a new
    image that never loaded ctypes and holds no capability.

``user`` (unprivileged)
    Pre-imports and neuters ``_posixsubprocess``, installs the audit hook, closes the status
    descriptor and runs the code as ``__main__``.

Each stage reports one JSON line on descriptor 3 (the parent's status pipe). A setup failure is
reported as ``{"fatal": ...}`` and exits with :data:`SETUP_FAILED` before any user code runs.
"""

from __future__ import annotations

import contextlib
import errno
import io
import json
import os
import signal
import stat
import sys
from collections.abc import Iterable, Sequence
from types import TracebackType
from typing import Any

STATUS_FD = 3
SETUP_FAILED = 121

# unshare(2) / mount(2) constants (linux/sched.h, linux/mount.h)
CLONE_NEWNS = 0x00020000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000
MS_RDONLY = 0x1
MS_NOSUID = 0x2
MS_NODEV = 0x4
MS_NOEXEC = 0x8
MS_REMOUNT = 0x20
MS_BIND = 0x1000
MS_REC = 0x4000
MS_PRIVATE = 0x40000
MOUNT_ATTR_RDONLY = 0x1
MOUNT_ATTR_NOSUID = 0x2
MOUNT_ATTR_NODEV = 0x4
MOUNT_ATTR_NOEXEC = 0x8
AT_FDCWD = -100
AT_RECURSIVE = 0x8000
SYS_MOUNT_SETATTR = 442  # same number on every architecture with the generic syscall table
PR_SET_PDEATHSIG = 1
PR_SET_NO_NEW_PRIVS = 38

_child_pid = 0


def _report(**fields: Any) -> None:
    with contextlib.suppress(OSError):
        os.write(STATUS_FD, (json.dumps(fields) + "\n").encode())


def _fatal(message: str) -> None:
    _report(fatal=message)
    os._exit(SETUP_FAILED)


def _load_config(path: str) -> dict[str, Any]:
    with open(path, encoding="utf-8") as fh:
        config: dict[str, Any] = json.load(fh)
    return config


# --------------------------------------------------------------------------- privileged helpers


class _Libc:
    """The few libc calls Python 3.11's os module lacks, through ctypes (privileged stages only)."""

    def __init__(self) -> None:
        import ctypes

        self._ctypes = ctypes
        lib = ctypes.CDLL(None, use_errno=True)
        lib.unshare.argtypes = [ctypes.c_int]
        lib.mount.argtypes = [
            ctypes.c_char_p,
            ctypes.c_char_p,
            ctypes.c_char_p,
            ctypes.c_ulong,
            ctypes.c_char_p,
        ]
        lib.prctl.argtypes = [ctypes.c_int] + [ctypes.c_ulong] * 4
        lib.syscall.restype = ctypes.c_long
        self._lib = lib

        class MountAttr(ctypes.Structure):
            _fields_ = [
                ("attr_set", ctypes.c_uint64),
                ("attr_clr", ctypes.c_uint64),
                ("propagation", ctypes.c_uint64),
                ("userns_fd", ctypes.c_uint64),
            ]

        self._mount_attr = MountAttr

    def _check(self, rc: int, what: str) -> None:
        if rc != 0:
            err = self._ctypes.get_errno()
            raise OSError(err, f"{what}: {os.strerror(err)}")

    def unshare(self, flags: int) -> None:
        self._check(self._lib.unshare(flags), f"unshare({flags:#x})")

    def prctl(self, option: int, arg: int) -> None:
        self._check(self._lib.prctl(option, arg, 0, 0, 0), f"prctl({option})")

    def mount(
        self, source: str | None, target: str, fstype: str | None, flags: int, data: str = ""
    ) -> None:
        rc = self._lib.mount(
            source.encode() if source is not None else None,
            target.encode(),
            fstype.encode() if fstype is not None else None,
            flags,
            data.encode() if data else None,
        )
        self._check(rc, f"mount {source} -> {target}")

    def mount_setattr(self, path: str, recursive: bool, set_: int = 0, clear: int = 0) -> None:
        attr = self._mount_attr(set_, clear, 0, 0)
        rc = self._lib.syscall(
            SYS_MOUNT_SETATTR,
            AT_FDCWD,
            path.encode(),
            AT_RECURSIVE if recursive else 0,
            self._ctypes.byref(attr),
            self._ctypes.sizeof(attr),
        )
        self._check(int(rc), f"mount_setattr {path}")


def _write_file(path: str, text: str) -> None:
    fd = os.open(path, os.O_WRONLY)
    try:
        os.write(fd, text.encode())
    finally:
        os.close(fd)


def _can_traverse(path: str, uid: int, gid: int) -> bool:
    try:
        st = os.stat(path)
    except OSError:
        return False
    if uid == 0:
        return True
    if st.st_uid == uid:
        return bool(st.st_mode & stat.S_IXUSR)
    if st.st_gid == gid:
        return bool(st.st_mode & stat.S_IXGRP)
    return bool(st.st_mode & stat.S_IXOTH)


def _ancestors(path: str) -> list[str]:
    out: list[str] = []
    head = os.path.dirname(path)
    while head and head != "/":
        out.append(head)
        head = os.path.dirname(head)
    return out[::-1]


def _under(path: str, root: str) -> bool:
    return path != root and path.startswith(root.rstrip("/") + "/")


def _real_dirs(paths: Iterable[str]) -> list[str]:
    out: list[str] = []
    for p in paths:
        try:
            if stat.S_ISDIR(os.lstat(p).st_mode):
                out.append(os.path.realpath(p))
        except OSError:
            continue
    return out


def _mask(libc: _Libc, hidden: str, keep: Sequence[str]) -> None:
    """Cover ``hidden`` with an empty tmpfs, then bind the ``keep`` directories back into it."""
    fd = os.open(hidden, os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW)
    try:
        libc.mount("tmpfs", hidden, "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755,size=64k")
        for k in keep:
            rel = os.path.relpath(k, hidden)
            target = os.path.join(hidden, rel)
            os.makedirs(target, exist_ok=True)
            libc.mount(f"/proc/self/fd/{fd}/{rel}", target, None, MS_BIND | MS_REC)
    finally:
        os.close(fd)


def _read_only_everything(libc: _Libc, scratch: str) -> None:
    libc.mount(scratch, scratch, None, MS_BIND | MS_REC)
    try:
        libc.mount_setattr("/", True, set_=MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID)
        libc.mount_setattr(
            scratch,
            False,
            set_=MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC,
            clear=MOUNT_ATTR_RDONLY,
        )
        return
    except OSError as exc:
        if exc.errno not in (errno.ENOSYS, errno.EINVAL):
            raise
    # Kernels before 5.12: remount every mount point read-only, one by one.
    with open("/proc/self/mountinfo", encoding="utf-8") as fh:
        lines = fh.read().splitlines()
    for line in lines:
        fields = line.split()
        point = fields[4].encode().decode("unicode_escape")
        opts = fields[5].split(",")
        flags = MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID
        flags |= MS_NODEV if "nodev" in opts else 0
        flags |= MS_NOEXEC if "noexec" in opts else 0
        if point != scratch:
            libc.mount(None, point, None, flags)
    libc.mount(None, scratch, None, MS_REMOUNT | MS_BIND | MS_NOSUID | MS_NODEV | MS_NOEXEC)


def _build_filesystem(libc: _Libc, cfg: dict[str, Any], new_proc: bool) -> list[str]:
    """Private mount tree: hidden dirs masked, everything read-only except scratch.

    Returns warnings about optional parts that failed; raises if the tree is not read-only.
    """
    warnings: list[str] = []
    uid, gid = int(cfg["uid"]), int(cfg["gid"])
    scratch = os.path.realpath(cfg["scratch"])
    libc.mount(None, "/", None, MS_REC | MS_PRIVATE)
    keep = _real_dirs(cfg["keep"])
    hidden = set(_real_dirs(cfg["hide"]))
    for k in keep:  # directories on the way to a kept path that the sandbox uid cannot cross
        hidden.update(a for a in _ancestors(k) if not _can_traverse(a, uid, gid))
    hidden.discard("/")
    masked: list[str] = []
    for h in sorted(hidden, key=lambda p: p.count("/")):
        if any(h == k or _under(h, k) for k in keep):
            continue  # never mask a kept directory or something inside one
        if any(_under(h, m) for m in masked):
            continue  # already hidden by an outer mask
        inner = [k for k in keep if _under(k, h)]
        outermost = [k for k in inner if not any(_under(k, o) for o in inner)]
        _mask(libc, h, outermost)
        masked.append(h)
    if new_proc:
        try:
            libc.mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_RDONLY)
        except OSError as exc:
            warnings.append(f"fresh /proc: {exc}")
    _read_only_everything(libc, scratch)
    return warnings


def _count_tasks(uid: int) -> int:
    """Tasks (threads included) whose real uid is ``uid``: what RLIMIT_NPROC counts."""
    count = 0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            if os.stat(f"/proc/{entry}").st_uid == uid:
                count += len(os.listdir(f"/proc/{entry}/task"))
        except OSError:
            continue
    return count


def _set_rlimits(cfg: dict[str, Any], shared_uid: bool, pid_init: bool) -> None:
    import resource

    names = {
        "cpu": resource.RLIMIT_CPU,
        "as": resource.RLIMIT_AS,
        "nofile": resource.RLIMIT_NOFILE,
        "nproc": resource.RLIMIT_NPROC,
        "fsize": resource.RLIMIT_FSIZE,
        "core": resource.RLIMIT_CORE,
    }
    for name, (soft, hard) in cfg["rlimits"].items():
        soft, hard = int(soft), int(hard)
        if name == "cpu" and pid_init:
            # The code will be PID 1 of its namespace, which ignores SIGXCPU: SIGKILL right at
            # the limit instead of one second later.
            hard = soft
        if name == "nproc" and shared_uid:
            # Not root and no user namespace: the count includes the caller's own processes.
            extra = _count_tasks(os.getuid())
            soft, hard = soft + extra, hard + extra
        resource.setrlimit(names[name], (soft, hard))


def _drop_privileges(libc: _Libc, uid: int, gid: int) -> None:
    if os.geteuid() == 0 and uid != 0:
        os.setgroups([])
        os.setresgid(gid, gid, gid)
        os.setresuid(uid, uid, uid)
        if os.getresuid() != (uid, uid, uid) or os.getresgid() != (gid, gid, gid):
            raise OSError(errno.EPERM, "could not drop to the sandbox uid/gid")
    libc.prctl(PR_SET_NO_NEW_PRIVS, 1)
    # After the credential change: it clears the parent-death signal.
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def _inner(cfg: dict[str, Any], cfg_path: str, libc: _Libc, ns: dict[str, bool]) -> None:
    """Privileged setup then execve of the user stage. Never returns."""
    try:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        errors: list[str] = []
        filesystem = "none"
        if ns["mount"]:
            try:
                errors += _build_filesystem(libc, cfg, new_proc=ns["pid"])
                filesystem = "mount-namespace"
            except OSError as exc:
                errors.append(f"filesystem view: {exc}")
        _set_rlimits(cfg, shared_uid=os.geteuid() != 0 and not ns["user"], pid_init=ns["pid"])
        _drop_privileges(libc, int(cfg["uid"]), int(cfg["gid"]))
        os.chdir(cfg["scratch"])
        _report(
            stage="inner",
            filesystem=filesystem,
            uid=os.getuid(),
            errors=errors,
        )
        python = cfg["python"]
        argv = [python, "-I", "-S", "-B", "-u", cfg["launcher"], "--user", cfg_path]
        os.execve(python, argv, dict(os.environ))
    except PermissionError as exc:
        if exc.filename == cfg.get("python"):
            _fatal(
                f"sandbox setup failed: the interpreter {exc.filename} cannot be executed by "
                f"the sandbox uid {cfg.get('uid')} ({exc.strerror}); without a mount namespace "
                "it must live in a directory every user can read (e.g. /usr), or run tether "
                "where namespaces are allowed"
            )
        _fatal(f"sandbox setup failed: PermissionError: {exc}")
    except BaseException as exc:
        _fatal(f"sandbox setup failed: {type(exc).__name__}: {exc}")


def _mirror(status: int) -> None:
    """End this process the way the inner stage ended."""
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        if sig not in (signal.SIGKILL, signal.SIGSTOP):
            with contextlib.suppress(OSError, ValueError):
                signal.signal(sig, signal.SIG_DFL)
                signal.pthread_sigmask(signal.SIG_UNBLOCK, [sig])
        with contextlib.suppress(OSError):
            os.kill(os.getpid(), sig)
        os._exit(128 + sig)
    os._exit(os.waitstatus_to_exitcode(status))


def _on_sigterm(signum: int, frame: object) -> None:
    if _child_pid:
        with contextlib.suppress(OSError):
            os.kill(_child_pid, signal.SIGKILL)
    else:
        os._exit(128 + signum)


def _outer(cfg_path: str) -> None:
    global _child_pid
    os.closerange(STATUS_FD + 1, os.sysconf("SC_OPEN_MAX"))
    try:
        cfg = _load_config(cfg_path)
        signal.signal(signal.SIGTERM, _on_sigterm)
        libc = _Libc()
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
        if cfg["parent_pid"] and os.getppid() != int(cfg["parent_pid"]):
            os._exit(SETUP_FAILED)  # the parent is already gone
        ns = _unshare(libc, bool(cfg["namespaces"]))
    except BaseException as exc:
        _fatal(f"sandbox setup failed: {type(exc).__name__}: {exc}")
        return
    _report(
        stage="outer",
        forked=ns["pid"],
        network_ns=ns["net"],
        mount_ns=ns["mount"],
        pid_ns=ns["pid"],
        user_ns=ns["user"],
    )
    if not ns["pid"]:
        _inner(cfg, cfg_path, libc, ns)  # no PID namespace: this process becomes the sandbox
        return
    pid = os.fork()
    if pid == 0:
        _inner(cfg, cfg_path, libc, ns)
        return
    _child_pid = pid
    while True:
        try:
            _, status, usage = os.wait4(pid, 0)
            break
        except ChildProcessError:
            os._exit(SETUP_FAILED)
    # The parent's wait4 on this process cannot tell the sandbox's peak RSS: this process was
    # posix_spawn'ed (a vfork-style clone), and Linux carries the spawning process's high-water
    # RSS across exec. The forked child started from this small image, so its figure is true.
    _report(child_maxrss_kb=int(usage.ru_maxrss))
    os.close(STATUS_FD)
    _mirror(status)


def _unshare(libc: _Libc, wanted: bool) -> dict[str, bool]:
    ns = {"net": False, "mount": False, "pid": False, "user": False}
    if not wanted:
        return ns
    rootless = os.geteuid() != 0
    userns = CLONE_NEWUSER if rootless else 0
    uid, gid = os.getuid(), os.getgid()
    for flags in (CLONE_NEWNET | CLONE_NEWNS | CLONE_NEWPID, CLONE_NEWNET):
        try:
            libc.unshare(flags | userns)
        except OSError:
            continue
        if rootless:  # keep our own ids inside the new user namespace
            _write_file("/proc/self/setgroups", "deny")
            _write_file("/proc/self/uid_map", f"{uid} {uid} 1")
            _write_file("/proc/self/gid_map", f"{gid} {gid} 1")
        ns["net"] = True
        ns["mount"] = bool(flags & CLONE_NEWNS)
        ns["pid"] = bool(flags & CLONE_NEWPID)
        ns["user"] = rootless
        break
    return ns


# --------------------------------------------------------------------------- user stage


def _load_audithook(launcher: str) -> Any:
    """The policy module (``audithook.py``, copied next to this file), loaded by path."""
    import importlib.util

    path = os.path.join(os.path.dirname(os.path.abspath(launcher)), "audithook.py")
    spec = importlib.util.spec_from_file_location("_tether_sandbox_audithook", path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _print_exception(exc: BaseException, tb: TracebackType | None) -> None:
    import traceback

    if sys.excepthook is sys.__excepthook__:
        traceback.print_exception(type(exc), exc, tb)
    else:
        sys.excepthook(type(exc), exc, tb)


def _user(cfg_path: str) -> None:
    import linecache
    import traceback  # noqa: F401 - loaded now: printing a MemoryError must not need memory
    import types

    try:
        cfg = _load_config(cfg_path)
        with open(cfg["code"], "rb") as fh:
            source = fh.read()
        policy = _load_audithook(cfg["launcher"])
        policy.neuter_posixsubprocess()
        hook = None
        if cfg["audit_hook"]:
            extensions = policy.allowed_extensions(p for p in sys.path if p)
            hook = policy.make_audit_hook(cfg["scratch"], extensions)
    except BaseException as exc:
        _fatal(f"sandbox setup failed: {type(exc).__name__}: {exc}")
        return
    _report(stage="user", audit_hook=hook is not None)
    os.close(STATUS_FD)
    for stream in (sys.stdout, sys.stderr):
        if isinstance(stream, io.TextIOWrapper):
            stream.reconfigure(encoding="utf-8", errors="backslashreplace")
    filename = "main.py"
    text = source.decode("utf-8", "replace")
    linecache.cache[filename] = (len(text), None, text.splitlines(True), filename)
    main = types.ModuleType("__main__")
    main.__dict__["__file__"] = filename
    main.__dict__["__builtins__"] = __builtins__
    sys.modules["__main__"] = main
    sys.argv = [filename]
    if hook is not None:
        sys.addaudithook(hook)
    del cfg, hook, policy
    try:
        code = compile(source, filename, "exec", dont_inherit=True)
    except (SyntaxError, ValueError) as exc:
        _print_exception(exc, None)
        raise SystemExit(1) from None
    del source, text
    try:
        exec(code, main.__dict__)
    except SystemExit:
        raise
    except BaseException as exc:
        if isinstance(exc, MemoryError):
            main.__dict__.clear()  # give the memory back so the traceback can be printed
        _print_exception(exc, exc.__traceback__.tb_next if exc.__traceback__ else None)
        raise SystemExit(1) from None


def main(argv: Sequence[str]) -> None:
    if len(argv) == 3 and argv[1] == "--user":
        _user(argv[2])
    elif len(argv) == 2:
        _outer(argv[1])
    else:
        sys.stderr.write("usage: launcher.py CONFIG | launcher.py --user CONFIG\n")
        os._exit(SETUP_FAILED)


if __name__ == "__main__":
    main(sys.argv)
