"""The scratch directory: input files in, left-over files out, without following links.

Collection runs as the parent (often root) over a directory the untrusted code controlled, so
it never follows a symbolic link (``os.fwalk(follow_symlinks=False)``, ``O_NOFOLLOW`` opens
relative to directory descriptors) and returns only regular files with a single link: a hard
link or symlink to ``/etc/shadow`` left in scratch is skipped, not read.
"""

from __future__ import annotations

import os
import posixpath
import stat
from collections.abc import Mapping

from tether.core.errors import ConfigurationError

__all__ = ["collect", "normalize_files", "write_files"]


def normalize_files(files: Mapping[str, str | bytes] | None) -> dict[str, bytes]:
    """Validate names (relative, inside scratch) and encode contents (str → UTF-8)."""
    out: dict[str, bytes] = {}
    if files is None:
        return out
    if not isinstance(files, Mapping):
        raise ConfigurationError(
            f"files must be a mapping of relative path -> str | bytes, got {type(files).__name__}"
        )
    for name, content in files.items():
        if not isinstance(name, str) or not name or "\0" in name:
            raise ConfigurationError(f"file name {name!r} must be a non-empty string")
        norm = posixpath.normpath(name)
        if norm.startswith(("/", "../")) or norm in ("..", "."):
            raise ConfigurationError(
                f"file name {name!r} must be a relative path inside the scratch directory, "
                "e.g. 'data/input.csv'"
            )
        if isinstance(content, str):
            out[norm] = content.encode("utf-8")
        elif isinstance(content, bytes | bytearray | memoryview):
            out[norm] = bytes(content)
        else:
            raise ConfigurationError(
                f"content of file {name!r} must be str or bytes, got {type(content).__name__}"
            )
    return out


def write_files(scratch: str, files: Mapping[str, bytes], uid: int, gid: int) -> None:
    """Create the input files in scratch, owned by the sandbox uid (when we may chown)."""
    chown = os.geteuid() == 0
    for name, content in files.items():
        path = os.path.join(scratch, name)
        parent = os.path.dirname(path)
        rel_parts = os.path.relpath(parent, scratch).split(os.sep)
        current = scratch
        for part in rel_parts:
            if part == ".":
                continue
            current = os.path.join(current, part)
            if not os.path.isdir(current):
                os.mkdir(current, 0o700)
                if chown:
                    os.chown(current, uid, gid)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
        try:
            if chown:
                os.fchown(fd, uid, gid)
            view = memoryview(content)
            while view:
                view = view[os.write(fd, view) :]
        finally:
            os.close(fd)


def _read_regular(name: str, dir_fd: int, limit: int) -> bytes | None:
    try:
        fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=dir_fd)
    except OSError:
        return None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or st.st_nlink != 1 or st.st_size > limit:
            return None
        chunks: list[bytes] = []
        size = 0
        while size <= limit:
            chunk = os.read(fd, min(1 << 20, limit + 1 - size))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        return None if size > limit else b"".join(chunks)
    finally:
        os.close(fd)


def collect(scratch: str, max_files: int, max_bytes: int) -> tuple[dict[str, bytes], bool]:
    """Regular files left in scratch (relative POSIX names), capped; True if some were left out."""
    files: dict[str, bytes] = {}
    truncated = False
    budget = max_bytes
    for dirpath, _dirs, names, dir_fd in os.fwalk(scratch, follow_symlinks=False):
        rel_dir = os.path.relpath(dirpath, scratch)
        for name in sorted(names):
            if len(files) >= max_files:
                return files, True
            content = _read_regular(name, dir_fd, budget)
            if content is None:
                try:
                    st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
                except OSError:
                    continue
                if stat.S_ISREG(st.st_mode) and st.st_nlink == 1:
                    truncated = True  # a regular file over the remaining byte budget
                continue
            rel = name if rel_dir == "." else posixpath.join(*rel_dir.split(os.sep), name)
            files[rel] = content
            budget -= len(content)
    return files, truncated
