"""Privileged half of the sandbox launcher: namespaces and the filesystem view.

Standalone (standard library only), copied next to ``launcher.py`` into each execution's work
directory and loaded by its privileged stages; the unprivileged user stage never loads it (it
imports ctypes).
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
from collections.abc import Iterable, Sequence
from typing import Any

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


class Libc:
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


def write_file(path: str, text: str) -> None:
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


def _mask(libc: Libc, hidden: str, keep: Sequence[str]) -> None:
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


def _read_only_everything(libc: Libc, scratch: str) -> None:
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


def build_filesystem(libc: Libc, cfg: dict[str, Any], new_proc: bool) -> list[str]:
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


def unshare_namespaces(
    libc: Libc, wanted: bool, simulate_failure: bool
) -> tuple[dict[str, bool], list[str]]:
    """New network, mount and PID namespaces (plus a user namespace when not root), or as many
    as the kernel allows: the namespaces obtained and, for each refused attempt, why."""
    ns = {"net": False, "mount": False, "pid": False, "user": False}
    failures: list[str] = []
    if not wanted:
        return ns, ["namespaces not attempted: an earlier execution found them unavailable"]
    rootless = os.geteuid() != 0
    userns = CLONE_NEWUSER if rootless else 0
    uid, gid = os.getuid(), os.getgid()
    attempts = (
        ("CLONE_NEWNET|CLONE_NEWNS|CLONE_NEWPID", CLONE_NEWNET | CLONE_NEWNS | CLONE_NEWPID),
        ("CLONE_NEWNET", CLONE_NEWNET),
    )
    for label, flags in attempts:
        if rootless:
            label += "|CLONE_NEWUSER"
        try:
            if simulate_failure:
                raise OSError(errno.EPERM, "refused (simulated: TETHER_SANDBOX_DISABLE_NAMESPACES)")
            libc.unshare(flags | userns)
        except OSError as exc:
            failures.append(f"unshare({label}) failed: {exc.strerror or exc}")
            continue
        if rootless:  # keep our own ids inside the new user namespace
            write_file("/proc/self/setgroups", "deny")
            write_file("/proc/self/uid_map", f"{uid} {uid} 1")
            write_file("/proc/self/gid_map", f"{gid} {gid} 1")
        ns["net"] = True
        ns["mount"] = bool(flags & CLONE_NEWNS)
        ns["pid"] = bool(flags & CLONE_NEWPID)
        ns["user"] = rootless
        break
    return ns, failures


def not_in_gvisor(host_release: str) -> str | None:
    """Why this process is not inside ``runsc do`` (None when it is): the gVisor filesystem setup
    changes modes, which must only ever touch gVisor's in-memory overlay, never the host."""
    if os.uname().release == host_release:
        return f"the kernel is the host's ({host_release}), not gVisor's"
    try:
        with open("/proc/self/mountinfo", encoding="utf-8") as fh:
            root = next((line.split() for line in fh if line.split()[4:5] == ["/"]), [])
    except OSError as exc:
        return f"cannot read /proc/self/mountinfo: {exc}"
    fstype = root[root.index("-") + 1] if "-" in root else "?"
    if fstype != "overlay":
        return f"the root filesystem is {fstype}, not gVisor's in-memory overlay"
    return None


def _prune(top: str, keep: Sequence[str]) -> None:
    """Leave in ``top`` only the way to the ``keep`` directories (gVisor's overlay only)."""
    todo = [top]
    while todo:
        current = todo.pop()
        os.chmod(current, 0o711)
        for name in os.listdir(current):
            path = os.path.join(current, name)
            if path in keep:
                continue
            if any(_under(k, path) for k in keep):
                todo.append(path)
                continue
            try:  # the host may remove entries meanwhile (/tmp is busy): gone is hidden too
                mode = os.lstat(path).st_mode
            except FileNotFoundError:
                continue
            except PermissionError:  # gVisor will not stat a host socket (so nor open it)
                continue
            try:
                if stat.S_ISDIR(mode):
                    os.chown(path, 0, 0, follow_symlinks=False)
                    os.chmod(path, 0o700)
                else:
                    os.unlink(path)
            except FileNotFoundError:
                continue
            except PermissionError:
                if not _inert(mode):
                    raise
                # gVisor's overlay refuses to remove a host FIFO or socket (a tmux or vgdb pipe
                # in /tmp): it carries nothing into the sandbox (runsc opens no host FIFO or
                # socket by default) and sits in a directory the code cannot list; unopenable
                with contextlib.suppress(OSError):
                    os.chmod(path, 0)


def _inert(mode: int) -> bool:
    """A FIFO or a socket: no data of the host's in it for gVisor's sandbox."""
    return stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode)


def build_gvisor_filesystem(libc: Libc, cfg: dict[str, Any], new_proc: bool) -> list[str]:
    """The filesystem view inside gVisor, which has no bind mounts (``runsc do``'s root is the
    host's, read-only, under a writable in-memory overlay: nothing done here reaches the host).

    Hidden directories with nothing to keep inside are covered by an empty read-only tmpfs.
    Those on the way to a kept directory (the interpreter, the work directory) are pruned
    instead: every entry not on the way is removed (files, links: a whiteout in the overlay)
    or closed (directories: root-owned, 0700), and the directories on the way become crossable
    but not listable (0711, no longer world-writable). Directories the sandbox uid must cross
    get their search bits. Returns warnings about parts that failed.
    """
    warnings: list[str] = []
    uid, gid = int(cfg["uid"]), int(cfg["gid"])
    keep = _real_dirs(cfg["keep"])
    hidden = set(_real_dirs(cfg["hide"]))
    hidden.discard("/")
    done: list[str] = []
    for h in sorted(hidden, key=lambda p: p.count("/")):
        if any(h == k or _under(h, k) for k in keep) or any(_under(h, d) for d in done):
            continue
        inner = [k for k in keep if _under(k, h)]
        if inner:
            _prune(h, inner)
        else:
            try:
                libc.mount(
                    "tmpfs", h, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_RDONLY, "mode=0755"
                )
            except OSError as exc:
                warnings.append(f"hiding {h}: {exc}; made it unreadable instead")
                os.chmod(h, 0o700)
        done.append(h)
    for k in keep:
        for a in [*_ancestors(k), k]:
            if not _can_traverse(a, uid, gid):
                os.chmod(a, stat.S_IMODE(os.stat(a).st_mode) | 0o111)
    if new_proc:
        try:
            libc.mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_RDONLY)
        except OSError as exc:
            warnings.append(f"fresh /proc: {exc}")
    return warnings
