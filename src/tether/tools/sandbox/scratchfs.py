"""The scratch directory's disk limit: a size-capped tmpfs over it, and a watcher where the kernel
does not count.

Standalone (standard library only): the launcher's outer stage loads it by path (it is copied
next to ``launcher.py``) to mount the tmpfs and, after the code ended, to tell whether it filled
it; the parent imports :func:`usage` to watch a scratch directory no tmpfs covers.

The tmpfs (``size=max_disk_bytes,nr_inodes=max_disk_files+1``; the extra inode is its root) is
mounted by the outer stage, inside the sandbox's own mount namespace (made private first, so
nothing propagates to the host's), over the host's scratch directory, whose input files are
copied in. A write beyond it fails with ENOSPC in the kernel, whatever the code does (links
cannot leave it: EXDEV); its pages are memory, never the host's disk or inodes. gVisor's tmpfs
honours ``size`` but refuses ``nr_inodes``: there :func:`wait` counts the entries.
"""

from __future__ import annotations

import contextlib
import errno
import os
import signal
import stat
import time
from collections.abc import Iterator
from typing import Any

__all__ = ["PAGE", "count_entries", "ended", "full", "mount_scratch", "usage", "wait"]

MS_NOSUID = 0x2
MS_NODEV = 0x4
MS_NOEXEC = 0x8
MS_REC = 0x4000
MS_PRIVATE = 0x40000
PAGE = 4096
"""tmpfs counts space in whole pages: a 1-byte file takes 4 KiB of ``max_disk_bytes``."""

POLL_S = 0.05
"""How often :func:`wait` (and the parent, without a tmpfs) measures: what the code writes in
that time is the overshoot."""


def mount_scratch(libc: Any, cfg: dict[str, Any]) -> bool:
    """Cover the scratch directory with a tmpfs of ``max_disk_bytes`` holding the input files
    already there (the launcher's ``cfg``).

    Returns whether the kernel also caps the number of entries (False under gVisor). Raises
    OSError when the tmpfs cannot be mounted or the input files do not fit in it.
    """
    scratch, gvisor = str(cfg["scratch"]), bool(cfg.get("gvisor"))
    max_bytes, max_files = (int(n) for n in cfg["disk"])
    uid, gid = int(cfg["uid"]), int(cfg["gid"])
    if not gvisor:  # gVisor's mounts never reach the host's
        libc.mount(None, "/", None, MS_REC | MS_PRIVATE)
    src = os.open(scratch, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    try:
        flags = MS_NOSUID | MS_NODEV | MS_NOEXEC
        options = f"size={max_bytes},mode=0700,uid={uid},gid={gid}"
        try:
            libc.mount("tmpfs", scratch, "tmpfs", flags, f"{options},nr_inodes={max_files + 1}")
            capped = True
        except OSError as exc:
            if exc.errno != errno.EINVAL or not gvisor:
                raise
            libc.mount("tmpfs", scratch, "tmpfs", flags, options)
            capped = False
        try:
            _copy_tree(src, scratch, uid, gid)
        except OSError as exc:
            if exc.errno == errno.ENOSPC:
                raise OSError(
                    exc.errno,
                    "the input files do not fit in the scratch directory: raise "
                    "SandboxLimits.max_disk_bytes / max_disk_files or pass smaller files",
                ) from exc
            raise
    finally:
        os.close(src)
    return capped


def _copy_tree(src: int, dest: str, uid: int, gid: int) -> None:
    """Copy the tree under the directory ``src`` (written by the parent, before any code ran)."""
    chown = os.geteuid() == 0
    for top, dirs, names, dir_fd in os.fwalk(".", dir_fd=src, follow_symlinks=False):
        target = os.path.normpath(os.path.join(dest, top))
        for name in dirs:
            os.mkdir(os.path.join(target, name), 0o700)
            if chown:
                os.chown(os.path.join(target, name), uid, gid)
        for name in names:
            fd_in = os.open(name, os.O_RDONLY | os.O_NOFOLLOW, dir_fd=dir_fd)
            try:
                out = os.path.join(target, name)
                fd_out = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
                try:
                    if chown:
                        os.fchown(fd_out, uid, gid)
                    while chunk := os.read(fd_in, 1 << 20):
                        view = memoryview(chunk)
                        while view:
                            view = view[os.write(fd_out, view) :]
                finally:
                    os.close(fd_out)
            finally:
                os.close(fd_in)


def full(scratch: str, inodes_capped: bool) -> bool:
    """Whether the tmpfs at ``scratch`` has no page (or, when capped, no inode) left."""
    st = os.statvfs(scratch)
    return st.f_bavail == 0 or (inodes_capped and st.f_files > 0 and st.f_ffree == 0)


def _entries(root: str, stop: int, *, stats: bool) -> Iterator[os.stat_result | None]:
    """One item per entry (file, directory, link...) under ``root``, never following a link:
    its ``lstat`` with ``stats``, else (or when it vanished) None; past ``stop`` entries one
    last None, and the walk ends."""
    count = 0
    todo = [root]
    while todo:
        try:
            it = os.scandir(todo.pop())
        except OSError:
            continue
        with it:
            for entry in it:
                count += 1
                if count > stop:
                    yield None
                    return
                st = None
                try:
                    if stats:
                        st = entry.stat(follow_symlinks=False)
                        is_dir = stat.S_ISDIR(st.st_mode)
                    else:
                        is_dir = entry.is_dir(follow_symlinks=False)
                except OSError:
                    is_dir = False
                yield st
                if is_dir:
                    todo.append(entry.path)


def count_entries(root: str, stop: int) -> int:
    """Entries (files, directories, links...) under ``root``, never following a link; counting
    stops past ``stop``."""
    return sum(1 for _ in _entries(root, stop, stats=False))


def usage(root: str, stop: int) -> tuple[int, int]:
    """Bytes the filesystem allocated under ``root`` (each inode once: hard links do not hide
    space; links never followed) and the number of entries, both stopping past ``stop``
    entries."""
    seen: set[tuple[int, int]] = set()
    used = count = 0
    for st in _entries(root, stop, stats=True):
        count += 1
        if st is not None and (st.st_dev, st.st_ino) not in seen:
            seen.add((st.st_dev, st.st_ino))
            used += st.st_blocks * 512
    return used, count


def wait(pid: int, cfg: dict[str, Any], watch: bool) -> tuple[int, Any, bool]:
    """``wait4`` the code's init (``pid``); with ``watch`` (the kernel does not cap the entries,
    gVisor) count the entries of scratch every :data:`POLL_S` meanwhile and SIGKILL it past
    ``max_disk_files``. Polls rather than use a thread: a process that unshared its PID
    namespace cannot start one. Returns the status, the usage and whether it killed."""
    root, max_files = str(cfg["scratch"]), int(cfg["disk"][1])
    exceeded = False
    while True:
        got, status, usage = os.wait4(pid, os.WNOHANG if watch and not exceeded else 0)
        if got:
            return status, usage, exceeded
        if count_entries(root, max_files) > max_files:
            exceeded = True
            os.kill(pid, signal.SIGKILL)
        else:
            time.sleep(POLL_S)


def ended(cfg: dict[str, Any], capped: bool, exceeded: bool) -> dict[str, bool]:
    """After the code: whether :func:`wait` killed it (``disk_exceeded``) and whether it left the
    tmpfs full (``disk_full``), for the parent's classification."""
    fields = {"disk_exceeded": exceeded}
    with contextlib.suppress(OSError):
        fields["disk_full"] = full(str(cfg["scratch"]), capped)
    return fields
