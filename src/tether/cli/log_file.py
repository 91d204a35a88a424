"""``--log-file``: a long-running command's log lines in a file, rotated by size.

With ``max_bytes`` > 0 the file is rotated before a line would take it past ``max_bytes``:
``PATH`` becomes ``PATH.1``, ``PATH.1`` becomes ``PATH.2``..., and ``PATH.<backups>`` is
deleted, so the logs never take more than ``max_bytes * (backups + 1)`` bytes. Only one process
may rotate a file: two would rename it under each other and lose lines, so the second is
refused (an exclusive ``flock`` on ``PATH.lock``, which the system releases when the process
dies, however it dies). With ``max_bytes`` 0 tether never rotates: an external ``logrotate``
does, and each line is one ``O_APPEND`` write, so several processes may share the file; a
process reopens ``PATH`` when it finds it moved or removed (the ``WatchedFileHandler`` rule).

A file that cannot be opened is a ``ConfigurationError`` before the command starts. A write
that fails later (a full disk) does not stop the process: the line is dropped, stderr says so
once, and again with the count of dropped lines when writing works again.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
from collections.abc import Callable
from pathlib import Path

from tether.core.errors import ConfigurationError

SHARE_HINT = (
    "give each process its own --log-file (worker-1.log, worker-2.log), or let logrotate "
    "rotate one shared file: --log-max-bytes 0 in every process that writes it"
)


class LogFile:
    """An open log file; ``write`` takes whole lines and never raises."""

    def __init__(
        self, path: Path, max_bytes: int, backups: int, complain: Callable[[str], None]
    ) -> None:
        self.path = Path(os.path.realpath(path))  # two spellings of one file share one lock
        self.max_bytes = max_bytes
        self.backups = backups
        self.complain = complain
        self.dropped = 0
        self._torn = False
        """The last write stopped mid-line (a full disk): the next line starts on a new one."""
        _check_place(self.path)
        self._lock = _lock(self.path, exclusive=max_bytes > 0)
        try:
            self._fd: int | None = _open(self.path)
        except OSError as exc:
            os.close(self._lock)
            raise ConfigurationError(_cannot(self.path, exc)) from None

    def write(self, line: str) -> None:
        data = line.encode("utf-8", "backslashreplace")
        done = 0
        try:
            fd = self._current()
            size = os.fstat(fd).st_size
            if self.max_bytes and size and size + len(data) > self.max_bytes:
                fd = self._rotate()
            if self._torn:
                data = b"\n" + data
            while done < len(data):
                done += os.write(fd, data[done:])
            self._torn = False
        except OSError as exc:
            self._torn = self._torn or done > 0
            if not self.dropped:
                self.complain(
                    f"cannot write the log file {self.path}: {exc.strerror or exc}; log lines "
                    "are dropped until it can be written again"
                )
            self.dropped += 1
            return
        if self.dropped:
            self.complain(
                f"the log file {self.path} is written again; {self.dropped} lines were dropped"
            )
            self.dropped = 0

    def close(self) -> None:
        for fd in (self._fd, self._lock):
            if fd is not None:
                with contextlib.suppress(OSError):
                    os.close(fd)
        self._fd = None

    def _current(self) -> int:
        """The open file, reopened if ``PATH`` is no longer it (moved, removed)."""
        if self._fd is not None:
            try:
                on_disk = os.stat(self.path)
            except FileNotFoundError:
                on_disk = None
            mine = os.fstat(self._fd)
            if on_disk is not None and (on_disk.st_dev, on_disk.st_ino) == (
                mine.st_dev,
                mine.st_ino,
            ):
                return self._fd
            os.close(self._fd)
            self._fd = None
        self._fd = _open(self.path)
        self._torn = False
        return self._fd

    def _rotate(self) -> int:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        for i in range(self.backups - 1, 0, -1):
            older = Path(f"{self.path}.{i}")
            if older.exists():
                os.replace(older, f"{self.path}.{i + 1}")
        os.replace(self.path, f"{self.path}.1")
        return self._current()


def _open(path: Path) -> int:
    return os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)


def _check_place(path: Path) -> None:
    if not path.parent.is_dir():
        what = "is not a directory" if path.parent.exists() else "does not exist"
        raise ConfigurationError(
            f"cannot log to {path}: the directory {path.parent} {what} (create it, or pick a "
            "--log-file in a directory that exists)"
        )
    if path.exists() and not path.is_file():
        raise ConfigurationError(
            f"cannot log to {path}: it is not a regular file (a directory, a device?); "
            "--log-file names a file tether appends to and rotates (leave it out to log on "
            "stderr)"
        )
    try:
        os.close(_open(path))
    except OSError as exc:
        raise ConfigurationError(_cannot(path, exc)) from None


def _cannot(path: Path | str, exc: OSError) -> str:
    why = exc.strerror or str(exc)
    hint = {
        errno.EACCES: "run as a user who may write there, or pick another --log-file",
        errno.EROFS: "the file system is read-only: pick a --log-file on a writable one",
        errno.ENOSPC: "the disk is full: free space, or pick a --log-file on another disk",
    }.get(exc.errno or 0, "pick another --log-file")
    return f"cannot write the log file {path}: {why} ({hint})"


def _lock(path: Path, *, exclusive: bool) -> int:
    """A lock on ``PATH.lock``: exclusive for the one process that rotates the file, shared for
    processes that only append to it; a conflicting one is refused, naming the rotating
    process when one holds it."""
    lock_path = f"{path}.lock"
    try:
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise ConfigurationError(_cannot(lock_path, exc)) from None
    try:
        fcntl.flock(fd, (fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH) | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
        os.close(fd)
        who = f"tether process {holder}" if holder.isdigit() else "other tether processes"
        doing = "rotates it" if holder.isdigit() else "append to it (--log-max-bytes 0)"
        raise ConfigurationError(
            f"cannot log to {path}: {who} {doing}; a file tether rotates has one writer (two "
            f"would rename it under each other and lose lines): {SHARE_HINT}"
        ) from None
    except OSError as exc:  # no locks on this file system (ENOLCK: NFS without lockd...)
        os.close(fd)
        raise ConfigurationError(
            f"cannot log to {path}: the file system cannot lock {lock_path} "
            f"({exc.strerror or exc}), and a file tether rotates must be locked to its one "
            "writer; log to a local disk, or let an external logrotate rotate it "
            "(--log-max-bytes 0)"
        ) from None
    try:  # the rotating process's pid, for the message above; none while processes share
        os.ftruncate(fd, 0)
        if exclusive:
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    except OSError as exc:
        os.close(fd)
        raise ConfigurationError(_cannot(lock_path, exc)) from None
    return fd
